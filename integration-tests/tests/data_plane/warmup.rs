//! A new version runs one inference before it is published: a version that
//! loads but cannot run on its signature's inputs is refused, and the one
//! before keeps serving as latest.

use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{answer, fixture, index_entry, output_json, predict_json};
use tonic::Code;

use super::stack;

const CONFIG: &str = "- {name: m, predictor: {type: onnx, models: {path: '{root}m'}}}";

#[tokio::test]
async fn a_version_that_fails_its_warm_up_never_replaces_a_working_one() {
    let (bucket, store, worker) = stack(CONFIG).await;
    // Version 1 sums its input (x: [batch, 4]).
    bucket.put("m/1/model.onnx", fixture("total")).await;
    let p = worker.predictor().await;
    answer(&p, "m", "version 1 served", |r| r.version == 1).await;

    // Version 2 loads (a valid model) but its reshape needs an even batch:
    // the warm-up's batch of 1 fails, so it is never published.
    bucket.put("m/2/model.onnx", fixture("pairs")).await;
    let failed = reported_failed(&worker, "2").await;
    assert_eq!(failed.state, "UNAVAILABLE");
    assert!(
        failed.reason.contains("warm-up inference failed"),
        "{}",
        failed.reason
    );
    let mut p = p;
    let latest = p
        .predict(predict_json("m", "", "", "[[1, 2, 3, 4]]"))
        .await
        .expect("latest")
        .into_inner();
    assert_eq!(latest.version, 1);
    assert_eq!(output_json(&latest)["total"], 10.0);
    let pinned = p
        .predict(predict_json("m", "", "2", "[[1, 2, 3], [4, 5, 6]]"))
        .await
        .expect_err("version 2 is not served");
    assert_eq!(pinned.code(), Code::Unavailable, "{pinned:?}");
    worker.stop().await;
    store.stop().await;
}

/// A version that ships warm-up requests (`warmup/*.json`, Predict
/// payloads) warms up on them instead of generated inputs: the reshaping
/// model that a batch of 1 breaks loads with an even batch; a shipped
/// request that does not run fails its version, naming the file.
#[tokio::test]
async fn shipped_warm_up_requests_replace_the_generated_ones() {
    let (bucket, store, worker) = stack(CONFIG).await;
    bucket
        .put("m/1/warmup/even.json", b"[[1, 2, 3], [4, 5, 6]]".to_vec())
        .await;
    bucket.put("m/1/model.onnx", fixture("pairs")).await;
    let mut p = worker.predictor().await;
    let pairs = eventually("version 1 served", || {
        let mut p = p.clone();
        async move {
            p.predict(predict_json("m", "", "", "[[1, 2, 3], [4, 5, 6]]"))
                .await
                .ok()
                .map(|r| r.into_inner())
        }
    })
    .await;
    assert_eq!(pairs.version, 1);
    assert_eq!(output_json(&pairs)["pairs"][1][0], 4.0);

    bucket
        .put("m/2/warmup/wrong.json", b"{\"y\": [[1, 2, 3]]}".to_vec())
        .await;
    bucket.put("m/2/model.onnx", fixture("pairs")).await;
    let failed = reported_failed(&worker, "2").await;
    assert_eq!(failed.state, "UNAVAILABLE");
    assert!(
        failed
            .reason
            .contains("warm-up request warmup/wrong.json failed"),
        "{}",
        failed.reason
    );
    let latest = p
        .predict(predict_json("m", "", "", "[[1, 2, 3], [4, 5, 6]]"))
        .await
        .expect("latest")
        .into_inner();
    assert_eq!(latest.version, 1);
    worker.stop().await;
    store.stop().await;
}

/// The index entry of version `version` of `m` once it gives a reason.
async fn reported_failed(
    worker: &hotswap_integration_tests::worker::WorkerServer,
    version: &str,
) -> hotswap_proto::inference::repository_index_response::ModelIndex {
    eventually(&format!("version {version} reported failed"), || async {
        index_entry(worker.addr, "m", version)
            .await
            .filter(|m| !m.reason.is_empty())
    })
    .await
}
