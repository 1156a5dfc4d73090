//! The predictor contract by name, as Cortex matched it (real child
//! processes): constructors and `predict` receive whichever parameters they
//! declare, `post_predict` runs after the answer, payloads arrive as JSON,
//! str, bytes or a form, answers leave as JSON, str, bytes or a response
//! object, and a parameter hotswap cannot fill stops the API at start.

use std::collections::BTreeMap;

use hotswap_integration_tests::pool::pool_request;
use hotswap_integration_tests::process::python;
use hotswap_integration_tests::wait::eventually;
use hotswap_python::protocol::{FormField, FormValue, Output, Payload, PredictorClass};
use hotswap_python::{PythonPool, PythonPredictorSpec, StartError, Traceback};
use serde_json::{Value, json};

fn spec(source: &str, config: Value) -> PythonPredictorSpec {
    PythonPredictorSpec {
        source: source.to_owned(),
        file: "predictor.py".to_owned(),
        config,
        processes: 1,
        cache_size: 0,
        class: PredictorClass::Python,
        threads: 1,
        process: python(None),
        models: None,
        env: Default::default(),
    }
}

/// Headers every call here carries.
const HEADERS: &[(&str, &str)] = &[("x-user", "ada")];

async fn answer(pool: &PythonPool, payload: Payload) -> Value {
    let request = pool_request(payload, &[("mode", "fast")], HEADERS);
    match pool.predict(request).await.unwrap() {
        Output::Json { value } => value,
        other => panic!("expected JSON, got {other:?}"),
    }
}

/// Each constructor and `predict` shape a Cortex user writes, in any
/// order: each predictor answers with what it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_constructor_and_predict_shape_gets_what_it_declares() {
    let cases = [
        (
            "def __init__(self, config):\n        self.got = sorted(config)",
            "def predict(self, payload):\n        return [self.got, payload]",
            json!([["k"], [1]]),
        ),
        (
            "def __init__(self, python_client, config):\n        self.got = [type(python_client).__name__, config['k']]",
            "def predict(self, headers, payload):\n        return [self.got, headers, payload]",
            json!([["PythonClient", 3], {"x-user": "ada"}, [1]]),
        ),
        (
            "def __init__(self, **kwargs):\n        self.got = sorted(kwargs)",
            "def predict(self, **kwargs):\n        return [self.got, sorted(kwargs)]",
            json!([
                ["config", "python_client"],
                ["headers", "payload", "query_params"]
            ]),
        ),
        (
            "def __init__(self):\n        self.got = 'nothing'",
            "def predict(self):\n        return {'got': self.got}",
            json!({"got": "nothing"}),
        ),
        (
            "def __init__(self, config, python_client):\n        pass",
            "def predict(self, payload, query_params, headers):\n        return [payload, query_params, headers]",
            json!([[1], {"mode": "fast"}, {"x-user": "ada"}]),
        ),
        (
            "got = 'a class attribute'",
            "def predict(self, payload):\n        return [self.got, payload]",
            json!(["a class attribute", [1]]),
        ),
        (
            "def __init__(self, config, verbose=False):\n        self.verbose = verbose",
            "def predict(self, query_params, debug=None):\n        return [query_params, self.verbose, debug]",
            json!([{"mode": "fast"}, false, null]),
        ),
    ];
    for (init, predict, want) in cases {
        let source = format!("class PythonPredictor:\n    {init}\n\n    {predict}\n");
        let pool = PythonPool::start(spec(&source, json!({"k": 3})))
            .await
            .unwrap_or_else(|e| panic!("{init} / {predict}: {e:?}"));
        assert_eq!(
            answer(&pool, Payload::Json(json!([1]))).await,
            want,
            "{init} / {predict}"
        );
    }
}

/// A parameter hotswap cannot pass stops the predictor when it starts,
/// with its name; never a TypeError at each call.
#[tokio::test]
async fn a_parameter_nobody_passes_is_refused_at_start() {
    let cases = [
        (
            "def __init__(self, config, client):\n        pass\n    def predict(self, payload):\n        pass",
            "PythonPredictor.__init__ takes `client`",
        ),
        (
            "def __init__(self, config):\n        pass\n    def predict(self, payload, extra):\n        pass",
            "PythonPredictor.predict takes `extra`",
        ),
        (
            "def __init__(self, config):\n        pass\n    def predict(self, payload, /):\n        pass",
            "PythonPredictor.predict takes `payload`",
        ),
        (
            "def __init__(self, config):\n        pass\n    def predict(self, payload):\n        pass\n    def post_predict(self, response, result):\n        pass",
            "PythonPredictor.post_predict takes `result`",
        ),
        (
            "def __init__(self, config):\n        pass",
            "PythonPredictor defines no predict method",
        ),
    ];
    for (body, want) in cases {
        let source = format!("class PythonPredictor:\n    {body}\n");
        match PythonPool::start(spec(&source, json!({}))).await {
            Err(StartError::Predictor(Traceback(message))) => {
                assert!(message.contains(want), "{want}: {message}")
            }
            Err(other) => panic!("{want}: unexpected error {other:?}"),
            Ok(_) => panic!("{want}: started"),
        }
    }
}

const BODIES: &str = r#"
class Reply:
    """Shaped like starlette.responses.Response."""
    def __init__(self, body, status_code, media_type, headers):
        self.body, self.status_code, self.media_type = body, status_code, media_type
        self.headers = headers

class PythonPredictor:
    def __init__(self, config):
        self.log = config["log"]

    def predict(self, payload, query_params):
        kind = query_params.get("answer")
        if kind == "text":
            return "class 1"
        if kind == "bytes":
            return bytes([0, 1, 2]) + (payload if isinstance(payload, bytes) else b"")
        if kind == "response":
            return Reply(b"slow down", 429, "text/plain", {"Retry-After": "3"})
        if isinstance(payload, dict):
            return {
                k: (v if isinstance(v, str) else [v.filename, v.content_type, v.file.read().hex(), v.read().hex()])
                for k, v in payload.items()
            }
        return [type(payload).__name__, payload if isinstance(payload, str) else list(payload)]

    def post_predict(self, response, payload, headers):
        if payload == "fail later":
            raise RuntimeError("post_predict failed")
        with open(self.log, "a") as f:
            f.write(repr([response, payload, headers]) + "\n")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_and_answers_of_every_kind_and_post_predict_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("post_predict.log");
    let pool = PythonPool::start(spec(BODIES, json!({"log": log})))
        .await
        .unwrap();
    let ask = |payload: Payload, kind: &str| {
        pool.predict(pool_request(
            payload,
            &[("mode", "fast"), ("answer", kind)],
            HEADERS,
        ))
    };

    assert_eq!(
        answer(&pool, Payload::Text("héllo".to_owned())).await,
        json!(["str", "héllo"])
    );
    assert_eq!(
        answer(&pool, Payload::Bytes(vec![0, 255])).await,
        json!(["bytes", [0, 255]])
    );
    let form = Payload::Form(vec![
        FormField {
            name: "note".to_owned(),
            value: FormValue::Text {
                text: "hi".to_owned(),
            },
        },
        FormField {
            name: "image".to_owned(),
            value: FormValue::File {
                filename: "a.png".to_owned(),
                content_type: Some("image/png".to_owned()),
                data: vec![0x89, 0x50],
            },
        },
    ]);
    assert_eq!(
        answer(&pool, form).await,
        json!({"note": "hi", "image": ["a.png", "image/png", "8950", ""]})
    );

    let text = ask(Payload::Json(json!(1)), "text").await.unwrap();
    assert_eq!(
        text,
        Output::Text {
            text: "class 1".to_owned()
        }
    );
    let bytes = ask(Payload::Bytes(vec![9]), "bytes").await.unwrap();
    assert_eq!(
        bytes,
        Output::Bytes {
            data: vec![0, 1, 2, 9]
        }
    );
    let response = ask(Payload::Json(json!(1)), "response").await.unwrap();
    assert_eq!(
        response,
        Output::Response {
            status_code: 429,
            media_type: Some("text/plain".to_owned()),
            headers: BTreeMap::from([("retry-after".to_owned(), "3".to_owned())]),
            body: b"slow down".to_vec(),
        }
    );

    // post_predict saw each answered call, after it was answered; one that
    // raises is logged and fails nothing.
    let failed_later = answer(&pool, Payload::Text("fail later".to_owned())).await;
    assert_eq!(failed_later, json!(["str", "fail later"]));
    let log = &log;
    let lines = eventually("post_predict ran for every call", || async move {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        (text.lines().count() == 6).then_some(text)
    })
    .await;
    assert!(
        lines.starts_with("[['str', 'héllo'], 'héllo', {'x-user': 'ada'}]\n"),
        "{lines}"
    );
    assert!(
        lines.contains("['class 1', 1, {'x-user': 'ada'}]"),
        "{lines}"
    );
    assert!(!lines.contains("fail later"), "{lines}");
    assert_eq!(
        answer(&pool, Payload::Json(json!("still serving"))).await,
        json!(["str", "still serving"])
    );
}
