//! The examples' predictors: the scikit-learn example's pickled models,
//! and an ONNXPredictor running models through `onnx_client`.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::process::workspace_root;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{output_json, request};
use tonic::Code;

use crate::{first_answer, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sklearn_example_serves_both_versions() {
    let example = workspace_root().join("examples/python-sklearn");
    let bucket = TestBucket::new(Backend::Local).await;
    for v in [1, 2] {
        let model = std::fs::read(example.join(format!("models/iris/{v}/model.pkl"))).unwrap();
        bucket.put(&format!("iris/{v}/model.pkl"), model).await;
    }
    let config = std::fs::read_to_string(example.join("hotswap.yaml"))
        .unwrap()
        .replace("models/iris/", &bucket.uri("iris"));
    let source = std::fs::read_to_string(example.join("predictor.py")).unwrap();
    let (store, worker) = serve(&bucket, &config, &source).await;
    let setosa = "[[5.1, 3.5, 1.4, 0.2]]";

    let latest = first_answer(&worker, request("iris", setosa, &[("version", "latest")])).await;
    let out = output_json(&latest);
    assert_eq!(out["label"], serde_json::json!(["setosa"]));
    // Version 2 (1-nearest-neighbour) is sure; numpy arrays came back as lists.
    assert_eq!(out["probabilities"], serde_json::json!([[1.0, 0.0, 0.0]]));
    let mut p = worker.predictor().await;
    let v1 = output_json(
        &p.predict(request("iris", setosa, &[("version", "1")]))
            .await
            .unwrap()
            .into_inner(),
    );
    let p0 = v1["probabilities"][0][0].as_f64().unwrap();
    assert!(
        p0 > 0.9 && p0 < 1.0,
        "version 1 (logistic regression): {v1}"
    );
    let e = p
        .predict(request("iris", setosa, &[("version", "3")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("LookupError"), "{}", e.message());
    let e = p
        .predict(request("iris", "[[1, 2]]", &[("version", "1")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal);
    // The exception's line and a request id; the traceback is logged.
    assert!(
        e.message().contains("features")
            && e.message().contains("(request ")
            && !e.message().contains("Traceback"),
        "{}",
        e.message()
    );

    // A new version (version 1's logistic regression again, as 3) is what
    // the next `latest` gets; rewriting it in place (with the
    // nearest-neighbour model) is picked up too.
    let logistic = std::fs::read(example.join("models/iris/1/model.pkl")).unwrap();
    let neighbour = std::fs::read(example.join("models/iris/2/model.pkl")).unwrap();
    bucket.put("iris/3/model.pkl", logistic).await;
    let sure = |out: &serde_json::Value| out["probabilities"][0][0].as_f64() == Some(1.0);
    let p3 = worker.predictor().await;
    eventually("version 3 served as latest", || {
        let mut p = p3.clone();
        async move {
            let out = output_json(
                &p.predict(request("iris", setosa, &[("version", "latest")]))
                    .await
                    .ok()?
                    .into_inner(),
            );
            (!sure(&out)).then_some(())
        }
    })
    .await;
    bucket.put("iris/3/model.pkl", neighbour).await;
    eventually("version 3 rewritten in place", || {
        let mut p = p3.clone();
        async move {
            let out = output_json(
                &p.predict(request("iris", setosa, &[("version", "3")]))
                    .await
                    .ok()?
                    .into_inner(),
            );
            sure(&out).then_some(())
        }
    })
    .await;
    worker.stop().await;
    store.stop().await;
}

const ONNX_PREDICTOR: &str = r#"
class ONNXPredictor:
    def __init__(self, onnx_client, config):
        self.client = onnx_client

    def predict(self, payload, query_params):
        version = query_params.get("version", "latest")
        if payload == "signature":
            m = self.client.get_model(model_version=version)
            s = m["session"]
            return {
                "signatures": m["signatures"],
                "input_signatures": m["input_signatures"],
                "output_signatures": m["output_signatures"],
                "inputs": [[i.name, i.shape, i.type] for i in s.get_inputs()],
                "outputs": [[o.name, o.shape, o.type] for o in s.get_outputs()],
            }
        if payload == "session":
            # Code written against onnxruntime.InferenceSession, unchanged.
            import numpy as np
            session = self.client.get_model(model_version=version)["session"]
            x = np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)
            label, = session.run(["label"], {session.get_inputs()[0].name: x})
            everything = session.run(None, {"input": x})
            return {"label": label.tolist(), "outputs": len(everything), "p": everything[0].tolist()}
        probabilities, label = self.client.predict(payload, model_version=version)
        return {"label": label.tolist(), "type": str(label.dtype), "p": probabilities.tolist()}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_onnx_predictor_runs_models_through_onnx_client() {
    let bucket = TestBucket::new(Backend::Local).await;
    for (v, label) in [(1, 0), (2, 1)] {
        bucket
            .put(
                &format!("iris/{v}/model.onnx"),
                hotswap_integration_tests::worker::iris(label),
            )
            .await;
    }
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, path: onnx_predictor.py, models: {{path: '{}'}}}}}}",
        bucket.uri("iris")
    );
    let (store, worker) = serve(&bucket, &config, ONNX_PREDICTOR).await;
    let setosa = "[[5.1, 3.5, 1.4, 0.2]]";
    let latest = output_json(
        &first_answer(&worker, request("iris", setosa, &[("version", "latest")])).await,
    );
    assert_eq!(latest["label"], serde_json::json!([1]), "{latest}");
    assert_eq!(
        latest["type"], "int64",
        "outputs are numpy arrays of the model's types"
    );
    let mut p = worker.predictor().await;
    let one = output_json(
        &p.predict(request("iris", setosa, &[("version", "1")]))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(one["label"], serde_json::json!([0]));
    let named = output_json(
        &p.predict(request(
            "iris",
            r#"{"input": [[5.1, 3.5, 1.4, 0.2]]}"#,
            &[("version", "2")],
        ))
        .await
        .unwrap()
        .into_inner(),
    );
    assert_eq!(named["label"], serde_json::json!([1]));

    let signature = output_json(
        &p.predict(request("iris", "\"signature\"", &[("version", "")]))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(
        signature["input_signatures"]["input"],
        serde_json::json!({"shape": [-1, 4], "type": "float32"})
    );
    assert_eq!(signature["signatures"][0]["name"], "input");
    assert_eq!(signature["output_signatures"]["label"]["type"], "int64");
    assert_eq!(
        signature["inputs"],
        serde_json::json!([["input", [null, 4], "tensor(float)"]])
    );
    assert_eq!(
        signature["outputs"][1],
        serde_json::json!(["label", [null], "tensor(int64)"])
    );

    // get_model()["session"] runs the worker's session of that version.
    for (version, label) in [("1", 0), ("2", 1)] {
        let session = output_json(
            &p.predict(request("iris", "\"session\"", &[("version", version)]))
                .await
                .unwrap()
                .into_inner(),
        );
        assert_eq!(session["label"], serde_json::json!([label]), "{session}");
        assert_eq!(session["outputs"], 2, "{session}");
    }

    let e = p
        .predict(request("iris", "[[1, 2, 3]]", &[("version", "")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal);
    assert!(
        e.message().contains("ValueError") && e.message().contains("input `input`"),
        "{}",
        e.message()
    );
    let e = p
        .predict(request("iris", setosa, &[("version", "9")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("LookupError"), "{}", e.message());
    worker.stop().await;
    store.stop().await;
}
