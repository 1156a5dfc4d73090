//! Dynamic batching of a SavedModel, through the control plane: calls sent
//! together run as fewer executions and get exactly what they get alone.

use hotswap_integration_tests::saved_model;
use hotswap_integration_tests::worker::{
    answer, execution_counts, infer_outputs, iris_rows, model_config,
};

use super::Stack;

const CONFIG: &str = "\
- {name: batched, predictor: {type: tensorflow, models: {path: '{root}iris'}, \
   server_side_batching: {max_batch_size: 6, batch_interval: 1s}}}
- {name: single, predictor: {type: tensorflow, models: {path: '{root}iris'}}}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savedmodel_calls_are_batched_with_the_results_they_get_alone() {
    let stack = Stack::start(CONFIG, async |b| {
        saved_model::put(b, "iris/1", &saved_model::iris(1)).await;
    })
    .await;
    let predictor = stack.control.predictor().await;
    for api in ["batched", "single"] {
        answer(&predictor, api, "version 1 served", |_| true).await;
    }
    let client = stack.control.inference().await;
    let before = execution_counts(&client, "batched").await;
    let rows = [1, 3, 2, 1, 1, 2, 1];
    let batched = futures::future::join_all(
        rows.iter()
            .enumerate()
            .map(|(seed, &n)| infer_outputs(&client, iris_rows("batched", n, seed))),
    )
    .await;
    let after = execution_counts(&client, "batched").await;
    assert_eq!(after.0 - before.0, 7);
    assert!(
        after.1 - before.1 < 7,
        "{} executions for 7 calls: none were batched",
        after.1 - before.1
    );
    for (seed, (&n, got)) in rows.iter().zip(&batched).enumerate() {
        let alone = infer_outputs(&client, iris_rows("single", n, seed)).await;
        assert_eq!(got, &alone, "call {seed} ({n} rows)");
    }
    let config = model_config(&client, "batched").await;
    assert_eq!(
        (config.max_batch_size, config.input[0].dims.clone()),
        (6, vec![4])
    );
    stack.stop().await;
}
