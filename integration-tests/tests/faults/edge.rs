//! The edge holds against clients that hold connections open (issue 25):
//! silent sockets do not starve TLS handshakes, slow bodies do not take the
//! call slots, and a body that is too large or too slow is refused with a
//! clear answer. Each test runs a control plane and a worker on loopback,
//! attacks the front door from this process, and times the well-formed
//! calls made beside the attack.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hotswap_common::trust::ClientTrust;
use hotswap_control_plane::ControlPlaneConfig;
use hotswap_integration_tests::attack;
use hotswap_integration_tests::bucket::TestBucket;
use hotswap_integration_tests::certs::TestCa;
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::http::{self, Connector};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerOptions, WorkerServer, iris_bucket, predict_json,
};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// What the issue asks of a well-formed call beside an attack.
const SERVED_WITHIN: Duration = Duration::from_secs(1);

/// Beside the chaos test's attack, whose JSON bombs keep a core busy for
/// seconds on a debug build: a new client is served, not starved.
const SERVED_BESIDE_BOMBS: Duration = Duration::from_secs(10);

/// The attacker's address: another loopback address than the clients'.
const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// Another attacker, sending slow bodies.
const SLOW_SENDER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

/// What a JSON request carries.
const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

/// The OIP request for one iris row.
const IRIS_OIP: &str =
    r#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}"#;

/// A control plane with `clients` at its front door and one registered
/// worker serving iris, once iris answers.
async fn stack(clients: ClientTrust) -> (TestBucket, StoreServer, ControlServer, WorkerServer) {
    let (bucket, config) = iris_bucket(1).await;
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let mut control_config = ControlPlaneConfig {
        model_store: store.addr.to_string(),
        ..ControlPlaneConfig::default()
    };
    control_config.clients = clients;
    let control = ControlServer::start_with(control_config).await;
    let options = WorkerOptions {
        control_plane: Some(control.internal.to_string()),
        ..Default::default()
    };
    let worker = WorkerServer::start_with(store.addr, &bucket, options).await;
    control.wait_for_workers(1).await;
    (bucket, store, control, worker)
}

/// Runs `call` and says how long it took, failing the test when it fails or
/// takes longer than [`SERVED_WITHIN`].
async fn served<T, E: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Duration {
    served_within(SERVED_WITHIN, what, call).await
}

/// As [`served`], within `within`.
async fn served_within<T, E: std::fmt::Debug>(
    within: Duration,
    what: &str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Duration {
    let start = Instant::now();
    match tokio::time::timeout(within, call).await {
        Ok(Ok(_)) => start.elapsed(),
        Ok(Err(e)) => panic!("{what} failed beside the attack: {e:?}"),
        Err(_) => panic!("{what} was not served within {within:?} beside the attack"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_do_not_hold_back_tls_clients() {
    let ca = TestCa::new("edge test");
    let clients = ClientTrust {
        tls: Some(ca.tls("control-plane")),
        tokens: None,
    };
    let (_bucket, _store, control, _worker) = stack(clients).await;
    // Each `channel()` is a new TLS connection.
    let control = control.with_client_ca(ca.pem());
    eventually("iris served over TLS", || async {
        control
            .predictor()
            .await
            .predict(predict_json("iris", "", "1", IRIS_INPUT))
            .await
            .ok()
    })
    .await;

    // Past what the kernel's accept queue takes on its own: a server that
    // stops accepting leaves the rest waiting to connect.
    let attack = attack::silent_sockets(ATTACKER, control.addr, 600);
    eventually("300 silent sockets connected", || async {
        (attack.connected() >= 300).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    for i in 0..4 {
        let took = served(&format!("TLS Predict {i} (new connection)"), async {
            control
                .predictor()
                .await
                .predict(predict_json("iris", "", "1", IRIS_INPUT))
                .await
        })
        .await;
        eprintln!("TLS Predict {i}: {took:?}");
    }
    for i in 0..5 {
        let took = served(&format!("TLS health probe {i} (new connection)"), async {
            HealthClient::new(control.channel().await)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
        })
        .await;
        eprintln!("TLS health {i}: {took:?}");
    }
    drop(attack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_do_not_take_the_call_slots() {
    let (_bucket, _store, control, _worker) = stack(ClientTrust::default()).await;
    let front = control.predictor().await;
    eventually("iris served", || {
        let mut front = front.clone();
        async move {
            front
                .predict(predict_json("iris", "", "1", IRIS_INPUT))
                .await
                .ok()
        }
    })
    .await;

    // More than the front door's 256 call slots.
    let attack = attack::slow_bodies(
        &Connector::Plain,
        ATTACKER,
        control.addr,
        "/iris",
        1_000_000,
        300,
        Duration::from_secs(2),
    );
    eventually("300 slow bodies started", || async {
        (attack.connected() >= 300).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    for i in 0..8 {
        let mut front = front.clone();
        served(&format!("gRPC Predict {i}"), async move {
            front
                .predict(predict_json("iris", "", "1", IRIS_INPUT))
                .await
        })
        .await;
        for (path, body) in [("/v2/models/iris/infer", IRIS_OIP), ("/iris", IRIS_INPUT)] {
            let mut answer = None;
            served(&format!("HTTP {path} {i}"), async {
                answer = Some(http::post(control.addr, path, JSON, body).await?);
                std::io::Result::Ok(())
            })
            .await;
            let answer = answer.expect("answered");
            assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        }
    }

    // The slow bodies themselves are refused once their time is up.
    let answers = eventually("every slow body answered 408", || async {
        let answers = attack.answers();
        (answers.len() >= 300).then_some(answers)
    })
    .await;
    for answer in answers {
        assert_eq!(answer.status, 408, "{}", answer.text());
        assert!(answer.json()["error"].is_string(), "{}", answer.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_refusal_is_json() {
    let (_bucket, _store, control, _worker) = stack(ClientTrust::default()).await;
    for (method, path, status) in [
        // A method the route does not take.
        ("GET", "/v2/models/iris/infer", 405),
        ("PUT", "/iris", 405),
        // A path that does not decode as UTF-8.
        ("POST", "/%FF%FE", 400),
        ("GET", "/v2/models/%FF", 400),
        // No such endpoint.
        ("GET", "/nowhere/at/all", 404),
    ] {
        let answer = http::request(&Connector::Plain, control.addr, method, path, JSON, b"")
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let what = format!("{method} {path}: {}", answer.text());
        assert_eq!(answer.status, status, "{what}");
        let error = answer.json()["error"].as_str().map(str::to_owned);
        assert!(error.is_some_and(|e| !e.is_empty()), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_length_over_the_limit_is_refused_before_it_is_read() {
    let (_bucket, _store, control, _worker) = stack(ClientTrust::default()).await;
    for (path, declared) in [
        ("/v2/models/iris/infer", "33554433"),
        ("/iris", "999999999999"),
    ] {
        let mut socket = tokio::net::TcpStream::connect(control.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n\r\n{{"
        );
        tokio::io::AsyncWriteExt::write_all(&mut socket, head.as_bytes())
            .await
            .unwrap();
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(
            SERVED_WITHIN,
            tokio::io::AsyncReadExt::read(&mut socket, &mut answer),
        )
        .await
        .unwrap_or_else(|_| panic!("no answer to a declared {declared} bytes"))
        .unwrap();
        let answer = http::parse(&answer[..n]).expect("an HTTP answer");
        assert_eq!(answer.status, 413, "{}", answer.text());
        assert!(answer.json()["error"].is_string(), "{}", answer.text());
    }

    // A body without a declared length that grows past the limit: 413 in
    // the same JSON, not a plain-text one.
    let socket = tokio::net::TcpStream::connect(control.addr).await.unwrap();
    let (mut read, mut write) = socket.into_split();
    let sender = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let head = "POST /v2/models/iris/infer HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        write.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 1 << 20];
        // 40 MiB, past every limit; the server stops reading early.
        for _ in 0..40 {
            write
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            write.write_all(&chunk).await?;
            write.write_all(b"\r\n").await?;
        }
        write.write_all(b"0\r\n\r\n").await
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut read, &mut answer),
    )
    .await;
    sender.abort();
    let answer = http::parse(&answer).expect("an HTTP answer");
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert!(answer.json()["error"].is_string(), "{}", answer.text());
}

/// The chaos test's attack phase, on the front door at `front` (reached
/// through `connector`, TLS there) with `fresh` making a new client
/// connection: 600 silent sockets from another address, 300 slow bodies,
/// eight 32 MB JSON bombs and three 8 MB forms of 2 million fields at
/// once; fresh connections are served beside them (within 10 s: the bombs
/// keep a core busy on a debug build),
/// the bombs and forms are refused with a 4xx, and the slow bodies are
/// refused when their time is up. The caller's well-formed load runs
/// throughout and counts its own failures.
pub(crate) async fn attack_front_door<F, Fut>(front: SocketAddr, connector: &Connector, fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let silent = attack::silent_sockets(ATTACKER, front, 600);
    let slow = attack::slow_bodies(
        connector,
        SLOW_SENDER,
        front,
        "/iris",
        1_000_000,
        300,
        Duration::from_secs(2),
    );
    eventually("the silent sockets and slow bodies connected", || async {
        (silent.connected() >= 300 && slow.connected() >= 300).then_some(())
    })
    .await;

    // Sixteen million one-digit numbers: 32 MB of text, a 64 MB tensor.
    let elements = 16_000_000usize;
    let mut bomb = format!(
        r#"{{"inputs":[{{"name":"input","datatype":"FP32","shape":[{},4],"data":["#,
        elements / 4
    )
    .into_bytes();
    bomb.reserve(elements * 2);
    for i in 0..elements {
        bomb.extend_from_slice(if i == 0 { b"0" } else { b",0" });
    }
    bomb.extend_from_slice(b"]}]}");
    let form = "a=b&".repeat(2_000_000).into_bytes();
    let (bomb, form) = (bytes::Bytes::from(bomb), bytes::Bytes::from(form));
    let mut hostile = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (connector, bomb) = (connector.clone(), bomb.clone());
        hostile.spawn(async move {
            let path = "/v2/models/iris/infer";
            let answer = http::request(&connector, front, "POST", path, JSON, bomb).await;
            ("JSON bomb", answer)
        });
    }
    for _ in 0..3 {
        let (connector, form) = (connector.clone(), form.clone());
        hostile.spawn(async move {
            let urlencoded = &[("content-type", "application/x-www-form-urlencoded")];
            let answer = http::request(&connector, front, "POST", "/py", urlencoded, form).await;
            ("form of 2M fields", answer)
        });
    }
    for i in 0..3 {
        let what = format!("a fresh connection's call {i}");
        let took = served_within(SERVED_BESIDE_BOMBS, &what, fresh()).await;
        eprintln!("fresh call {i} beside the attack: {took:?}");
    }
    while let Some(done) = hostile.join_next().await {
        let (what, answer) = done.expect("an attack task");
        let answer = answer.unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        let text = answer.text();
        assert!(
            (400..500).contains(&answer.status) && answer.json()["error"].is_string(),
            "{what}: {} {}",
            answer.status,
            &text[..text.len().min(300)]
        );
    }
    for i in 3..6 {
        let what = format!("a fresh connection's call {i}");
        served_within(SERVED_BESIDE_BOMBS, &what, fresh()).await;
    }
    drop(silent);
    drop(slow);
}

/// A ModelInfer of two million empty inputs is 4 MB on the wire and took
/// over 600 MB once prost had decoded it, before any check could see it:
/// now it is refused before it is decoded, at the front door and at a
/// worker, and other calls go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tiny_items_are_refused_before_they_are_decoded() {
    let (_bucket, _store, control, worker) = stack(ClientTrust::default()).await;
    let many = hotswap_proto::inference::ModelInferRequest {
        model_name: "iris".to_owned(),
        inputs: vec![Default::default(); 2_000_000],
        ..Default::default()
    };
    for (plane, mut client) in [
        ("control plane", control.inference().await),
        ("worker", worker.inference().await),
    ] {
        let refused = client
            .model_infer(many.clone())
            .await
            .expect_err("two million empty inputs");
        assert_eq!(
            refused.code(),
            tonic::Code::InvalidArgument,
            "{plane}: {refused:?}"
        );
        assert!(
            refused.message().contains("would take") && refused.message().contains("raw"),
            "{plane}: {}",
            refused.message()
        );
    }
    control
        .predictor()
        .await
        .predict(predict_json("iris", "", "1", IRIS_INPUT))
        .await
        .expect("a well-formed call after the refusals");
}
