//! A download gets the object the listing saw, or nothing: a same-size
//! rewrite between the listing and the download was downloaded and served
//! under the old content hash (only the size was checked). Now S3 is asked
//! with If-Match on the listed ETag, GCS with the listed generation, and a
//! local file must still have the listed size, mtime and inode; a mismatch
//! abandons the download and the next listing brings the new content.

use std::time::Duration;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerOptions, WorkerServer, iris, iris_label, predict_json,
};

async fn rewrite_between_listing_and_download(backend: Backend) {
    let bucket = TestBucket::new(backend).await;
    bucket.put("m/1/model.onnx", iris(0)).await;
    let config = format!(
        "- {{name: m, predictor: {{type: onnx, models: {{path: '{}', cache_size: 1}}}}}}",
        bucket.uri("m")
    );
    // A long settle: the rewrite below stays unpublished for a while.
    let store =
        StoreServer::start(&bucket, &config, |c| c.poll.settle = Duration::from_secs(3)).await;
    let cache = tempfile::tempdir().unwrap();
    let worker = WorkerServer::start_with(
        store.addr,
        &bucket,
        WorkerOptions {
            cache_dir: Some(cache.path().to_path_buf()),
            ..Default::default()
        },
    )
    .await;
    let w = &worker;
    // On demand (cache_size): nothing is downloaded before a call asks.
    let listed = eventually("version 1 in the worker's index", || async move {
        w.worker
            .catalog()
            .versions
            .values()
            .next()
            .map(|v| v.content_hash.clone())
    })
    .await;
    let same_size = iris(2);
    assert_eq!(same_size.len(), iris(0).len());
    bucket.put("m/1/model.onnx", same_size.clone()).await;

    // Version 1 as listed is gone: a call now cannot be served by it.
    let mut p = worker.predictor().await;
    if let Ok(r) = p.predict(predict_json("m", "", "1", IRIS_INPUT)).await {
        assert_eq!(
            iris_label(&r.into_inner()),
            0,
            "the new bytes served under the listed content hash"
        );
    }
    let folder = cache
        .path()
        .join("m/m")
        .join(format!("1-{}", &listed[..16]));
    if let Ok(bytes) = std::fs::read(folder.join("model.onnx")) {
        assert_ne!(
            bytes, same_size,
            "{backend:?}: a mixed download was cached as listed"
        );
    }
    // Once the model-store publishes the new content, it serves.
    eventually("the rewritten version serves", || {
        let mut p = p.clone();
        async move {
            let r = p
                .predict(predict_json("m", "", "1", IRIS_INPUT))
                .await
                .ok()?;
            (iris_label(&r.into_inner()) == 2).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_downloads_are_pinned_to_the_listing() {
    rewrite_between_listing_and_download(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_downloads_are_pinned_to_the_listing() {
    rewrite_between_listing_and_download(Backend::S3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_downloads_are_pinned_to_the_listing() {
    rewrite_between_listing_and_download(Backend::Gcs).await;
}
