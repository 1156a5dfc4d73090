//! A SavedModel through the control plane and a worker: Predict and
//! ModelInfer, `latest` following a new version, an in-place update
//! swapped under load with no failed request, and the metadata the
//! signature gives.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hotswap_integration_tests::saved_model;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, answer, iris_infer, iris_label, output_json, predict_json,
};
use hotswap_proto::inference::{ModelConfigRequest, ModelMetadataRequest};

use super::Stack;

const IRIS: &str = "- {name: iris, predictor: {type: tensorflow, models: {path: '{root}iris'}}}";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn savedmodels_are_served_swapped_and_followed_under_load() {
    let stack = Stack::start(IRIS, async |b| {
        saved_model::put(b, "iris/1", &saved_model::iris(0)).await;
    })
    .await;
    let predictor = stack.control.predictor().await;
    let first = answer(&predictor, "iris", "version 1 served", |_| true).await;
    assert_eq!((first.version, iris_label(&first)), (1, 0));
    let out = output_json(&first);
    let p = out["probabilities"][0].as_array().expect("probabilities");
    assert_eq!(p.len(), 3);
    let sum: f64 = p.iter().map(|v| v.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-5, "softmax output sums to 1: {out}");

    // The Open Inference Protocol, through the control plane.
    let mut inference = stack.control.inference().await;
    let r = inference
        .model_infer(iris_infer("iris", ""))
        .await
        .expect("ModelInfer")
        .into_inner();
    assert_eq!(r.model_version, "1");
    let label = r.outputs.iter().position(|o| o.name == "label").unwrap();
    assert_eq!(r.outputs[label].datatype, "INT64");
    assert_eq!(r.outputs[label].shape, vec![1]);
    assert_eq!(
        i64::from_le_bytes(r.raw_output_contents[label][..8].try_into().unwrap()),
        0
    );

    // Clients call without pause from here on; none may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut p = predictor.clone();
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let (mut ok, mut failures) = (0usize, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match p.predict(predict_json("iris", "", "", IRIS_INPUT)).await {
                    Ok(_) => ok += 1,
                    Err(status) => failures.push(status),
                }
            }
            (ok, failures)
        }));
    }

    // A new version: latest follows it.
    saved_model::put(&stack.bucket, "iris/2", &saved_model::iris(1)).await;
    let r = answer(&predictor, "iris", "latest is version 2", |r| {
        r.version == 2
    })
    .await;
    assert_eq!(iris_label(&r), 1);
    // Version 2 rewritten in place with other weights: swapped.
    saved_model::put(&stack.bucket, "iris/2", &saved_model::iris(2)).await;
    answer(&predictor, "iris", "version 2's new content", |r| {
        r.version == 2 && iris_label(r) == 2
    })
    .await;
    // The old version stays addressable.
    let one = predictor
        .clone()
        .predict(predict_json("iris", "", "1", IRIS_INPUT))
        .await
        .expect("version 1")
        .into_inner();
    assert_eq!(iris_label(&one), 0);

    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for client in clients {
        let (ok, failures) = client.await.unwrap();
        assert!(
            failures.is_empty(),
            "failed requests during swaps: {failures:?}"
        );
        total += ok;
    }
    assert!(total > 0, "the clients made calls during the swaps");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_config_come_from_the_signature() {
    let config = "- {name: tools, predictor: {type: tensorflow, models: {paths: [{name: pair, path: '{root}pair'}, {name: iris, path: '{root}iris'}]}}}";
    let stack = Stack::start(config, async |b| {
        saved_model::put(b, "pair/1", &saved_model::fixture("two_inputs")).await;
        saved_model::put(b, "iris/1", &saved_model::iris(0)).await;
    })
    .await;
    let predictor = stack.control.predictor().await;
    // Loaded once it answers.
    hotswap_integration_tests::wait::eventually("pair answers", || {
        let mut p = predictor.clone();
        async move {
            p.predict(predict_json(
                "tools",
                "pair",
                "",
                r#"{"a": [[1, 2, 3]], "ids": [[4, 5]]}"#,
            ))
            .await
            .ok()
        }
    })
    .await;
    let mut inference = stack.control.inference().await;
    let meta = inference
        .model_metadata(ModelMetadataRequest {
            name: "tools/pair".into(),
            version: String::new(),
        })
        .await
        .expect("metadata")
        .into_inner();
    assert_eq!(meta.platform, "tensorflow_savedmodel");
    let described = |t: &[hotswap_proto::inference::model_metadata_response::TensorMetadata]| {
        t.iter()
            .map(|t| (t.name.clone(), t.datatype.clone(), t.shape.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        described(&meta.inputs),
        vec![
            ("a".to_owned(), "FP32".to_owned(), vec![-1, 3]),
            ("ids".to_owned(), "INT64".to_owned(), vec![-1, 2]),
        ]
    );
    assert_eq!(
        described(&meta.outputs),
        vec![
            ("doubled".to_owned(), "INT64".to_owned(), vec![-1, 2]),
            ("scaled".to_owned(), "FP32".to_owned(), vec![-1, 3]),
            ("total".to_owned(), "INT64".to_owned(), vec![-1]),
        ]
    );
    let config = inference
        .model_config(ModelConfigRequest {
            name: "tools/iris".into(),
            version: "1".into(),
        })
        .await
        .expect("config")
        .into_inner()
        .config
        .expect("a config");
    assert_eq!(
        (config.platform.as_str(), config.backend.as_str()),
        ("tensorflow_savedmodel", "tensorflow")
    );
    let inputs: Vec<(&str, Vec<i64>)> = config
        .input
        .iter()
        .map(|i| (i.name.as_str(), i.dims.clone()))
        .collect();
    assert_eq!(inputs, vec![("input", vec![-1, 4])]);
    let outputs: Vec<(&str, Vec<i64>)> = config
        .output
        .iter()
        .map(|o| (o.name.as_str(), o.dims.clone()))
        .collect();
    assert_eq!(
        outputs,
        vec![("label", vec![-1]), ("probabilities", vec![-1, 3])]
    );

    // The two-input model computes what its script says.
    let r = predictor
        .clone()
        .predict(predict_json(
            "tools",
            "pair",
            "",
            r#"{"a": [[1, 2, 3]], "ids": [[4, 5]]}"#,
        ))
        .await
        .expect("pair")
        .into_inner();
    let out = output_json(&r);
    assert_eq!(out["scaled"], serde_json::json!([[2.0, 4.0, 6.0]]));
    assert_eq!(out["doubled"], serde_json::json!([[8, 10]]));
    assert_eq!(out["total"], serde_json::json!([9]));
    stack.stop().await;
}
