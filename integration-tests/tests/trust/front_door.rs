//! The client-facing listener's bearer tokens: a call without one, or with
//! one not in the file, is UNAUTHENTICATED; health stays open for probes.
//! Then the whole stack as processes with TLS on every listener (mutual
//! between the planes) and a token file at the front door, called by the
//! unmodified tritonclient over TLS, and HTTP/1.1 and HTTP/2 clients over
//! TLS.

use hotswap_common::trust::BearerTokens;
use hotswap_control_plane::ControlPlaneConfig;
use hotswap_integration_tests::certs::TestCa;
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::process::{
    Hotswap, model_store_args, run_hotswap, triton_check_with, workspace_root,
};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::iris_bucket;
use hotswap_integration_tests::worker::{IRIS_INPUT, predict_json};
use hotswap_proto::v1::predictor_client::PredictorClient;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn with_bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header value"),
    );
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_door_takes_only_listed_bearer_tokens() {
    let (bucket, config) = iris_bucket(1).await;
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let tokens = BearerTokens::parse("# two clients\nteam-a-token\nteam-b-token\n")
        .unwrap()
        .unwrap();
    let mut control_config = ControlPlaneConfig {
        model_store: store.addr.to_string(),
        ..ControlPlaneConfig::default()
    };
    control_config.clients.tokens = Some(tokens);
    let control = ControlServer::start_with(control_config).await;
    let _worker =
        crate::registered_worker(store.addr, &bucket, control.internal, Default::default()).await;
    control.wait_for_workers(1).await;
    let front = PredictorClient::new(control.channel().await);
    eventually("iris served with a listed token", || {
        let mut front = front.clone();
        async move {
            front
                .predict(with_bearer(
                    predict_json("iris", "", "1", IRIS_INPUT),
                    "team-b-token",
                ))
                .await
                .ok()
        }
    })
    .await;

    let mut front = front.clone();
    let none = front
        .predict(predict_json("iris", "", "1", IRIS_INPUT))
        .await
        .unwrap_err();
    assert_eq!(none.code(), Code::Unauthenticated, "{none}");
    assert!(none.message().contains("Bearer"), "{none}");
    let wrong = front
        .predict(with_bearer(
            predict_json("iris", "", "1", IRIS_INPUT),
            "team-c-token",
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong}");
    let prefix = front
        .predict(with_bearer(
            predict_json("iris", "", "1", IRIS_INPUT),
            "team-a",
        ))
        .await
        .unwrap_err();
    assert_eq!(prefix.code(), Code::Unauthenticated, "{prefix}");
    front
        .predict(with_bearer(
            predict_json("iris", "", "1", IRIS_INPUT),
            "team-a-token",
        ))
        .await
        .expect("a listed token");

    // Probes carry no token.
    let health = HealthClient::new(control.channel().await)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health without a token")
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);
}

#[test]
fn tritonclient_calls_over_tls_with_a_token() {
    let ca = TestCa::new("hotswap test cluster");
    let dirs: Vec<tempfile::TempDir> = ["model-store", "control-plane", "worker"]
        .iter()
        .map(|name| {
            let dir = tempfile::tempdir().unwrap();
            ca.issue(name).write(dir.path());
            dir
        })
        .collect();
    let tls = |i: usize| dirs[i].path().to_str().unwrap().to_owned();
    let secrets = tempfile::tempdir().unwrap();
    let tokens = secrets.path().join("tokens");
    std::fs::write(&tokens, "# the test client\nperf-team-7f3a\n").unwrap();
    let ca_file = dirs[0].path().join("ca.crt");

    let example = workspace_root().join("examples/iris-onnx");
    let config = example.join("hotswap.yaml");
    let store = Hotswap::start(
        &model_store_args(&config, &["--poll-interval", "200ms", "--tls", &tls(0)]),
        &[],
    );
    let store_addr = store.addr.to_string();
    let control = Hotswap::start(
        &[
            "control-plane",
            "--model-store",
            &store_addr,
            "--listen",
            "127.0.0.1:0",
            "--internal-listen",
            "127.0.0.1:0",
            "--tls",
            &tls(1),
            "--tokens-file",
            tokens.to_str().unwrap(),
        ],
        &[],
    );
    let internal = control.addr_of("control-plane-internal").to_string();
    let worker = Hotswap::start(
        &[
            "data-plane",
            "--model-store",
            &store_addr,
            "--control-plane",
            &internal,
            "--listen",
            "127.0.0.1:0",
            "--tls",
            &tls(2),
        ],
        &[],
    );
    let model = example.join("models/iris/3/model.onnx");
    let options = [
        "--ca",
        ca_file.to_str().unwrap(),
        "--token",
        "perf-team-7f3a",
    ];
    if let Err(output) = triton_check_with(&control.addr.to_string(), "iris", "3", &model, &options)
    {
        panic!(
            "tritonclient over TLS with a token failed:\n{output}\ncontrol plane log:\n{}\nworker log:\n{}",
            control.log().join("\n"),
            worker.log().join("\n")
        );
    }
    // HTTP/1.1 clients over TLS: Python's urllib3 2 (under `requests`)
    // offers only http/1.1 in ALPN, as `curl --http1.1` does, and must get
    // Cortex's POST /{api} answered; curl's default offers h2 first.
    for version in ["--http1.1", "--http2"] {
        let out = std::process::Command::new("curl")
            .args(["-s", version, "--max-time", "10", "--cacert"])
            .arg(&ca_file)
            .args([
                "-H",
                "Authorization: Bearer perf-team-7f3a",
                "-H",
                "Content-Type: application/json",
                "-d",
                IRIS_INPUT,
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{http_version}",
            ])
            .arg(format!("https://localhost:{}/iris", control.addr.port()))
            .output()
            .expect("run curl");
        let got = String::from_utf8_lossy(&out.stdout).into_owned();
        let want = if version == "--http1.1" {
            "200 1.1"
        } else {
            "200 2"
        };
        assert_eq!(
            got,
            want,
            "curl {version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (name, process) in [
        ("model-store", &store),
        ("control plane", &control),
        ("worker", &worker),
    ] {
        assert!(
            process
                .log()
                .iter()
                .any(|l| l.contains("listening") && l.contains("tls=true")),
            "{name} did not serve TLS: {:#?}",
            process.log()
        );
    }
}

/// A key that is not PEM stops the start, naming the listener and the file,
/// rather than a listener that fails every handshake.
#[test]
fn unreadable_tls_material_stops_the_start() {
    let ca = TestCa::new("hotswap test cluster");
    let dir = tempfile::tempdir().unwrap();
    ca.issue("model-store").write(dir.path());
    std::fs::write(dir.path().join("tls.key"), "not a key\n").unwrap();
    let config = workspace_root().join("examples/iris-onnx/hotswap.yaml");
    let (code, stderr) = run_hotswap(&model_store_args(
        &config,
        &["--tls", dir.path().to_str().unwrap()],
    ));
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("TLS for the listener") && stderr.contains("tls.key: not readable as PEM"),
        "{stderr}"
    );
}
