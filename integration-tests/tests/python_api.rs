//! A Python-predictor API end to end: the model-store ships the predictor
//! file, the worker runs it in Python processes, the control plane routes
//! Predict by API. A predictor that fails to start reports its traceback
//! while the other APIs keep serving. `python_client.get_model` loads
//! pickled models through `load_model`, caches them, and follows new and
//! rewritten versions, within the model's version policy.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{WorkerOptions, WorkerServer, output_json, request};
use hotswap_proto::inference::RepositoryIndexRequest;
use tonic::Code;

/// The query every call to `echo` and `broken` carries.
const FAST: &[(&str, &str)] = &[("mode", "fast")];

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
        control_plane: Some(control.internal.to_string()),
        ..Default::default()
    };
    let worker = WorkerServer::start_with(store.addr, &bucket, options).await;
    let p = control.predictor().await;
    let answer = eventually("the echo predictor answers", || {
        let mut p = p.clone();
        async move { p.predict(request("echo", "[1, 2, 3]", FAST)).await.ok() }
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
    assert!(
        broken.reason.contains("SyntaxError") && !broken.reason.contains("Traceback"),
        "{}",
        broken.reason
    );
    let e = worker
        .predictor()
        .await
        .predict(request("broken", "[1]", FAST))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("SyntaxError"), "{}", e.message());
    let again = worker
        .predictor()
        .await
        .predict(request("echo", "[5]", FAST))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(output_json(&again)["y"], serde_json::json!([10]));
    let e = worker
        .predictor()
        .await
        .predict(request("echo", "[1, ", FAST))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    worker.stop().await;
    control.stop().await;
    store.stop().await;
}

const CLASSIFIER: &str = r#"
import os, pickle

class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client
        self.loads = 0

    def load_model(self, model_path):
        self.loads += 1
        with open(os.path.join(model_path, "model.pkl"), "rb") as f:
            return pickle.load(f)

    def predict(self, payload, query_params):
        version = query_params.get("version", "latest")
        model = self.client.get_model(model_version=version)
        return {"label": model["label"], "loads": self.loads}
"#;

/// A pickled {"label": n}, made by the project's Python.
fn pickled(label: i64) -> Vec<u8> {
    let out = std::process::Command::new(
        hotswap_integration_tests::process::venv().join("bin/python"),
    )
    .args([
        "-c",
        &format!("import pickle, sys; sys.stdout.buffer.write(pickle.dumps({{'label': {label}}}))"),
    ])
    .output()
    .expect("run python");
    assert!(out.status.success());
    out.stdout
}

/// A model-store and a worker serving the CLASSIFIER predictor over the
/// bucket's `clf` folder, with `fields` added to its multi_model_reloading.
async fn classifier(bucket: &TestBucket, fields: &str) -> (StoreServer, WorkerServer) {
    let config = format!(
        "- {{name: clf, predictor: {{type: python, path: clf.py, multi_model_reloading: {{path: '{}', {fields}}}}}}}",
        bucket.uri("clf")
    );
    let store = StoreServer::start(bucket, &config, |c| {
        c.apis[0].predictor_source = Some(CLASSIFIER.to_owned());
    })
    .await;
    let worker = WorkerServer::start_with(store.addr, bucket, WorkerOptions::default()).await;
    (store, worker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_model_loads_caches_and_follows_versions() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("clf/1/model.pkl", pickled(10)).await;
    let (store, worker) = classifier(&bucket, "cache_size: 2, disk_cache_size: 2").await;
    let p = worker.predictor().await;
    let label = |r: &hotswap_proto::v1::PredictResponse| output_json(r)["label"].as_i64().unwrap();
    let loads = |r: &hotswap_proto::v1::PredictResponse| output_json(r)["loads"].as_i64().unwrap();
    let first = eventually("the classifier answers", || {
        let mut p = p.clone();
        async move {
            p.predict(request("clf", "{}", &[("version", "latest")]))
                .await
                .ok()
        }
    })
    .await
    .into_inner();
    assert_eq!((label(&first), loads(&first)), (10, 1));
    let again = p
        .clone()
        .predict(request("clf", "{}", &[("version", "")]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (label(&again), loads(&again)),
        (10, 1),
        "cached, not loaded again"
    );

    // A new version is what the next `latest` gets.
    bucket.put("clf/2/model.pkl", pickled(20)).await;
    let second = eventually("version 2 via get_model", || {
        let mut p = p.clone();
        async move {
            let r = p
                .predict(request("clf", "{}", &[("version", "latest")]))
                .await
                .ok()?
                .into_inner();
            (output_json(&r)["label"] == 20).then_some(r)
        }
    })
    .await;
    assert_eq!(loads(&second), 2);
    let one = p
        .clone()
        .predict(request("clf", "{}", &[("version", "1")]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (label(&one), loads(&one)),
        (10, 2),
        "version 1 still cached (cache_size 2)"
    );

    // Unknown versions are NOT_FOUND with the exception's line.
    let e = p
        .clone()
        .predict(request("clf", "{}", &[("version", "7")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        e.message().contains("LookupError") && e.message().contains("(request "),
        "{}",
        e.message()
    );

    // Rewritten in place: the next call loads the new content.
    bucket.put("clf/2/model.pkl", pickled(30)).await;
    eventually("the rewritten version 2", || {
        let mut p = p.clone();
        async move {
            let r = p
                .predict(request("clf", "{}", &[("version", "2")]))
                .await
                .ok()?
                .into_inner();
            (output_json(&r)["label"] == 30).then_some(())
        }
    })
    .await;

    // Concurrent first calls for a new version load it once.
    bucket.put("clf/3/model.pkl", pickled(40)).await;
    let w = &worker;
    eventually("version 3 indexed", || async move {
        (w.worker.catalog().versions.len() == 3).then_some(())
    })
    .await;
    let before = loads(
        &p.clone()
            .predict(request("clf", "{}", &[("version", "1")]))
            .await
            .unwrap()
            .into_inner(),
    );
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let mut p = p.clone();
            tokio::spawn(async move {
                p.predict(request("clf", "{}", &[("version", "3")]))
                    .await
                    .unwrap()
                    .into_inner()
            })
        })
        .collect();
    for c in calls {
        assert_eq!(label(&c.await.unwrap()), 40);
    }
    // One more call for version 3 loads nothing new.
    let after = loads(
        &p.clone()
            .predict(request("clf", "{}", &[("version", "3")]))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(after, before + 1, "one load for six concurrent first calls");
    worker.stop().await;
    store.stop().await;
}

/// `get_model` keeps to the model's version policy: `latest` is the newest
/// version within it, and a version outside it is NOT_FOUND with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_model_keeps_to_the_version_policy() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("clf/1/model.pkl", pickled(10)).await;
    bucket.put("clf/2/model.pkl", pickled(20)).await;
    let (store, worker) = classifier(&bucket, "version_policy: {latest: 1}").await;
    let p = worker.predictor().await;
    let latest = eventually("the classifier answers", || {
        let mut p = p.clone();
        async move {
            p.predict(request("clf", "{}", &[("version", "latest")]))
                .await
                .ok()
        }
    })
    .await
    .into_inner();
    assert_eq!(output_json(&latest)["label"], 20);
    let e = p
        .clone()
        .predict(request("clf", "{}", &[("version", "1")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        e.message()
            .contains("version 1 of `clf` is not served: outside version_policy latest: 1"),
        "{}",
        e.message()
    );
    worker.stop().await;
    store.stop().await;
}
