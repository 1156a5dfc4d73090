//! `python_client.get_model()` ("latest") falls back as ONNX and TensorFlow
//! models do: when the newest version's `load_model` raises, the highest
//! version that loads serves, and the broken one is tried again only after
//! a backoff or when its files change.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::process::venv;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{WorkerOptions, WorkerServer, output_json, request};

const PREDICTOR: &str = r#"
class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client
        self.loads = 0

    def load_model(self, path):
        self.loads += 1
        with open(path + "/model.txt") as f:
            text = f.read()
        if text.startswith("broken"):
            raise ValueError("cannot load " + text)
        return text

    def predict(self, payload):
        return {"model": self.client.get_model(), "loads": self.loads}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_falls_back_to_a_version_that_loads() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("m/1/model.txt", "one").await;
    bucket.put("m/2/model.txt", "broken two").await;
    let config = format!(
        "- {{name: m, predictor: {{type: python, path: m.py, multi_model_reloading: {{path: '{}'}}}}}}",
        bucket.uri("m")
    );
    let store = StoreServer::start(&bucket, &config, |c| {
        c.apis[0].predictor_source = Some(PREDICTOR.to_owned())
    })
    .await;
    let options = WorkerOptions {
        python_venv: Some(venv()),
        ..Default::default()
    };
    let worker = WorkerServer::start_with(store.addr, &bucket, options).await;
    let p = worker.predictor().await;
    let first = eventually("the predictor answers", || {
        let mut p = p.clone();
        async move { p.predict(request("m", "{}", &[])).await.ok() }
    })
    .await
    .into_inner();
    assert_eq!(output_json(&first)["model"], "one");
    let loads = output_json(&first)["loads"].as_u64().unwrap();
    // Served by version 1, without trying version 2 on every call.
    for _ in 0..20 {
        let mut p = p.clone();
        let out = output_json(
            &p.predict(request("m", "{}", &[]))
                .await
                .expect("served")
                .into_inner(),
        );
        assert_eq!(out["model"], "one");
        assert_eq!(out["loads"].as_u64().unwrap(), loads, "loaded again");
    }
    // Version 2 repaired: its new files load at once.
    bucket.put("m/2/model.txt", "two").await;
    eventually("the repaired version 2 serves", || {
        let mut p = p.clone();
        async move {
            let out = output_json(&p.predict(request("m", "{}", &[])).await.ok()?.into_inner());
            (out["model"] == "two").then_some(())
        }
    })
    .await;
}
