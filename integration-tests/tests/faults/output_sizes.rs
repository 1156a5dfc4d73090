//! A model's output shape is not the caller's to trust: an output shaped
//! [4294967295, 0] holds no element, yet its JSON form would be four billion
//! empty lists. The worker refuses to build it (INTERNAL, with the reason)
//! and keeps serving; the same output as raw tensors is fine.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{WorkerServer, fixture, output_json, predict_json};
use hotswap_proto::inference::ModelInferRequest;
use hotswap_proto::inference::model_infer_request::InferInputTensor;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_too_large_for_json_are_refused_with_a_reason() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("zeros/1/model.onnx", fixture("zeros")).await;
    let config = format!(
        "- {{name: zeros, predictor: {{type: onnx, models: {{path: '{}'}}}}}}",
        bucket.uri("zeros")
    );
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let worker = WorkerServer::start(&store, &bucket).await;
    let mut predictor = worker.predictor().await;

    let small = eventually("a small output", || {
        let mut p = predictor.clone();
        async move {
            p.predict(predict_json("zeros", "", "", "[2, 3]"))
                .await
                .ok()
                .map(|r| r.into_inner())
        }
    })
    .await;
    assert_eq!(
        output_json(&small)["zeros"],
        serde_json::json!([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    );

    let huge = predictor
        .predict(predict_json("zeros", "", "", "[4294967295, 0]"))
        .await
        .unwrap_err();
    assert_eq!(huge.code(), Code::Internal, "{}", huge.message());
    assert!(
        huge.message().contains("`zeros`") && huge.message().contains("too large"),
        "{}",
        huge.message()
    );

    // As raw tensors the same output is empty and fine.
    let raw = worker
        .inference()
        .await
        .model_infer(ModelInferRequest {
            model_name: "zeros".into(),
            inputs: vec![InferInputTensor {
                name: "shape".into(),
                datatype: "INT64".into(),
                shape: vec![2],
                ..Default::default()
            }],
            raw_input_contents: vec![
                [4294967295i64, 0]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ],
            ..Default::default()
        })
        .await
        .expect("raw output")
        .into_inner();
    assert_eq!(raw.outputs[0].shape, vec![4294967295, 0]);
    assert!(raw.raw_output_contents[0].is_empty());

    // The worker is still there.
    predictor
        .predict(predict_json("zeros", "", "", "[1, 1]"))
        .await
        .expect("served after the refusal");
}
