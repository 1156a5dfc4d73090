//! Python predictors with the user's virtualenv, in a worker subscribed to
//! a model-store: the scikit-learn and ONNX examples, memory given back when
//! a model is evicted, several calls at once, the predictor contract over
//! gRPC, and errors named where the user looks.

mod contract;
mod errors;
mod examples;
mod memory;
mod processes;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::process::venv;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{WorkerOptions, WorkerServer};
use hotswap_proto::v1::{PredictRequest, PredictResponse};
use tonic::Code;

/// A store and a worker (with the project venv as the user's) for one
/// Python API whose predictor is `source`.
async fn serve(bucket: &TestBucket, api_yaml: &str, source: &str) -> (StoreServer, WorkerServer) {
    let source = source.to_owned();
    let store = StoreServer::start(bucket, api_yaml, move |c| {
        c.apis[0].predictor_source = Some(source)
    })
    .await;
    let options = WorkerOptions {
        python_venv: Some(venv()),
        ..Default::default()
    };
    let worker = WorkerServer::start_with(store.addr, bucket, options).await;
    (store, worker)
}

/// API `m`, predictor `source`, one model version with one small file.
async fn one_model_api(source: &str) -> (TestBucket, StoreServer, WorkerServer) {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("m/1/weights.txt", "x").await;
    let config = format!(
        "- {{name: m, predictor: {{type: python, path: m.py, multi_model_reloading: {{path: '{}'}}}}}}",
        bucket.uri("m")
    );
    let (store, worker) = serve(&bucket, &config, source).await;
    (bucket, store, worker)
}

/// The error `r` gets once the API has started (or failed to): calls while
/// it starts are UNAVAILABLE.
async fn first_refusal(worker: &WorkerServer, r: PredictRequest) -> tonic::Status {
    let p = worker.predictor().await;
    eventually("the API started or failed", || {
        let mut p = p.clone();
        let r = r.clone();
        async move {
            match p.predict(r).await {
                Err(s) if s.code() != Code::Unavailable => Some(s),
                _ => None,
            }
        }
    })
    .await
}

async fn first_answer(worker: &WorkerServer, r: PredictRequest) -> PredictResponse {
    let p = worker.predictor().await;
    eventually("the predictor answers", || {
        let mut p = p.clone();
        let r = r.clone();
        async move { p.predict(r).await.ok() }
    })
    .await
    .into_inner()
}
