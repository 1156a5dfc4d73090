//! Dynamic batching of a SavedModel, through the control plane: calls sent
//! together run as fewer executions and get what they get alone: the same
//! labels, and probabilities equal up to float rounding (TensorFlow's
//! kernels differ by batch size: on an AMD EPYC host one row's FP32
//! probability came out 1 ULP from the same row computed alone, with the
//! batching untouched).

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
        assert_eq!(
            got.iter()
                .map(|(name, shape, _)| (name, shape))
                .collect::<Vec<_>>(),
            alone
                .iter()
                .map(|(name, shape, _)| (name, shape))
                .collect::<Vec<_>>(),
            "call {seed} ({n} rows)"
        );
        for ((name, _, got), (_, _, alone)) in got.iter().zip(&alone) {
            if name == "probabilities" {
                assert!(
                    within_ulps(got, alone, 4),
                    "call {seed} ({n} rows): {name} {:?} alone {:?}",
                    floats(got),
                    floats(alone)
                );
            } else {
                assert_eq!(got, alone, "call {seed} ({n} rows): {name}");
            }
        }
    }
    let config = model_config(&client, "batched").await;
    assert_eq!(
        (config.max_batch_size, config.input[0].dims.clone()),
        (6, vec![4])
    );
    stack.stop().await;
}

/// Little-endian FP32 contents as floats.
fn floats(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// Whether two FP32 contents hold as many values, each at most `ulps`
/// representable floats from the other (both finite, of one sign).
fn within_ulps(a: &[u8], b: &[u8], ulps: u32) -> bool {
    let (a, b) = (floats(a), floats(b));
    a.len() == b.len()
        && a.iter().zip(&b).all(|(x, y)| {
            x.is_finite()
                && y.is_finite()
                && x.is_sign_negative() == y.is_sign_negative()
                && x.to_bits().abs_diff(y.to_bits()) <= ulps
        })
}
