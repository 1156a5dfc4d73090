//! Memory a Python predictor's models hold is given back when a model is
//! evicted or its version removed.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{output_json, request};
use tonic::Code;

use crate::{first_answer, serve};

const BIG: &str = r#"
import numpy as np

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client

    def load_model(self, model_path):
        # 200 MB that must go when the model is evicted.
        return np.ones(25_000_000)

    def predict(self, payload, query_params):
        if payload == "rss":
            return rss_mb()
        model = self.client.get_model(model_version=query_params["version"])
        return {"sum": float(model[:10].sum()), "rss": rss_mb()}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_model_gives_its_memory_back() {
    let bucket = TestBucket::new(Backend::Local).await;
    for v in [1, 2, 3] {
        bucket.put(&format!("big/{v}/weights.txt"), "x").await;
    }
    let config = format!(
        "- {{name: big, predictor: {{type: python, path: big.py, multi_model_reloading: {{path: '{}', cache_size: 1, disk_cache_size: 3}}}}}}",
        bucket.uri("big")
    );
    let (store, worker) = serve(&bucket, &config, BIG).await;
    let base =
        output_json(&first_answer(&worker, request("big", "\"rss\"", &[("version", "")])).await)
            .as_f64()
            .unwrap();
    let mut p = worker.predictor().await;
    let rss = |v: &str| {
        let r = request("big", "{}", &[("version", v)]);
        let mut p = p.clone();
        async move {
            output_json(&p.predict(r).await.unwrap().into_inner())["rss"]
                .as_f64()
                .unwrap()
        }
    };
    let one = rss("1").await;
    assert!(
        one - base > 150.0,
        "a loaded model holds its 200 MB: {base} -> {one}"
    );
    // Each load evicts the previous model (cache_size 1): without the
    // release, three models would hold 600 MB.
    let two = rss("2").await;
    let three = rss("3").await;
    assert!(
        two - base < 300.0 && three - base < 300.0,
        "evicted models were released: {base} -> {one}, {two}, {three}"
    );
    let _ = p
        .predict(request("big", "\"rss\"", &[("version", "")]))
        .await
        .unwrap();
    worker.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_version_leaves_memory_at_once() {
    let bucket = TestBucket::new(Backend::Local).await;
    for v in [1, 2] {
        bucket.put(&format!("big/{v}/weights.txt"), "x").await;
    }
    let config = format!(
        "- {{name: big, predictor: {{type: python, path: big.py, multi_model_reloading: {{path: '{}', cache_size: 4}}}}}}",
        bucket.uri("big")
    );
    let (store, worker) = serve(&bucket, &config, BIG).await;
    let base =
        output_json(&first_answer(&worker, request("big", "\"rss\"", &[("version", "")])).await)
            .as_f64()
            .unwrap();
    let mut p = worker.predictor().await;
    let loaded = output_json(
        &p.predict(request("big", "{}", &[("version", "1")]))
            .await
            .unwrap()
            .into_inner(),
    )["rss"]
        .as_f64()
        .unwrap();
    assert!(loaded - base > 150.0, "{base} -> {loaded}");
    // Removed from the bucket: the process drops its copy without waiting
    // for a get_model or an LRU eviction.
    bucket.delete_prefix("big/1/").await;
    let p2 = p.clone();
    eventually("the removed model's memory given back", || {
        let mut p = p2.clone();
        async move {
            let rss = output_json(
                &p.predict(request("big", "\"rss\"", &[("version", "")]))
                    .await
                    .ok()?
                    .into_inner(),
            )
            .as_f64()?;
            (rss - base < 80.0).then_some(())
        }
    })
    .await;
    let e = p
        .predict(request("big", "{}", &[("version", "1")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    worker.stop().await;
    store.stop().await;
}
