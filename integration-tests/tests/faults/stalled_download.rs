//! An object that never answers holds only its own version: downloads wait
//! a bounded time for a first byte and between bytes, are tried again after
//! a jittered backoff, and then fail the load (the previous version keeps
//! serving); meanwhile other versions and models load. Before, the stalled
//! download held its API's lock with no timeout, and a good newer version
//! stayed LOADING for minutes with nothing logged.

use std::time::Duration;

use hotswap_data_plane::DownloadLimits;
use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::proxy::Proxy;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerOptions, WorkerServer, index_entry, iris, iris_label, predict_json,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_download_holds_only_its_own_version() {
    let bucket = TestBucket::new(Backend::S3).await;
    bucket.put("zoo/a/1/model.onnx", iris(0)).await;
    let config = format!(
        "- {{name: zoo, predictor: {{type: onnx, models: {{dir: '{}'}}}}}}",
        bucket.uri("zoo")
    );
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let s3 = bucket.emulator_addr();
    let proxy = Proxy::start(s3).await;
    let mut storage = bucket.storage_options();
    storage.s3.endpoint = Some(format!("http://{}", proxy.addr));
    let worker = WorkerServer::start_with(
        store.addr,
        &bucket,
        WorkerOptions {
            storage: Some(storage),
            downloads: Some(DownloadLimits {
                first_byte: Duration::from_secs(1),
                stall: Duration::from_secs(1),
                attempts: 2,
                ..DownloadLimits::default()
            }),
            ..Default::default()
        },
    )
    .await;
    let p = worker.predictor().await;
    let ask = |model: &'static str| {
        let mut p = p.clone();
        async move {
            p.predict(predict_json("zoo", model, "", IRIS_INPUT))
                .await
                .ok()
                .map(|r| r.into_inner())
        }
    };
    eventually("zoo/a version 1", || ask("a")).await;

    // Version 2 of `a` never answers. Once its download hangs, a good
    // version 3 and a model `b` arrive.
    proxy.stall("zoo/a/2/");
    bucket.put("zoo/a/2/model.onnx", iris(1)).await;
    eventually("zoo/a version 2 downloading", || async {
        index_entry(worker.addr, "zoo/a", "2")
            .await
            .filter(|m| m.state == "LOADING")
    })
    .await;
    let a = ask("a").await.expect("zoo/a still served");
    assert_eq!(a.version, 1, "the previous version keeps serving");
    bucket.put("zoo/a/3/model.onnx", iris(2)).await;
    bucket.put("zoo/b/1/model.onnx", iris(2)).await;
    let three = eventually("zoo/a version 3 beside the stalled download", || async {
        ask("a").await.filter(|r| r.version == 3)
    })
    .await;
    assert_eq!(iris_label(&three), 2);
    let b = eventually("zoo/b loaded beside the stalled download", || ask("b")).await;
    assert_eq!(iris_label(&b), 2);

    // The stalled version fails, with the reason, after its bounded tries.
    let reason = eventually("zoo/a version 2 failed", || async {
        index_entry(worker.addr, "zoo/a", "2")
            .await
            .filter(|m| m.state == "UNAVAILABLE")
            .map(|m| m.reason)
            .filter(|r| r.contains("no data for"))
    })
    .await;
    assert!(reason.contains("load failed"), "{reason}");

    // The store answers again: the retry brings version 2 in.
    proxy.unstall();
    let two = eventually("zoo/a version 2 once the store answers", || {
        let mut p = p.clone();
        async move {
            p.predict(predict_json("zoo", "a", "2", IRIS_INPUT))
                .await
                .ok()
                .map(|r| r.into_inner())
        }
    })
    .await;
    assert_eq!(iris_label(&two), 1);
}
