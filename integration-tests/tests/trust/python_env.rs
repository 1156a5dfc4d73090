//! A predictor's processes start from a scrubbed environment: the worker's
//! credentials are not theirs unless the API's `predictor.env` passes them.
//! Before, they inherited the worker's whole environment.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::process::{Hotswap, venv};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{output_json, request};
use hotswap_proto::v1::predictor_client::PredictorClient;

const PREDICTOR: &str = r#"
import os

class PythonPredictor:
    def __init__(self, config, python_client):
        pass

    def predict(self, payload):
        return {name: os.environ.get(name) for name in payload}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_predictor_sees_what_its_config_passes_and_no_credentials() {
    let bucket = TestBucket::new(Backend::Local).await;
    let config = "- {name: env, predictor: {type: python, path: env.py, env: {GREETING: hello}}}";
    let store = StoreServer::start(&bucket, config, |c| {
        c.apis[0].predictor_source = Some(PREDICTOR.to_owned())
    })
    .await;
    let venv = venv();
    let worker = Hotswap::start(
        &[
            "data-plane",
            "--model-store",
            &store.addr.to_string(),
            "--listen",
            "127.0.0.1:0",
            "--python-venv",
            venv.to_str().unwrap(),
        ],
        &[
            ("AWS_SECRET_ACCESS_KEY", "worker-secret"),
            ("GOOGLE_APPLICATION_CREDENTIALS", "/keys/worker.json"),
            ("HOTSWAP_CLUSTER_TOKEN", "cluster-secret"),
            ("LC_ALL", "C.UTF-8"),
        ],
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", worker.addr))
        .unwrap()
        .connect()
        .await
        .expect("connect to the worker");
    let p = PredictorClient::new(channel);
    let asked = r#"["AWS_SECRET_ACCESS_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "HOTSWAP_CLUSTER_TOKEN", "GREETING", "LC_ALL", "PATH"]"#;
    let seen = eventually("the predictor answers", || {
        let mut p = p.clone();
        async move {
            p.predict(request("env", asked, &[]))
                .await
                .ok()
                .map(|r| output_json(&r.into_inner()))
        }
    })
    .await;
    for secret in [
        "AWS_SECRET_ACCESS_KEY",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "HOTSWAP_CLUSTER_TOKEN",
    ] {
        assert!(
            seen[secret].is_null(),
            "{secret} reached the predictor: {seen}"
        );
    }
    assert_eq!(seen["GREETING"], "hello", "{seen}");
    assert_eq!(seen["LC_ALL"], "C.UTF-8", "{seen}");
    assert!(seen["PATH"].is_string(), "{seen}");
}
