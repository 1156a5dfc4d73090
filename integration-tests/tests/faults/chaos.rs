//! The faults one after another under one well-formed load, as a fleet
//! meets them: an ONNX model on S3 and a Python predictor, served by two
//! worker processes behind a control plane, while in turn the model-store
//! restarts during an S3 outage, a worker is killed outright, a new
//! version's download stalls, a predictor call hangs, a client sends
//! oversized names, and attackers hold the TLS front door (silent sockets,
//! slow bodies, JSON bombs, huge forms). No well-formed call may fail and
//! no worker may be dropped; the hung call itself ends DEADLINE_EXCEEDED,
//! the oversized ones INVALID_ARGUMENT, the bombs and forms a 4xx.

use std::net::SocketAddr;
use std::time::Duration;

use hotswap_common::trust::ClientTrust;
use hotswap_control_plane::ControlPlaneConfig;
use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::certs::TestCa;
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::http::Connector;
use hotswap_integration_tests::load::Load;
use hotswap_integration_tests::process::{Hotswap, venv};
use hotswap_integration_tests::proxy::Proxy;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{IRIS_INPUT, index_entry, iris, iris_label, predict_json};
use hotswap_model_store::ModelStoreConfig;
use hotswap_proto::v1::ListModelsRequest;
use tonic::Code;

/// Answers quickly, except that "hang" never returns.
const PREDICTOR: &str = r#"
import time

class PythonPredictor:
    def __init__(self, config, python_client):
        pass

    def predict(self, payload):
        if payload == "hang":
            time.sleep(3600)
        return {"echo": payload}
"#;

/// The Python call limit the workers run with: the hung call ends after it.
const CALL_TIMEOUT: &str = "2s";

/// A worker process registered with the control plane, downloading from S3
/// through `s3` with short download limits, so that a stall ends soon.
fn worker(store: SocketAddr, control: &ControlServer, s3: &Proxy) -> Hotswap {
    let venv = venv();
    Hotswap::start(
        &[
            "data-plane",
            "--model-store",
            &store.to_string(),
            "--control-plane",
            &control.internal.to_string(),
            "--listen",
            "127.0.0.1:0",
            "--s3-endpoint",
            &format!("http://{}", s3.addr),
            "--download-timeout",
            "1s",
            "--python-call-timeout",
            CALL_TIMEOUT,
            "--python-venv",
            venv.to_str().unwrap(),
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    )
}

async fn source_healthy(store: &StoreServer) -> bool {
    let apis = store
        .client()
        .await
        .list_models(ListModelsRequest::default())
        .await
        .expect("list models")
        .into_inner()
        .apis;
    apis.iter()
        .flat_map(|a| &a.sources)
        .all(|s| s.healthy && s.consecutive_failures == 0)
}

/// Each registered worker's id and when it registered: a worker dropped
/// and registered again has a new time.
async fn registrations(control: &ControlServer) -> Vec<(String, Option<prost_types::Timestamp>)> {
    let mut workers: Vec<_> = control
        .workers()
        .await
        .into_iter()
        .map(|w| (w.worker_id, w.registered))
        .collect();
    workers.sort_by(|a, b| a.0.cmp(&b.0));
    workers
}

/// Both workers registered, each serving iris and the predictor.
async fn two_workers_serving(control: &ControlServer) {
    eventually("two workers serving iris and py", || async {
        let w = control.workers().await;
        (w.len() == 2
            && w.iter()
                .all(|w| !w.held.is_empty() && w.predictors.iter().any(|p| p == "py")))
        .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_formed_calls_survive_every_fault_in_turn() {
    let bucket = TestBucket::new(Backend::S3).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    let emulator = bucket.emulator_addr();
    // The store and the workers reach S3 through proxies: both are cut in
    // the outage; the workers' one stalls a download.
    let store_s3 = Proxy::start(emulator).await;
    let workers_s3 = Proxy::start(emulator).await;
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: '{}'}}}}}}\n\
         - {{name: py, predictor: {{type: python, path: py.py, processes_per_replica: 2}}}}",
        bucket.uri("iris")
    );
    let store_config = |c: &mut ModelStoreConfig| {
        c.storage.s3.endpoint = Some(format!("http://{}", store_s3.addr));
        c.apis[1].predictor_source = Some(PREDICTOR.to_owned());
    };
    let store = StoreServer::start(&bucket, &config, store_config).await;
    let store_addr = store.addr;
    // TLS at the front door, so the attackers below can hold handshakes.
    let ca = TestCa::new("chaos");
    let control = ControlServer::start_with(ControlPlaneConfig {
        model_store: store_addr.to_string(),
        clients: ClientTrust {
            tls: Some(ca.tls("control-plane")),
            tokens: None,
        },
        ..ControlPlaneConfig::default()
    })
    .await
    .with_client_ca(ca.pem());
    let mut workers = vec![
        worker(store_addr, &control, &workers_s3),
        worker(store_addr, &control, &workers_s3),
    ];
    two_workers_serving(&control).await;

    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(control.predictor().await);
    }
    let onnx = Load::start(clients, |mut p| async move {
        let answer = p
            .predict(predict_json("iris", "", "", IRIS_INPUT))
            .await
            .map_err(|s| format!("iris: {:?}: {}", s.code(), s.message()))?;
        // Version 1 answers 0, version 2 (arriving below) answers 1.
        match iris_label(&answer.into_inner()) {
            0 | 1 => Ok(()),
            other => Err(format!("iris answered {other}")),
        }
    });
    let mut clients = Vec::new();
    for _ in 0..2 {
        clients.push(control.predictor().await);
    }
    let python = Load::start(clients, |mut p| async move {
        p.predict(predict_json("py", "", "", "[1, 2]"))
            .await
            .map(|_| ())
            .map_err(|s| format!("py: {:?}: {}", s.code(), s.message()))
    });

    // 1. S3 goes away, and the model-store restarts meanwhile.
    store_s3.down();
    workers_s3.down();
    store.stop().await;
    let store =
        StoreServer::start_on(&store_addr.to_string(), &bucket, &config, store_config).await;
    eventually("the source reported unhealthy", || async {
        (!source_healthy(&store).await).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    store_s3.up();
    workers_s3.up();
    eventually("the source healthy again", || async {
        source_healthy(&store).await.then_some(())
    })
    .await;

    // 2. A worker is killed outright; a new one takes its place.
    let mut killed = workers.remove(0);
    killed.process.child.kill().expect("SIGKILL a worker");
    let _ = killed.process.child.wait();
    workers.push(worker(store_addr, &control, &workers_s3));
    two_workers_serving(&control).await;

    // 3. Version 2's download stalls on every worker; version 1 serves on,
    // and version 2 comes in once S3 answers again.
    workers_s3.stall("iris/2/");
    bucket.put("iris/2/model.onnx", iris(1)).await;
    eventually("version 2 stalled or failed on a worker", || async {
        for w in &workers {
            let state = index_entry(w.addr, "iris", "2").await.map(|m| m.state);
            if matches!(state.as_deref(), Some("LOADING" | "UNAVAILABLE")) {
                return Some(());
            }
        }
        None
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    workers_s3.unstall();
    let p = control.predictor().await;
    eventually("version 2 served once S3 answers", || {
        let mut p = p.clone();
        async move {
            let r = p
                .predict(predict_json("iris", "", "2", IRIS_INPUT))
                .await
                .ok()?;
            (iris_label(&r.into_inner()) == 1).then_some(())
        }
    })
    .await;

    // 4. A predictor call hangs: it alone fails, when the limit passes.
    let mut hung = control.predictor().await;
    let hang = predict_json("py", "", "", "\"hang\"");
    let mut request = tonic::Request::new(hang);
    request.set_timeout(Duration::from_secs(30));
    let ended = hung
        .predict(request)
        .await
        .expect_err("the hung call fails");
    // The worker's limit ended it, not this client's deadline.
    assert_eq!(ended.code(), Code::DeadlineExceeded, "{ended:?}");
    assert!(
        ended.message().contains("did not answer within"),
        "{ended:?}"
    );

    // 5. Oversized names, refused alone.
    super::oversized::oversized_calls(&control).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 6. Attackers at the edge, all at once, while the load runs; new
    // clients are still served, and no worker is dropped for silence.
    let registered = registrations(&control).await;
    let fresh = || async {
        control
            .predictor()
            .await
            .predict(predict_json("iris", "", "", IRIS_INPUT))
            .await
            .map(|_| ())
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    };
    super::edge::attack_front_door(control.addr, &Connector::tls(&ca.pem()), fresh).await;
    assert_eq!(
        registrations(&control).await,
        registered,
        "a worker was dropped (and registered again) during the attack"
    );

    onnx.stop()
        .await
        .assert_clean("iris calls through every fault");
    python
        .stop()
        .await
        .assert_clean("predictor calls through every fault");
    for mut w in workers {
        w.process.terminate(Duration::from_secs(30)).await;
    }
    control.stop().await;
    store.stop().await;
}
