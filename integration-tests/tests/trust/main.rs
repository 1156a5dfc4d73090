//! Trust boundaries (issue 13): what a client, a forged worker or a
//! predictor can reach, against real servers and processes on loopback.

mod front_door;
mod mutual_tls;
mod python_env;
mod rogue_store;
mod rogue_worker;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::worker::iris;

/// A local bucket holding iris version 1 (answering `label`), and an API
/// config serving it as `iris`.
async fn iris_bucket(label: usize) -> (TestBucket, String) {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/1/model.onnx", iris(label)).await;
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: '{}'}}}}}}",
        bucket.uri("iris")
    );
    (bucket, config)
}
