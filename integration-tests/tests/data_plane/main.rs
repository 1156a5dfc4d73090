//! The data-plane worker over real gRPC on loopback, subscribed to a real
//! model-store on a local-folder bucket, serving real ONNX models.

mod bad_input;
mod batching;
mod cache_limits;
mod end_to_end;
mod failures;
mod inline_runs;
mod swap;
mod warmup;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::worker::WorkerServer;

/// A local bucket, a model-store over it with `config` (where `{root}` is
/// the bucket's URI), and a worker subscribed to it.
pub async fn stack(config: &str) -> (TestBucket, StoreServer, WorkerServer) {
    let bucket = TestBucket::new(Backend::Local).await;
    let (store, worker) = stack_on(&bucket, config).await;
    (bucket, store, worker)
}

/// As [`stack`], over a bucket the caller made.
pub async fn stack_on(bucket: &TestBucket, config: &str) -> (StoreServer, WorkerServer) {
    let config = config.replace("{root}", &bucket.uri(""));
    let store = StoreServer::start(bucket, &config, |_| {}).await;
    let worker = WorkerServer::start(&store, bucket).await;
    (store, worker)
}
