//! The front-door services, transport-free: both a worker and the control
//! plane implement them (one answers from its models, the other routes to
//! workers), and `hotswap-common`'s `transport` module serves either over
//! gRPC and HTTP.

use async_trait::async_trait;

use crate::error::ServiceError;
use crate::inference as pb;
use crate::v1::{PredictRequest, PredictResponse};

/// `hotswap.v1.Predictor`.
#[async_trait]
pub trait PredictorService: Send + Sync + 'static {
    /// What a call fails with; its [`ServiceError::code`] is the status.
    type Error: ServiceError;

    /// Runs an API (a model, or a predictor class) on one request.
    async fn predict(&self, request: PredictRequest) -> Result<PredictResponse, Self::Error>;
}

/// The Open Inference Protocol (KServe v2) with Triton's ModelConfig,
/// ModelStatistics and RepositoryIndex extensions.
#[async_trait]
pub trait InferenceService: Send + Sync + 'static {
    /// What a call fails with; its [`ServiceError::code`] is the status.
    type Error: ServiceError;

    /// Whether the server is up (`/v2/health/live`).
    async fn server_live(&self) -> Result<pb::ServerLiveResponse, Self::Error>;
    /// Whether the server can take inference calls (`/v2/health/ready`).
    async fn server_ready(&self) -> Result<pb::ServerReadyResponse, Self::Error>;
    /// Whether a model (at a version, or its default) can take calls.
    async fn model_ready(
        &self,
        r: pb::ModelReadyRequest,
    ) -> Result<pb::ModelReadyResponse, Self::Error>;
    /// The server's name, version and protocol extensions.
    async fn server_metadata(&self) -> Result<pb::ServerMetadataResponse, Self::Error>;
    /// A model's versions, platform, and input and output tensors.
    async fn model_metadata(
        &self,
        r: pb::ModelMetadataRequest,
    ) -> Result<pb::ModelMetadataResponse, Self::Error>;
    /// Runs a model on one request's tensors.
    async fn model_infer(
        &self,
        r: pb::ModelInferRequest,
    ) -> Result<pb::ModelInferResponse, Self::Error>;
    /// A model's configuration, as Triton's ModelConfig describes it.
    async fn model_config(
        &self,
        r: pb::ModelConfigRequest,
    ) -> Result<pb::ModelConfigResponse, Self::Error>;
    /// Inference counts and durations, of one model or of all.
    async fn model_statistics(
        &self,
        r: pb::ModelStatisticsRequest,
    ) -> Result<pb::ModelStatisticsResponse, Self::Error>;
    /// The models the server knows, and each one's state.
    async fn repository_index(
        &self,
        r: pb::RepositoryIndexRequest,
    ) -> Result<pb::RepositoryIndexResponse, Self::Error>;
}

/// Open Inference Protocol extensions hotswap speaks, by their Triton names
/// (ServerMetadata lists them; perf_analyzer reads statistics only when
/// `statistics` is there).
pub const EXTENSIONS: &[&str] = &["model_repository", "model_configuration", "statistics"];

/// What ServerMetadata says, on workers and the front door alike.
pub fn server_metadata() -> pb::ServerMetadataResponse {
    pb::ServerMetadataResponse {
        name: "hotswap".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        extensions: EXTENSIONS.iter().map(|e| (*e).to_owned()).collect(),
    }
}
