//! A Python-predictor API end to end: the model-store ships the predictor
//! file, the worker runs it in Python processes, the control plane routes
//! Predict by API. A predictor that fails to start reports its traceback
//! while the other APIs keep serving.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::worker::{WorkerOptions, WorkerServer, eventually, output_json};
use hotswap_proto::inference::RepositoryIndexRequest;
use hotswap_proto::v1::{PredictRequest, predict_request};
use tonic::Code;

const ECHO: &str = r#"
class PythonPredictor:
    def __init__(self, config, python_client):
        self.k = config["k"]

    def predict(self, payload, query_params):
        print("user output goes to the log, not the protocol")
        return {"y": [x * self.k for x in payload], "mode": query_params.get("mode")}
"#;

const BROKEN: &str =
    "class PythonPredictor:\n    def __init__(self, config, python_client)\n        pass\n";

fn request(api: &str, json: &str) -> PredictRequest {
    PredictRequest {
        api: api.to_owned(),
        payload: Some(predict_request::Payload::Json(json.to_owned())),
        query_params: [("mode".to_owned(), "fast".to_owned())].into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_apis_are_served_through_the_control_plane() {
    let bucket = TestBucket::new(Backend::Local).await;
    let config = "
- name: echo
  predictor: {type: python, path: echo.py, processes_per_replica: 2, config: {k: 2}}
- name: broken
  predictor: {type: python, path: broken.py}
";
    let store = StoreServer::start(&bucket, config, |c| {
        // What `config::load` reads from the files.
        c.apis[0].predictor_source = Some(ECHO.to_owned());
        c.apis[1].predictor_source = Some(BROKEN.to_owned());
    })
    .await;
    let control = ControlServer::start(store.addr).await;
    let options = WorkerOptions {
        control_plane: Some(control.addr.to_string()),
        ..Default::default()
    };
    let worker = WorkerServer::start_with(store.addr, &bucket, options).await;
    let p = control.predictor().await;
    let answer = eventually("the echo predictor answers", || {
        let mut p = p.clone();
        async move { p.predict(request("echo", "[1, 2, 3]")).await.ok() }
    })
    .await
    .into_inner();
    assert_eq!(answer.api, "echo");
    assert_eq!(
        output_json(&answer),
        serde_json::json!({"y": [2, 4, 6], "mode": "fast"})
    );

    // The broken API reports its traceback; the other keeps serving.
    let index = worker
        .inference()
        .await
        .repository_index(RepositoryIndexRequest::default())
        .await
        .unwrap()
        .into_inner();
    let broken = index
        .models
        .iter()
        .find(|m| m.name == "broken")
        .expect("broken listed");
    assert_eq!(broken.state, "UNAVAILABLE");
    assert!(broken.reason.contains("SyntaxError"), "{}", broken.reason);
    let e = worker
        .predictor()
        .await
        .predict(request("broken", "[1]"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("SyntaxError"), "{}", e.message());
    let again = worker
        .predictor()
        .await
        .predict(request("echo", "[5]"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(output_json(&again)["y"], serde_json::json!([10]));
    let e = worker
        .predictor()
        .await
        .predict(request("echo", "[1, "))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    worker.stop().await;
    control.stop().await;
    store.stop().await;
}
