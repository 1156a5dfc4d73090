//! Indexing speed: a full index and a no-change re-poll, for 10,000 models ×
//! 3 versions in a local folder and 1,000 models × 3 versions in each
//! emulator. Run with `cargo bench -p hotswap-integration-tests --bench index`
//! (after `.ci/setup`); add `-- --quick` for a smaller run.
//!
//! Figures come from the model-store itself: the time until it reports ready
//! (first full index) and the duration of each later poll, which the source
//! status records (listing plus indexing).

use std::time::{Duration, Instant};

use futures::StreamExt;
use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_model_store::{ModelStore, ModelStoreConfig, ModelStoreService, PollSettings};
use hotswap_proto::v1::ListModelsRequest;

/// Later polls measured per backend; the median is reported.
const REPOLLS: usize = 5;

struct Row {
    backend: &'static str,
    models: usize,
    versions: usize,
    first_poll: Duration,
    ready_after: Duration,
    repoll: Duration,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (local_models, cloud_models) = if quick { (1_000, 100) } else { (10_000, 1_000) };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let rows = runtime.block_on(async {
        vec![
            run(Backend::Local, local_models).await,
            run(Backend::S3, cloud_models).await,
            run(Backend::Gcs, cloud_models).await,
        ]
    });
    println!();
    println!(
        "| backend | models | versions | first full index | ready after | no-change re-poll (median of {REPOLLS}) | re-poll / full |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.2} s | {:.2} s | {:.2} s | {:.2} |",
            r.backend,
            r.models,
            r.versions,
            r.first_poll.as_secs_f64(),
            r.ready_after.as_secs_f64(),
            r.repoll.as_secs_f64(),
            r.repoll.as_secs_f64() / r.first_poll.as_secs_f64()
        );
    }
}

async fn run(backend: Backend, models: usize) -> Row {
    let bucket = TestBucket::new(backend).await;
    let filled = Instant::now();
    fill(&bucket, models).await;
    eprintln!(
        "{backend:?}: wrote {} objects in {:.1?}",
        models * 3,
        filled.elapsed()
    );

    let config_text = format!(
        "- {{name: bench, predictor: {{type: onnx, models: {{dir: \"{}\"}}}}}}",
        bucket.uri("models")
    );
    let apis = hotswap_model_store::config::parse(&config_text, std::path::Path::new("/")).unwrap();
    let mut config = ModelStoreConfig::new(apis);
    config.storage = bucket.storage_options();
    config.poll = PollSettings {
        interval: Duration::from_millis(500),
        // Settled data: publish on the first listing, so ready = one poll.
        settle: Duration::ZERO,
        list_timeout: Duration::from_secs(600),
        max_backoff: Duration::from_secs(1),
    };

    let started = Instant::now();
    let store = ModelStore::start(config);
    store
        .health()
        .wait_for(|h| h.ready)
        .await
        .expect("store ready");
    let ready_after = started.elapsed();
    let (first_poll, mut last_success, versions) = poll_status(&store).await;
    assert_eq!(versions, models * 3, "every version indexed");

    let mut repolls = Vec::new();
    while repolls.len() < REPOLLS {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (took, at, _) = poll_status(&store).await;
        if at != last_success {
            last_success = at;
            repolls.push(took);
        }
    }
    repolls.sort();
    Row {
        backend: match backend {
            Backend::Local => "local folder",
            Backend::S3 => "S3 (moto)",
            Backend::Gcs => "GCS (fake-gcs-server)",
        },
        models,
        versions,
        first_poll,
        ready_after,
        repoll: repolls[REPOLLS / 2],
    }
}

/// (last poll duration, last success time, versions published).
async fn poll_status(store: &ModelStore) -> (Duration, Option<prost_types::Timestamp>, usize) {
    let list = store
        .list_models(ListModelsRequest::default())
        .await
        .unwrap();
    let api = &list.apis[0];
    let source = &api.sources[0];
    let took = source.last_poll_duration.expect("a poll happened");
    let took = Duration::try_from(took).expect("non-negative");
    let versions = api.models.iter().map(|m| m.versions.len()).sum();
    (took, source.last_success, versions)
}

/// `models/model-N/{1,2,3}/model.onnx`, written with some concurrency.
async fn fill(bucket: &TestBucket, models: usize) {
    let keys: Vec<String> = (0..models)
        .flat_map(|m| (1..=3).map(move |v| format!("models/model-{m:05}/{v}/model.onnx")))
        .collect();
    futures::stream::iter(keys)
        .for_each_concurrent(32, |key| async move {
            bucket.put(&key, b"onnx".to_vec()).await;
        })
        .await;
}
