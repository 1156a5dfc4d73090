//! Cortex's cache semantics with the limits enforced on insertion:
//! `cache_size` models in memory, `disk_cache_size` on disk, least recently
//! used out first, loaded on first request (one load for concurrent first
//! requests).

use std::path::Path;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerOptions, WorkerServer, iris, iris_label, predict_json,
};

const CONFIG: &str = "
- name: multi
  predictor:
    type: onnx
    models: {dir: '{root}models', cache_size: 2, disk_cache_size: 3}
";

/// Version folders in the worker's disk cache.
fn cached_versions(root: &Path) -> usize {
    let Ok(models) = std::fs::read_dir(root.join("multi")) else {
        return 0;
    };
    models
        .flatten()
        .map(|m| std::fs::read_dir(m.path()).map_or(0, |v| v.count()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_disk_limits_evict_least_recently_used() {
    let bucket = TestBucket::new(Backend::Local).await;
    for (i, model) in ["m1", "m2", "m3", "m4"].iter().enumerate() {
        bucket
            .put(&format!("models/{model}/1/model.onnx"), iris(i % 3))
            .await;
    }
    let config = CONFIG.replace("{root}", &bucket.uri(""));
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
    let w = &worker;
    eventually("the four models indexed", || async move {
        (w.worker.catalog().versions.len() == 4).then_some(())
    })
    .await;
    // Nothing is loaded before it is asked for.
    assert_eq!(worker.worker.table_stats().loads, 0);

    let mut p = worker.predictor().await;
    let mut ask = async |model: &str| {
        let r = p
            .predict(predict_json("multi", model, "", IRIS_INPUT))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.model, model);
        iris_label(&r)
    };
    let ready = async || {
        let mut names: Vec<String> = w
            .ready_versions()
            .await
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        names.sort();
        names
    };

    assert_eq!(ask("m1").await, 0);
    assert_eq!(ask("m2").await, 1);
    assert_eq!(ready().await, ["multi/m1", "multi/m2"]);
    assert_eq!(ask("m3").await, 2);
    assert_eq!(
        ready().await,
        ["multi/m2", "multi/m3"],
        "m1 was least recently used"
    );
    assert_eq!(cached_versions(cache.path()), 3);
    assert_eq!(ask("m2").await, 1);
    assert_eq!(
        worker.worker.table_stats().loads,
        3,
        "m2 was still in memory"
    );
    assert_eq!(ask("m4").await, 0);
    assert_eq!(
        ready().await,
        ["multi/m2", "multi/m4"],
        "m3 was used before m2"
    );
    assert_eq!(
        cached_versions(cache.path()),
        3,
        "the disk cache holds 3 at most"
    );
    assert!(
        !cache
            .path()
            .join("multi/m1")
            .read_dir()
            .unwrap()
            .any(|_| true),
        "m1, on disk only and oldest, left the disk"
    );

    // Concurrent first requests for an evicted model share one load.
    let before = worker.worker.table_stats().loads;
    let mut calls = Vec::new();
    for _ in 0..8 {
        let mut p = worker.predictor().await;
        calls.push(tokio::spawn(async move {
            p.predict(predict_json("multi", "m1", "", IRIS_INPUT))
                .await
                .map(|r| iris_label(&r.into_inner()))
        }));
    }
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap(), 0);
    }
    let stats = worker.worker.table_stats();
    assert_eq!(
        stats.loads,
        before + 1,
        "one load for eight concurrent first requests"
    );
    assert_eq!(stats.published, 2);
    assert_eq!(
        stats.high_water.get("multi"),
        Some(&2),
        "never more than cache_size in memory: {stats:?}"
    );
    assert!(cached_versions(cache.path()) <= 3);
    worker.stop().await;
    store.stop().await;
}
