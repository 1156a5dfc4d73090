//! Bad requests to a SavedModel are INVALID_ARGUMENT naming the input; a
//! version whose SavedModel lacks the signature fails to load, says why,
//! and the previous version keeps serving; an API that names the signature
//! serves it.

use hotswap_integration_tests::saved_model;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{IRIS_INPUT, answer, iris_label, predict_json};
use hotswap_proto::inference::{
    ModelInferRequest, RepositoryIndexRequest, model_infer_request::InferInputTensor,
};
use tonic::Code;

use super::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_name_the_input() {
    let config = "- {name: pair, predictor: {type: tensorflow, models: {path: '{root}pair'}}}";
    let stack = Stack::start(config, async |b| {
        saved_model::put(b, "pair/1", &saved_model::fixture("two_inputs")).await;
    })
    .await;
    let predictor = stack.control.predictor().await;
    let good = r#"{"a": [[1, 2, 3]], "ids": [[4, 5]]}"#;
    eventually("pair answers", || {
        let mut p = predictor.clone();
        async move { p.predict(predict_json("pair", "", "", good)).await.ok() }
    })
    .await;

    let cases = [
        (r#"{"a": [[1, 2, 3]]}"#, "missing input `ids`"),
        (
            r#"{"a": [[1, 2]], "ids": [[4, 5]]}"#,
            "input `a`: shape [1, 2]",
        ),
        (r#"{"a": [[1, 2, 3]], "ids": [[4.5, 5]]}"#, "`ids`"),
        (
            r#"{"a": [[1, 2, 3]], "ids": [[4, 5]], "c": [1]}"#,
            "unknown input `c`",
        ),
    ];
    for (json, want) in cases {
        let e = predictor
            .clone()
            .predict(predict_json("pair", "", "", json))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{json}: {e:?}");
        assert!(e.message().contains(want), "{json}: {}", e.message());
    }

    // ModelInfer: a wrong datatype and a wrong shape.
    let mut inference = stack.control.inference().await;
    let infer = |a_type: &str, a_shape: Vec<i64>, a_bytes: Vec<u8>| ModelInferRequest {
        model_name: "pair".into(),
        inputs: vec![
            InferInputTensor {
                name: "a".into(),
                datatype: a_type.into(),
                shape: a_shape,
                ..Default::default()
            },
            InferInputTensor {
                name: "ids".into(),
                datatype: "INT64".into(),
                shape: vec![1, 2],
                ..Default::default()
            },
        ],
        raw_input_contents: vec![
            a_bytes.into(),
            [4i64, 5].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ],
        ..Default::default()
    };
    let floats: Vec<u8> = [1f32, 2.0, 3.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let ok = inference
        .model_infer(infer("FP32", vec![1, 3], floats.clone()))
        .await
        .expect("a good ModelInfer");
    assert_eq!(ok.into_inner().outputs.len(), 3);
    let doubles: Vec<u8> = [1f64, 2.0, 3.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let e = inference
        .model_infer(infer("FP64", vec![1, 3], doubles))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("input `a`: datatype FP64"),
        "{}",
        e.message()
    );
    let e = inference
        .model_infer(infer("FP32", vec![3, 1], floats))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("input `a`: shape [3, 1]"),
        "{}",
        e.message()
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_savedmodel_without_the_signature_fails_and_the_previous_version_serves() {
    let config = "- {name: iris, predictor: {type: tensorflow, models: {path: '{root}iris'}}}";
    let stack = Stack::start(config, async |b| {
        saved_model::put(b, "iris/1", &saved_model::iris(0)).await;
    })
    .await;
    let predictor = stack.control.predictor().await;
    answer(&predictor, "iris", "version 1 served", |r| r.version == 1).await;

    // Version 2 is a valid SavedModel layout whose only signature is
    // "classify": the model-store publishes it, the worker cannot load it.
    saved_model::put(
        &stack.bucket,
        "iris/2",
        &saved_model::fixture("other_signature"),
    )
    .await;
    let inference = stack.worker.inference().await;
    let reason = eventually("version 2 reported failed", || {
        let mut inference = inference.clone();
        async move {
            let index = inference
                .repository_index(RepositoryIndexRequest::default())
                .await
                .ok()?
                .into_inner();
            index
                .models
                .into_iter()
                .find(|m| m.version == "2" && m.reason.contains("load failed"))
                .map(|m| (m.state, m.reason))
        }
    })
    .await;
    assert_eq!(reason.0, "UNAVAILABLE");
    assert!(
        reason.1.contains("no signature `serving_default`") && reason.1.contains("classify"),
        "{}",
        reason.1
    );
    // Latest stays on version 1, which keeps answering.
    for _ in 0..5 {
        let r = predictor
            .clone()
            .predict(predict_json("iris", "", "", IRIS_INPUT))
            .await
            .expect("latest still served")
            .into_inner();
        assert_eq!((r.version, iris_label(&r)), (1, 0));
    }
    // Asking for version 2 by number says why it cannot be served.
    let e = predictor
        .clone()
        .predict(predict_json("iris", "", "2", IRIS_INPUT))
        .await
        .unwrap_err();
    // UNAVAILABLE, as for any failed load: new content or another worker
    // may succeed.
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(
        e.message().contains("signature `serving_default`"),
        "{:?}: {}",
        e.code(),
        e.message()
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_can_name_another_signature() {
    let config = "- {name: iris, predictor: {type: tensorflow, models: {path: '{root}iris', signature_key: classify}}}";
    let stack = Stack::start(config, async |b| {
        saved_model::put(b, "iris/1", &saved_model::fixture("other_signature")).await;
    })
    .await;
    let predictor = stack.control.predictor().await;
    let r = answer(&predictor, "iris", "the classify signature served", |_| {
        true
    })
    .await;
    assert_eq!(iris_label(&r), 0);
    stack.stop().await;
}
