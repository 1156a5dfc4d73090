//! Errors named where the user looks: a failing `load_model` with its
//! line or its traceback, a stray file beside version folders.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::process::venv;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{WorkerOptions, WorkerServer, request};
use tonic::Code;

use crate::{first_refusal, one_model_api, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_load_model_is_internal_with_its_line_or_its_traceback() {
    let source = r#"
class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client

    def load_model(self, model_path):
        raise IOError("weights are corrupt in " + model_path.split("/")[-1])

    def predict(self, payload):
        return self.client.get_model()
"#;
    let (bucket, store, worker) = one_model_api(source).await;
    let failed = |worker: &WorkerServer| {
        let worker_addr = worker.addr;
        eventually("the load fails", move || async move {
            let mut p = hotswap_proto::v1::predictor_client::PredictorClient::new(
                hotswap_integration_tests::serving::channel(worker_addr).await,
            );
            p.predict(request("m", "{}", &[("version", "")]))
                .await
                .err()
                .filter(|e| e.code() == Code::Internal)
        })
    };
    // By default: the exception's line and a request id naming the log
    // line that holds the traceback.
    let e = failed(&worker).await;
    assert!(
        e.message().contains("OSError: weights are corrupt")
            && e.message().contains("(request ")
            && !e.message().contains("Traceback"),
        "{}",
        e.message()
    );
    // A worker told to return tracebacks (debugging) returns it whole.
    let debugging = WorkerServer::start_with(
        store.addr,
        &bucket,
        WorkerOptions {
            python_venv: Some(venv()),
            python_tracebacks: true,
            ..Default::default()
        },
    )
    .await;
    let e = failed(&debugging).await;
    assert!(
        e.message().contains("Traceback") && e.message().contains("in load_model"),
        "{}",
        e.message()
    );
    assert!(
        e.message().contains("OSError: weights are corrupt"),
        "{}",
        e.message()
    );
    debugging.stop().await;
    worker.stop().await;
    store.stop().await;
}

/// Version folders beside a stray file make one unversioned model; the
/// version's reason says so, and asking for one of the numbers says why it
/// is NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stray_file_beside_version_folders_is_named_when_a_version_is_not_found() {
    let bucket = TestBucket::new(Backend::Local).await;
    for key in ["m/1/weights.txt", "m/2/weights.txt", "m/README.md"] {
        bucket.put(key, "x").await;
    }
    let config = format!(
        "- {{name: m, predictor: {{type: python, path: m.py, multi_model_reloading: {{path: '{}'}}}}}}",
        bucket.uri("m")
    );
    let source = "class PythonPredictor:\n    def __init__(self, config, python_client):\n        self.client = python_client\n    def load_model(self, model_path):\n        return model_path\n    def predict(self, query_params):\n        return self.client.get_model(model_version=query_params['version'])\n";
    let (store, worker) = serve(&bucket, &config, source).await;
    let store = &store;
    let listed = eventually("the model-store indexed the folder", || async move {
        let listed = store
            .client()
            .await
            .list_models(hotswap_proto::v1::ListModelsRequest::default())
            .await
            .unwrap()
            .into_inner();
        (!listed.apis[0].models.is_empty()).then_some(listed)
    })
    .await;
    let versions = &listed.apis[0].models[0].versions;
    assert_eq!(versions.len(), 1, "{listed:?}");
    assert!(
        versions[0]
            .reason
            .contains("version folders (1, 2) sit beside other entries (README.md)"),
        "{listed:?}"
    );
    let status = first_refusal(&worker, request("m", "0", &[("version", "2")])).await;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(
        status
            .message()
            .contains("sit beside other entries (README.md)"),
        "{status:?}"
    );
}
