//! A TensorFlowPredictor class around SavedModels: `tensorflow_client.
//! predict(model_input, model_name, model_version)` runs them in the
//! worker and returns a dict of output name -> numpy array.

use hotswap_integration_tests::saved_model;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{output_json, request};
use tonic::Code;

use super::Stack;

const PREDICTOR: &str = r#"
class TensorFlowPredictor:
    def __init__(self, tensorflow_client, config):
        self.client = tensorflow_client
        self.scale = config["scale"]

    def predict(self, payload, query_params):
        model = query_params.get("model")
        version = query_params.get("version", "latest")
        if model == "default":
            outputs = self.client.predict(payload)
        else:
            outputs = self.client.predict(payload, model, version)
        return {
            "outputs": {name: (value * self.scale).tolist() for name, value in outputs.items()},
            "types": {name: str(value.dtype) for name, value in outputs.items()},
        }
"#;

const IRIS: &str = r#"{"input": [[5.1, 3.5, 1.4, 0.2]]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tensorflow_predictor_runs_savedmodels_through_tensorflow_client() {
    let config = "- {name: tf, predictor: {type: tensorflow, path: predictor.py, config: {scale: 1}, models: {paths: [{name: iris, path: '{root}iris'}, {name: pair, path: '{root}pair'}]}}}";
    let source = PREDICTOR.to_owned();
    let stack = Stack::start_with(config, Some(source), async |b| {
        saved_model::put(b, "iris/1", &saved_model::iris(0)).await;
        saved_model::put(b, "iris/2", &saved_model::iris(1)).await;
        saved_model::put(b, "pair/1", &saved_model::fixture("two_inputs")).await;
    })
    .await;
    let predictor = stack.control.predictor().await;
    let latest = eventually("the predictor answers", || {
        let mut p = predictor.clone();
        async move {
            p.predict(request(
                "tf",
                IRIS,
                &[("model", "iris"), ("version", "latest")],
            ))
            .await
            .ok()
        }
    })
    .await
    .into_inner();
    let latest = output_json(&latest);
    assert_eq!(
        latest["outputs"]["label"],
        serde_json::json!([1]),
        "{latest}"
    );
    assert_eq!(latest["types"]["label"], "int64");
    assert_eq!(latest["types"]["probabilities"], "float32");

    let mut p = predictor.clone();
    let one = output_json(
        &p.predict(request("tf", IRIS, &[("model", "iris"), ("version", "1")]))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(one["outputs"]["label"], serde_json::json!([0]));

    let pair = output_json(
        &p.predict(request(
            "tf",
            r#"{"a": [[1, 2, 3]], "ids": [[4, 5]]}"#,
            &[("model", "pair"), ("version", "")],
        ))
        .await
        .unwrap()
        .into_inner(),
    );
    assert_eq!(pair["outputs"]["total"], serde_json::json!([9]));
    assert_eq!(
        pair["outputs"]["scaled"],
        serde_json::json!([[2.0, 4.0, 6.0]])
    );
    assert_eq!(pair["types"]["doubled"], "int64");

    // Without a model name an API of two models is ambiguous.
    let e = p
        .predict(request(
            "tf",
            IRIS,
            &[("model", "default"), ("version", "")],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    // Unknown versions and bad inputs reach Python as exceptions.
    let e = p
        .predict(request("tf", IRIS, &[("model", "iris"), ("version", "7")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("LookupError"), "{}", e.message());
    let e = p
        .predict(request(
            "tf",
            r#"{"input": [[1, 2, 3]]}"#,
            &[("model", "iris"), ("version", "")],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e:?}");
    assert!(
        e.message().contains("ValueError") && e.message().contains("input `input`"),
        "{}",
        e.message()
    );
    stack.stop().await;
}
