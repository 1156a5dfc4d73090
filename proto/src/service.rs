//! The front-door services, transport-free: both a worker and the control
//! plane implement them (one answers from its models, the other routes to
//! workers), and the `grpc` module serves either over tonic.

use async_trait::async_trait;

use crate::error::ServiceError;
use crate::inference as pb;
use crate::v1::{PredictRequest, PredictResponse};

/// `hotswap.v1.Predictor`.
#[async_trait]
pub trait PredictorService: Send + Sync + 'static {
    type Error: ServiceError;

    async fn predict(&self, request: PredictRequest) -> Result<PredictResponse, Self::Error>;
}

/// The Open Inference Protocol (KServe v2) with Triton's ModelConfig,
/// ModelStatistics and RepositoryIndex extensions.
#[async_trait]
pub trait InferenceService: Send + Sync + 'static {
    type Error: ServiceError;

    async fn server_live(&self) -> Result<pb::ServerLiveResponse, Self::Error>;
    async fn server_ready(&self) -> Result<pb::ServerReadyResponse, Self::Error>;
    async fn model_ready(
        &self,
        r: pb::ModelReadyRequest,
    ) -> Result<pb::ModelReadyResponse, Self::Error>;
    async fn server_metadata(&self) -> Result<pb::ServerMetadataResponse, Self::Error>;
    async fn model_metadata(
        &self,
        r: pb::ModelMetadataRequest,
    ) -> Result<pb::ModelMetadataResponse, Self::Error>;
    async fn model_infer(
        &self,
        r: pb::ModelInferRequest,
    ) -> Result<pb::ModelInferResponse, Self::Error>;
    async fn model_config(
        &self,
        r: pb::ModelConfigRequest,
    ) -> Result<pb::ModelConfigResponse, Self::Error>;
    async fn model_statistics(
        &self,
        r: pb::ModelStatisticsRequest,
    ) -> Result<pb::ModelStatisticsResponse, Self::Error>;
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
