//! With `cache_size: 1`, a broken newer version must not cost the version
//! serving: a load evicted the serving version to make room before it knew
//! the new one would load, so at every retry of the broken v3 the good v2
//! was evicted, downloaded again and loaded again, and calls waited for it.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerOptions, WorkerServer, index_entry, iris, iris_label, predict_json,
};

/// Long enough for the broken version's retries (after 1 s, 2 s, 4 s).
const WATCH: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_version_never_evicts_the_serving_one() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/2/model.onnx", iris(1)).await;
    bucket.put("iris/3/model.onnx", "not an onnx model").await;
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: '{}', cache_size: 1, disk_cache_size: 1}}}}}}",
        bucket.uri("iris")
    );
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
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
    let mut p = worker.predictor().await;
    let first = eventually("version 2 answers", || {
        let mut p = p.clone();
        async move {
            let r = p
                .predict(predict_json("iris", "", "", IRIS_INPUT))
                .await
                .ok()?
                .into_inner();
            (r.version == 2).then_some(r)
        }
    })
    .await;
    assert_eq!(iris_label(&first), 1);
    let v2_file = || {
        std::fs::read_dir(cache.path().join("iris/iris"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("2-"))
            .map(|e| e.path().join("model.onnx"))
    };
    let inode = std::fs::metadata(v2_file().expect("version 2 on disk"))
        .unwrap()
        .ino();
    let loads = worker.worker.table_stats().loads;

    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed() < WATCH {
        let r = p
            .predict(predict_json("iris", "", "", IRIS_INPUT))
            .await
            .expect("every call answered")
            .into_inner();
        assert_eq!(r.version, 2);
        calls += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(calls > 50);
    assert_eq!(
        worker.worker.table_stats().loads,
        loads,
        "version 2 was loaded again"
    );
    let still = v2_file().expect("version 2 still on disk");
    assert_eq!(
        std::fs::metadata(still).unwrap().ino(),
        inode,
        "version 2 was downloaded again"
    );
    // And the broken version was tried meanwhile, not skipped.
    let three = index_entry(worker.addr, "iris", "3")
        .await
        .expect("version 3 in the index");
    assert_eq!(three.state, "UNAVAILABLE", "{three:?}");
    assert!(three.reason.contains("load failed"), "{three:?}");
}
