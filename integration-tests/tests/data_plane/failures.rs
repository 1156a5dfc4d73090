//! What goes wrong never takes a working version away: a corrupt new
//! version, a corrupt in-place update, a model-store that restarts, a Watch
//! stream that breaks (and resumes from the last revision applied).

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::proxy::Proxy;
use hotswap_integration_tests::store::{StoreServer, Watcher};
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerOptions, WorkerServer, answer, index_entry, iris, iris_label, predict_json,
};
use tonic::Code;

use super::stack;

const CONFIG: &str = "- {name: iris, predictor: {type: onnx, models: {path: '{root}iris'}}}";

#[tokio::test]
async fn a_corrupt_model_never_replaces_a_working_one() {
    let (bucket, store, worker) = stack(CONFIG).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    let mut p = worker.predictor().await;
    answer(&p, "iris", "version 1 served", |_| true).await;

    // A new version whose file is not a model: the model-store cannot tell
    // (one *.onnx file), the worker's load fails and says so.
    bucket
        .put("iris/2/model.onnx", "this is not an onnx model")
        .await;
    let failed = eventually("version 2 reported failed", || async {
        index_entry(worker.addr, "iris", "2")
            .await
            .filter(|m| m.reason.contains("load failed"))
    })
    .await;
    assert_eq!(failed.state, "UNAVAILABLE");
    let latest = p
        .predict(predict_json("iris", "", "", IRIS_INPUT))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((latest.version, iris_label(&latest)), (1, 0));
    let pinned = p
        .predict(predict_json("iris", "", "2", IRIS_INPUT))
        .await
        .unwrap_err();
    assert_eq!(pinned.code(), Code::Unavailable, "{pinned:?}");
    assert!(
        pinned.message().contains("version 2"),
        "{}",
        pinned.message()
    );

    // A corrupt rewrite of the serving version: the old content keeps
    // answering, the index says the update failed.
    bucket.put("iris/1/model.onnx", "garbage again").await;
    let update = eventually("failed update of version 1 reported", || async {
        index_entry(worker.addr, "iris", "1")
            .await
            .filter(|m| m.reason.contains("update failed"))
    })
    .await;
    assert_eq!(update.state, "READY");
    let still = p
        .predict(predict_json("iris", "", "1", IRIS_INPUT))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(iris_label(&still), 0);

    // A good upload over the broken version is loaded at once (new content,
    // no backoff) and becomes latest.
    bucket.put("iris/2/model.onnx", iris(2)).await;
    let fixed = answer(&p, "iris", "version 2 served after the fix", |r| {
        r.version == 2
    })
    .await;
    assert_eq!(iris_label(&fixed), 2);
    worker.stop().await;
    store.stop().await;
}

#[tokio::test]
async fn the_worker_outlives_a_model_store_restart() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    let config = CONFIG.replace("{root}", &bucket.uri(""));
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let addr = store.addr.to_string();
    let worker = WorkerServer::start(&store, &bucket).await;
    let mut p = worker.predictor().await;
    answer(&p, "iris", "version 1 served", |_| true).await;

    store.stop().await;
    // Serving goes on from what the worker holds.
    for _ in 0..20 {
        let r = p
            .predict(predict_json("iris", "", "", IRIS_INPUT))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.version, 1);
    }
    bucket.put("iris/2/model.onnx", iris(1)).await;
    let store = StoreServer::start_on(&addr, &bucket, &config, |_| {}).await;
    let caught_up = answer(&p, "iris", "version 2 after the restart", |r| {
        r.version == 2
    })
    .await;
    assert_eq!(iris_label(&caught_up), 1);
    assert_eq!(worker.worker.catalog().versions.len(), 2);
    worker.stop().await;
    store.stop().await;
}

#[tokio::test]
async fn a_broken_stream_resumes_from_the_last_revision() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    let config = CONFIG.replace("{root}", &bucket.uri(""));
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let proxy = Proxy::start(store.addr).await;
    let worker = WorkerServer::start_with(proxy.addr, &bucket, WorkerOptions::default()).await;
    let mut p = worker.predictor().await;
    answer(&p, "iris", "version 1 served", |_| true).await;
    assert_eq!(worker.worker.subscription_stats(), (1, 1, 0));

    // The stream breaks; the model-store publishes meanwhile.
    proxy.down();
    let mut watcher = Watcher::synced(&store).await;
    bucket.put("iris/2/model.onnx", iris(1)).await;
    watcher
        .until("version 2 published", |w| w.has("iris", "iris", 2))
        .await;
    let r = p
        .predict(predict_json("iris", "", "", IRIS_INPUT))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.version, 1, "still serving what it had");

    proxy.up();
    answer(&p, "iris", "version 2 served after the reconnect", |r| {
        r.version == 2
    })
    .await;
    let (connects, snapshots, events) = worker.worker.subscription_stats();
    assert!(connects >= 2, "reconnected ({connects} streams)");
    assert_eq!(
        snapshots, 1,
        "resumed from its revision: no second snapshot"
    );
    assert_eq!(events, 1, "exactly the missed event");
    assert_eq!(worker.worker.catalog().revision, watcher.revision);
    worker.stop().await;
    store.stop().await;
}

#[tokio::test]
async fn on_demand_latest_never_fails_for_a_broken_new_version() {
    let config = "
- name: iris
  predictor: {type: onnx, models: {path: '{root}iris', cache_size: 2, disk_cache_size: 2}}
";
    let (bucket, store, worker) = stack(config).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    let mut p = worker.predictor().await;
    answer(&p, "iris", "version 1 served", |_| true).await;
    bucket.put("iris/2/model.onnx", "not a model").await;
    let w = &worker;
    eventually("version 2 indexed", || async move {
        (w.worker.catalog().versions.len() == 2).then_some(())
    })
    .await;
    // Across several retry backoffs of the broken version, every latest
    // request is answered by the working one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(2500);
    let mut answered = 0;
    while std::time::Instant::now() < deadline {
        let r = p
            .predict(predict_json("iris", "", "", IRIS_INPUT))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.version, iris_label(&r)), (1, 0));
        answered += 1;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(answered > 0);
    let failed = index_entry(worker.addr, "iris", "2").await.unwrap();
    assert!(failed.reason.contains("load failed"), "{failed:?}");
    worker.stop().await;
    store.stop().await;
}

#[tokio::test]
async fn an_update_the_model_store_finds_invalid_keeps_the_last_good_content() {
    let (bucket, store, worker) = stack(CONFIG).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    let mut p = worker.predictor().await;
    answer(&p, "iris", "version 1 served", |_| true).await;
    // A second .onnx file makes the version INVALID for the model-store
    // (an upload in progress, say).
    bucket.put("iris/1/other.onnx", iris(1)).await;
    let entry = eventually("version 1 reported invalid", || async {
        index_entry(worker.addr, "iris", "1")
            .await
            .filter(|m| m.reason.contains("update invalid"))
    })
    .await;
    assert_eq!(entry.state, "READY");
    for version in ["", "1"] {
        let r = p
            .predict(predict_json("iris", "", version, IRIS_INPUT))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.version, iris_label(&r)), (1, 0));
    }
    worker.stop().await;
    store.stop().await;
}
