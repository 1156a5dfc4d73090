//! Python predictors in child processes of the worker (`hotswap
//! python-worker`): the PythonPredictor contract's constructor and predict
//! (with and without query params), user prints that must not corrupt the
//! protocol, exceptions with their tracebacks, and a child that dies.

use std::collections::BTreeMap;

use hotswap_data_plane::Error;
use hotswap_integration_tests::pool::predict_json;
use hotswap_integration_tests::process::python;
use hotswap_integration_tests::wait::eventually;
use hotswap_proto::error::to_status;
use hotswap_python::{CallError, PythonPool, PythonPredictorSpec, StartError, Traceback};
use serde_json::json;

const PREDICTOR: &str = r#"
import os

class PythonPredictor:
    def __init__(self, config, python_client):
        self.k = config["k"]
        print("constructed")  # user output must not reach the protocol

    def predict(self, payload, query_params):
        print("predicting", payload)
        if payload == "boom":
            raise ValueError("kaboom")
        if payload == "missing":
            raise LookupError("no model called missing")
        if payload == "die":
            os._exit(3)
        return {"y": [x * self.k for x in payload], "mode": query_params.get("mode"), "pid": os.getpid()}
"#;

fn spec(source: &str, processes: usize) -> PythonPredictorSpec {
    PythonPredictorSpec {
        source: source.to_owned(),
        file: "predictor.py".to_owned(),
        config: json!({"k": 3}),
        processes,
        cache_size: 0,
        class: hotswap_python::protocol::PredictorClass::Python,
        threads: 1,
        process: python(None),
        models: None,
        env: Default::default(),
    }
}

fn query(mode: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("mode".to_owned(), mode.to_owned())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predicts_survives_prints_errors_and_a_dead_process() {
    let pool = PythonPool::start(spec(PREDICTOR, 2))
        .await
        .expect("predictor starts");
    let first = pool.pids();
    assert_eq!(first.len(), 2);

    let out = predict_json(&pool, json!([1, 2]), query("fast"))
        .await
        .unwrap();
    assert_eq!(out["y"], json!([3, 6]));
    assert_eq!(out["mode"], json!("fast"));
    // Calls spread over both processes.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        let out = predict_json(&pool, json!([1]), query("x")).await.unwrap();
        seen.insert(out["pid"].as_u64().unwrap());
    }
    assert_eq!(seen.len(), 2, "both processes answered");

    match predict_json(&pool, json!("boom"), query("x")).await {
        Err(CallError::Raised(Traceback(traceback))) => {
            assert!(
                traceback.contains("Traceback (most recent call last)"),
                "{traceback}"
            );
            assert!(traceback.contains("predictor.py"), "{traceback}");
            assert!(traceback.contains("ValueError: kaboom"), "{traceback}");
        }
        other => panic!("expected an inference error, got {other:?}"),
    }
    let status = to_status(&Error::from(
        predict_json(&pool, json!("boom"), query("x"))
            .await
            .unwrap_err(),
    ));
    assert_eq!(status.code(), tonic::Code::Internal);
    assert!(status.message().contains("ValueError: kaboom"));
    let status = to_status(&Error::from(
        predict_json(&pool, json!("missing"), query("x"))
            .await
            .unwrap_err(),
    ));
    // Only get_model's LookupError means NOT_FOUND; the user's own is a bug.
    assert_eq!(status.code(), tonic::Code::Internal);
    assert!(
        status
            .message()
            .contains("LookupError: no model called missing")
    );

    // A process that dies fails its own call with UNAVAILABLE; the other
    // keeps serving, and the dead one is replaced.
    let status = to_status(&Error::from(
        predict_json(&pool, json!("die"), query("x"))
            .await
            .unwrap_err(),
    ));
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    for _ in 0..4 {
        let out = predict_json(&pool, json!([2]), query("x")).await.unwrap();
        assert_eq!(out["y"], json!([6]));
    }
    let (pool, first) = (&pool, &first);
    let restarted = eventually("the dead process replaced", || async move {
        let pids = pool.pids();
        (pids.len() == 2 && pids != *first).then_some(pids)
    })
    .await;
    assert!(restarted.iter().any(|p| !first.contains(p)));
}

#[tokio::test]
async fn broken_predictors_report_the_python_traceback() {
    let cases = [
        (
            "class PythonPredictor:\n    def __init__(self, config, python_client)\n        pass\n",
            "SyntaxError",
        ),
        (
            "class Other:\n    pass\n",
            "defines no class PythonPredictor",
        ),
        (
            "class PythonPredictor:\n    def __init__(self, config, python_client):\n        raise RuntimeError('no config for you')\n",
            "RuntimeError: no config for you",
        ),
    ];
    for (source, want) in cases {
        match PythonPool::start(spec(source, 1)).await {
            Err(StartError::Predictor(Traceback(message))) => {
                assert!(message.contains(want), "{want}: {message}")
            }
            Err(other) => panic!("{want}: unexpected error {other:?}"),
            Ok(_) => panic!("{want}: a broken predictor started"),
        }
    }
    // predict(self, payload) without query params is called with the
    // payload only.
    let one_arg = "class PythonPredictor:\n    def __init__(self, config, python_client):\n        pass\n    def predict(self, payload):\n        return {'echo': payload}\n";
    let pool = PythonPool::start(spec(one_arg, 1)).await.unwrap();
    let out = predict_json(&pool, json!({"a": [1.5, true, null]}), BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(out, json!({"echo": {"a": [1.5, true, null]}}));
}
