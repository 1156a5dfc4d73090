//! The predictor contract over gRPC: models fetched in `__init__`, raw
//! bodies and headers in and bytes out, `load_model` required with models.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::worker::{output_json, request};
use hotswap_proto::v1::{PredictRequest, predict_request};
use tonic::Code;

use crate::{first_answer, first_refusal, one_model_api, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_can_be_fetched_in_init_and_key_errors_are_internal() {
    let source = r#"
class PythonPredictor:
    def __init__(self, config, python_client):
        self.python_client_for_nesting = python_client
        # Models may be fetched while the predictor is built.
        self.model = python_client.get_model()

    def load_model(self, model_path):
        files = sorted(__import__("os").listdir(model_path))
        if not hasattr(self, "nested"):
            # load_model may itself ask for a model (one built from another).
            self.nested = True
            self.python_client_for_nesting.get_model(model_version="1")
        return {"files": files}

    def predict(self, payload):
        if payload == "key":
            return {}["missing"]
        return self.model
"#;
    let (_bucket, store, worker) = one_model_api(source).await;
    let out = output_json(&first_answer(&worker, request("m", "{}", &[("version", "")])).await);
    assert_eq!(out, serde_json::json!({"files": ["weights.txt"]}));
    // A KeyError is the user's bug, not a missing model: INTERNAL.
    let e = worker
        .predictor()
        .await
        .predict(request("m", "\"key\"", &[("version", "")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e:?}");
    assert!(e.message().contains("KeyError"), "{}", e.message());
    worker.stop().await;
    store.stop().await;
}

/// Point 3 of the Cortex contract over gRPC: a raw body with its
/// Content-Type and headers reaches `predict` as Cortex passed it, and
/// text, bytes and a chosen status come back in the response's new fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_and_headers_reach_predict_and_bytes_come_back() {
    let source = r#"
class Reply:
    def __init__(self):
        self.status_code, self.body, self.media_type, self.headers = 202, b"queued", None, {}

class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload, headers):
        if payload == b"reply":
            return Reply()
        if isinstance(payload, bytes):
            return payload[::-1]
        return f"{type(payload).__name__} {payload!r} from {headers.get('x-user')}"
"#;
    let bucket = TestBucket::new(Backend::Local).await;
    let config = "- {name: b, predictor: {type: python, path: b.py}}";
    let (_store, worker) = serve(&bucket, config, source).await;
    let body = |body: &[u8], content_type: &str| PredictRequest {
        api: "b".to_owned(),
        payload: Some(predict_request::Payload::Body(body.to_vec().into())),
        content_type: content_type.to_owned(),
        headers: [("X-User".to_owned(), "ada".to_owned())].into(),
        ..Default::default()
    };
    let sent_bytes = first_answer(&worker, body(&[1, 2, 3], "application/octet-stream")).await;
    assert_eq!(
        sent_bytes.output,
        Some(hotswap_proto::v1::predict_response::Output::Body(vec![
            3, 2, 1
        ]))
    );
    assert_eq!(sent_bytes.content_type, "application/octet-stream");
    assert_eq!(sent_bytes.status_code, 0);

    let mut p = worker.predictor().await;
    for (sent, content_type, want) in [
        (
            &br#"{"a": 1}"#[..],
            "application/json",
            "dict {'a': 1} from ada",
        ),
        (b"hi", "text/plain; charset=utf-8", "str 'hi' from ada"),
        (
            b"k=v",
            "application/x-www-form-urlencoded",
            "dict {'k': 'v'} from ada",
        ),
    ] {
        let r = p
            .predict(body(sent, content_type))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.content_type, "text/plain; charset=utf-8",
            "{content_type}"
        );
        assert_eq!(
            r.output,
            Some(hotswap_proto::v1::predict_response::Output::Body(
                want.as_bytes().to_vec()
            )),
            "{content_type}"
        );
    }
    let chosen = p.predict(body(b"reply", "")).await.unwrap().into_inner();
    assert_eq!(chosen.status_code, 202);
    let bad = p.predict(body(b"{", "application/json")).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    assert!(bad.message().contains("not valid JSON"), "{bad:?}");
}

/// An API with models whose class has no load_model fails when it starts,
/// saying so; it never serves a call that would fail at get_model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_with_models_needs_load_model_at_start() {
    let source = "class PythonPredictor:\n    def __init__(self, config, python_client):\n        self.client = python_client\n    def predict(self, payload):\n        return self.client.get_model()\n";
    let (_bucket, _store, worker) = one_model_api(source).await;
    let status = first_refusal(&worker, request("m", "[1]", &[("version", "latest")])).await;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("defines no load_model"),
        "{status:?}"
    );
}
