//! A worker as the control plane calls it, without transport: the calls the
//! front door routes, and how they fail. The registry connects to each
//! worker through a [`Connect`]: over gRPC in production ([`grpc`]),
//! in-process over any implementation of the front-door service traits in
//! tests ([`local`]).

pub mod grpc;
pub mod local;

use std::sync::Arc;

use async_trait::async_trait;
use hotswap_proto::error::Code;
use hotswap_proto::inference as pb;
use hotswap_proto::v1::{PredictRequest, PredictResponse};

/// Any error, boxed: what transports and connectors fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The calls the front door makes on a worker. The two that carry inputs
/// take them shared: a call retried on another worker sends the same
/// request, never a copy of it.
#[async_trait]
pub trait WorkerApi: Send + Sync + 'static {
    /// `hotswap.v1.Predictor/Predict` on the worker.
    async fn predict(&self, r: Arc<PredictRequest>) -> Result<PredictResponse, WorkerError>;
    /// The Open Inference Protocol's `ModelInfer` on the worker.
    async fn model_infer(
        &self,
        r: Arc<pb::ModelInferRequest>,
    ) -> Result<pb::ModelInferResponse, WorkerError>;
    /// The Open Inference Protocol's `ModelMetadata` on the worker.
    async fn model_metadata(
        &self,
        r: pb::ModelMetadataRequest,
    ) -> Result<pb::ModelMetadataResponse, WorkerError>;
    /// Triton's `ModelConfig` on the worker.
    async fn model_config(
        &self,
        r: pb::ModelConfigRequest,
    ) -> Result<pb::ModelConfigResponse, WorkerError>;
    /// Triton's `ModelStatistics` on the worker.
    async fn model_statistics(
        &self,
        r: pb::ModelStatisticsRequest,
    ) -> Result<pb::ModelStatisticsResponse, WorkerError>;
}

/// How a call to a worker failed: what the router's retry rules look at.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The worker could not take the call (connection refused or cut, the
    /// worker gone): it never ran there, and another worker may take it.
    #[error("worker unreachable")]
    Unreachable(#[source] BoxError),

    /// The call's time ran out before the worker answered.
    #[error("timed out")]
    TimedOut,

    /// The worker's own answer.
    #[error("{message}")]
    Answered {
        /// The worker's status code.
        code: Code,
        /// The worker's message.
        message: String,
        /// The worker says the call itself may be the problem (it was
        /// running when a Python process died): it must not run again.
        no_retry: bool,
    },
}

/// Opens a client to the worker at `address`, which takes `capacity`
/// calls at once (0: no limit of its own).
pub trait Connect: Send + Sync + 'static {
    /// A client to the worker at `address`; it connects lazily, so this
    /// fails only on an address that cannot be dialled at all.
    fn connect(&self, address: &str, capacity: u32) -> Result<Arc<dyn WorkerApi>, BoxError>;
}
