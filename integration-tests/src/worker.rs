//! A data-plane worker served on 127.0.0.1:0 in this process, subscribed to
//! a [`StoreServer`], with clients for both of its front-door services and
//! the model files the tests publish.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hotswap_data_plane::{DEFAULT_MAX_REQUEST_BYTES, Worker, WorkerConfig};
use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use hotswap_proto::inference::repository_index_response::ModelIndex;
use hotswap_proto::inference::{
    ModelConfig, ModelConfigRequest, ModelInferRequest, ModelStatisticsRequest,
    RepositoryIndexRequest, model_infer_request,
};
use hotswap_proto::v1::predictor_client::PredictorClient;
use hotswap_proto::v1::{PredictRequest, PredictResponse, predict_request, predict_response};
use tonic::transport::Channel;

use crate::bucket::TestBucket;
use crate::process::workspace_root;
use crate::serving::{Running, channel};
use crate::store::StoreServer;
use crate::wait::eventually;

/// A worker served on loopback for one test.
pub struct WorkerServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The worker itself, to look at.
    pub worker: Arc<Worker>,
    running: Running<hotswap_data_plane::Error>,
}

/// What a test changes from a worker's defaults.
#[derive(Default)]
pub struct WorkerOptions {
    /// The disk cache [default: a temporary folder].
    pub cache_dir: Option<PathBuf>,
    /// A control plane to register with.
    pub control_plane: Option<String>,
    /// The virtualenv for Python predictors.
    pub python_venv: Option<PathBuf>,
    /// The limit on a request's payload [default: the worker's own].
    pub max_request_bytes: Option<usize>,
    /// Download limits [default: the worker's own].
    pub downloads: Option<hotswap_data_plane::DownloadLimits>,
    /// Where the worker downloads from [default: the bucket's emulator].
    pub storage: Option<hotswap_storage::StorageOptions>,
    /// Return predictors' whole tracebacks to callers.
    pub python_tracebacks: bool,
    /// How the worker and the other planes trust each other.
    pub cluster: hotswap_common::trust::ClusterCredentials,
    /// TLS and tokens for clients (a worker with no control plane).
    pub clients: hotswap_common::trust::ClientTrust,
}

impl WorkerServer {
    /// A worker on `store`, downloading from `bucket`, with defaults.
    pub async fn start(store: &StoreServer, bucket: &TestBucket) -> WorkerServer {
        WorkerServer::start_with(store.addr, bucket, WorkerOptions::default()).await
    }

    /// A worker on the model-store at `model_store`, downloading from
    /// `bucket`, with `options`.
    pub async fn start_with(
        model_store: SocketAddr,
        bucket: &TestBucket,
        options: WorkerOptions,
    ) -> WorkerServer {
        let worker = Worker::start(WorkerConfig {
            model_store: model_store.to_string(),
            cache_dir: options.cache_dir,
            storage: options.storage.unwrap_or_else(|| bucket.storage_options()),
            control_plane: options.control_plane,
            advertise: None,
            python: crate::process::python(options.python_venv),
            runtimes: crate::process::runtimes(),
            downloads: options.downloads.unwrap_or_default(),
            python_tracebacks: options.python_tracebacks,
            warmup: true,
            cluster: options.cluster,
        })
        .expect("start the worker");
        let listener = hotswap_common::server::listen("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let max_request_bytes = options
            .max_request_bytes
            .unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
        let serving = worker.clone();
        let clients = options.clients;
        let running = Running::spawn(move |stop| {
            hotswap_data_plane::serve_worker(serving, max_request_bytes, clients, listener, stop)
        });
        WorkerServer {
            addr,
            worker,
            running,
        }
    }

    /// A channel to it.
    pub async fn channel(&self) -> Channel {
        channel(self.addr).await
    }

    /// A `Predictor` client to it.
    pub async fn predictor(&self) -> PredictorClient<Channel> {
        PredictorClient::new(self.channel().await)
    }

    /// An Open Inference Protocol client to it.
    pub async fn inference(&self) -> GrpcInferenceServiceClient<Channel> {
        GrpcInferenceServiceClient::new(self.channel().await)
    }

    /// Names and versions the worker reports READY.
    pub async fn ready_versions(&self) -> Vec<(String, String)> {
        let index = self
            .inference()
            .await
            .repository_index(RepositoryIndexRequest {
                ready: true,
                ..Default::default()
            })
            .await
            .expect("repository index")
            .into_inner();
        index
            .models
            .into_iter()
            .map(|m| (m.name, m.version))
            .collect()
    }

    /// Stops serving and shuts the worker down.
    pub async fn stop(mut self) {
        self.running.stop().await;
        self.worker.shut_down();
    }
}

impl Drop for WorkerServer {
    fn drop(&mut self) {
        self.worker.shut_down();
    }
}

/// The iris-like example model whose answer is label `label` (0, 1 or 2)
/// for [`IRIS_INPUT`]: the example's version `label + 1`.
pub fn iris(label: usize) -> Vec<u8> {
    std::fs::read(workspace_root().join(format!(
        "examples/iris-onnx/models/iris/{}/model.onnx",
        label + 1
    )))
    .expect("example model")
}

/// A local bucket holding iris version 1 (answering `label`), and an API
/// config serving it as `iris`.
pub async fn iris_bucket(label: usize) -> (TestBucket, String) {
    let bucket = TestBucket::new(crate::bucket::Backend::Local).await;
    bucket.put("iris/1/model.onnx", iris(label)).await;
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: '{}'}}}}}}",
        bucket.uri("iris")
    );
    (bucket, config)
}

/// The first entry of `name` version `version` in the RepositoryIndex of
/// the worker (or control plane) at `addr`; None when it has none or does
/// not answer.
pub async fn index_entry(addr: SocketAddr, name: &str, version: &str) -> Option<ModelIndex> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    GrpcInferenceServiceClient::new(channel)
        .repository_index(RepositoryIndexRequest::default())
        .await
        .ok()?
        .into_inner()
        .models
        .into_iter()
        .find(|m| m.name == name && m.version == version)
}

/// A fixture from integration-tests/fixtures/onnx (see make_fixtures.py).
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        workspace_root().join(format!("integration-tests/fixtures/onnx/{name}/model.onnx")),
    )
    .expect("fixture model")
}

/// An input the iris versions tell apart.
pub const IRIS_INPUT: &str = "[[5.1, 3.5, 1.4, 0.2]]";

/// A Predict call of `json` to `api`, with the query parameters a Cortex
/// client sends (`[("version", "2")]`, say): the one way tests build one.
pub fn request(api: &str, json: &str, query: &[(&str, &str)]) -> PredictRequest {
    PredictRequest {
        api: api.to_owned(),
        payload: Some(predict_request::Payload::Json(json.to_owned())),
        query_params: query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

/// As [`request`], for `api`'s `model` and `version` in the request's own
/// fields ("" for the API's only model, or latest).
pub fn predict_json(api: &str, model: &str, version: &str, json: &str) -> PredictRequest {
    PredictRequest {
        model: model.to_owned(),
        version: version.to_owned(),
        ..request(api, json, &[])
    }
}

/// Calls Predict for `api` ("latest") until an answer satisfies `accept`;
/// panics after [`WAIT`](crate::wait::WAIT).
pub async fn answer(
    predictor: &PredictorClient<Channel>,
    api: &str,
    what: &str,
    accept: impl Fn(&PredictResponse) -> bool,
) -> PredictResponse {
    eventually(what, || {
        let mut p = predictor.clone();
        let accept = &accept;
        async move {
            let r = p
                .predict(predict_json(api, "", "", IRIS_INPUT))
                .await
                .ok()?
                .into_inner();
            accept(&r).then_some(r)
        }
    })
    .await
}

/// The JSON output of a Predict response.
pub fn output_json(response: &PredictResponse) -> serde_json::Value {
    match &response.output {
        Some(predict_response::Output::Json(text)) => {
            serde_json::from_str(text).expect("json output")
        }
        other => panic!("expected JSON output, got {other:?}"),
    }
}

/// The label an iris response gives.
pub fn iris_label(response: &PredictResponse) -> i64 {
    output_json(response)["label"][0].as_i64().expect("label")
}

/// A ModelInfer request for the iris model with FP32 raw contents.
pub fn iris_infer(name: &str, version: &str) -> ModelInferRequest {
    let values: [f32; 4] = [5.1, 3.5, 1.4, 0.2];
    ModelInferRequest {
        model_name: name.to_owned(),
        model_version: version.to_owned(),
        inputs: vec![model_infer_request::InferInputTensor {
            name: "input".into(),
            datatype: "FP32".into(),
            shape: vec![1, 4],
            ..Default::default()
        }],
        raw_input_contents: vec![values.iter().flat_map(|v| v.to_le_bytes()).collect()],
        ..Default::default()
    }
}

/// A call of `rows` rows of iris inputs, different for each `seed`.
pub fn iris_rows(model: &str, rows: usize, seed: usize) -> ModelInferRequest {
    let values: Vec<f32> = (0..rows * 4)
        .map(|i| ((seed * 31 + i * 7) % 23) as f32 * 0.37 - 1.5)
        .collect();
    ModelInferRequest {
        model_name: model.to_owned(),
        inputs: vec![model_infer_request::InferInputTensor {
            name: "input".into(),
            datatype: "FP32".into(),
            shape: vec![rows as i64, 4],
            ..Default::default()
        }],
        raw_input_contents: vec![values.iter().flat_map(|v| v.to_le_bytes()).collect()],
        ..Default::default()
    }
}

/// Each output's (name, shape, bytes), in the answer's order.
pub type Outputs = Vec<(String, Vec<i64>, Vec<u8>)>;

/// ModelInfer's outputs (panics on an error).
pub async fn infer_outputs(
    client: &GrpcInferenceServiceClient<Channel>,
    request: ModelInferRequest,
) -> Outputs {
    let r = client
        .clone()
        .model_infer(request)
        .await
        .expect("ModelInfer")
        .into_inner();
    r.outputs
        .iter()
        .zip(r.raw_output_contents)
        .map(|(o, raw)| (o.name.clone(), o.shape.clone(), raw.to_vec()))
        .collect()
}

/// (inference count, execution count) of `model` version 1, from
/// ModelStatistics.
pub async fn execution_counts(
    client: &GrpcInferenceServiceClient<Channel>,
    model: &str,
) -> (u64, u64) {
    let stats = client
        .clone()
        .model_statistics(ModelStatisticsRequest {
            name: model.into(),
            version: "1".into(),
        })
        .await
        .expect("ModelStatistics")
        .into_inner();
    let s = &stats.model_stats[0];
    (s.inference_count, s.execution_count)
}

/// Triton's ModelConfig of `model`'s latest version (panics on an error).
pub async fn model_config(
    client: &GrpcInferenceServiceClient<Channel>,
    model: &str,
) -> ModelConfig {
    client
        .clone()
        .model_config(ModelConfigRequest {
            name: model.to_owned(),
            version: String::new(),
        })
        .await
        .expect("ModelConfig")
        .into_inner()
        .config
        .expect("a config")
}
