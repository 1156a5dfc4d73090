//! A source that cannot be listed is unknown, never empty. An S3 outage
//! across a model-store restart made the new store's failed first listing
//! read as an empty bucket, and every worker dropped every model; a local
//! model folder missing for a moment listed as empty too. Nothing may be
//! removed on such a source's account, and the store says the source is
//! unhealthy and why. A listing that succeeds and is empty still removes.

use std::time::Duration;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::load::Load;
use hotswap_integration_tests::proxy::Proxy;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerOptions, WorkerServer, iris, predict_json,
};
use hotswap_model_store::ModelStoreConfig;
use hotswap_proto::v1::{ListModelsRequest, SourceStatus};
use tonic::Code;

fn config(bucket: &TestBucket) -> String {
    format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: '{}'}}}}}}",
        bucket.uri("iris")
    )
}

/// The control plane and one registered worker, serving `iris` version 1.
async fn front(store: &StoreServer, bucket: &TestBucket) -> (ControlServer, WorkerServer) {
    let control = ControlServer::start(store.addr).await;
    let options = WorkerOptions {
        control_plane: Some(control.internal.to_string()),
        ..Default::default()
    };
    let worker = WorkerServer::start_with(store.addr, bucket, options).await;
    control.wait_for_workers(1).await;
    let p = control.predictor().await;
    eventually("iris served through the front door", || {
        let mut p = p.clone();
        async move {
            p.predict(predict_json("iris", "", "", IRIS_INPUT))
                .await
                .ok()
        }
    })
    .await;
    (control, worker)
}

async fn load(control: &ControlServer) -> Load {
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(control.predictor().await);
    }
    Load::start(clients, |mut p| async move {
        p.predict(predict_json("iris", "", "", IRIS_INPUT))
            .await
            .map(|_| ())
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    })
}

async fn source(store: &StoreServer) -> SourceStatus {
    store
        .client()
        .await
        .list_models(ListModelsRequest::default())
        .await
        .expect("list models")
        .into_inner()
        .apis[0]
        .sources[0]
        .clone()
}

/// Waits until the source's last listing succeeded (`healthy`), or failed.
async fn until_source(store: &StoreServer, what: &str, healthy: bool) -> SourceStatus {
    eventually(what, || async {
        let s = source(store).await;
        let failed = s.consecutive_failures > 0;
        (s.healthy == healthy && failed != healthy).then_some(s)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_across_a_model_store_restart_loses_nothing() {
    let bucket = TestBucket::new(Backend::S3).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    let s3 = bucket.emulator_addr();
    let proxy = Proxy::start(s3).await;
    let through_proxy = |c: &mut ModelStoreConfig| {
        c.storage.s3.endpoint = Some(format!("http://{}", proxy.addr));
    };
    let store = StoreServer::start(&bucket, &config(&bucket), through_proxy).await;
    let addr = store.addr;
    let (control, worker) = front(&store, &bucket).await;
    let before = worker.worker.catalog().incarnation.clone();
    let load = load(&control).await;

    // S3 goes away, and the model-store restarts meanwhile.
    proxy.down();
    store.stop().await;
    let store =
        StoreServer::start_on(&addr.to_string(), &bucket, &config(&bucket), through_proxy).await;
    let failing = until_source(&store, "the source reported unhealthy", false).await;
    assert!(!failing.last_error.is_empty(), "{failing:?}");
    let (w, before) = (&worker, &before);
    eventually("the worker follows the new model-store", || async move {
        (w.worker.catalog().incarnation != *before).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // S3 comes back: listed, healthy, and still nothing was removed.
    proxy.up();
    until_source(&store, "the source healthy again", true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    load.stop()
        .await
        .assert_clean("calls through an S3 outage and a model-store restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_folder_missing_for_a_moment_loses_nothing() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    let TestBucket::Local { root } = &bucket else {
        unreachable!("a local bucket")
    };
    let store = StoreServer::start(&bucket, &config(&bucket), |_| {}).await;
    let (control, _worker) = front(&store, &bucket).await;
    let load = load(&control).await;

    let (folder, away) = (root.path().join("iris"), root.path().join("iris.away"));
    std::fs::rename(&folder, &away).unwrap();
    let mut reported = None;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = source(&store).await;
        if !s.healthy && s.consecutive_failures > 0 {
            reported = Some(s);
        }
    }
    std::fs::rename(&away, &folder).unwrap();
    until_source(&store, "the source healthy again", true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    load.stop()
        .await
        .assert_clean("calls while the model folder was away");
    let missing = reported.expect("the missing folder reported as an unhealthy source");
    assert!(missing.last_error.contains("iris"), "{missing:?}");
}

async fn emptied(backend: Backend) {
    let bucket = TestBucket::new(backend).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    let store = StoreServer::start(&bucket, &config(&bucket), |_| {}).await;
    let (control, _worker) = front(&store, &bucket).await;
    bucket.delete("iris/1/model.onnx").await;
    let p = control.predictor().await;
    eventually("the emptied model removed", || {
        let mut p = p.clone();
        async move {
            let err = p
                .predict(predict_json("iris", "", "", IRIS_INPUT))
                .await
                .err()?;
            (err.code() == Code::NotFound).then_some(())
        }
    })
    .await;
    assert!(source(&store).await.healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_s3_prefix_still_removes_its_models() {
    emptied(Backend::S3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_local_folder_still_removes_its_models() {
    emptied(Backend::Local).await;
}
