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
use prost::Message;
use prost::bytes::{Buf, Bytes};

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

    /// `ModelInfer` with the request and its answer as encoded: what the
    /// front door forwards without decoding. By default decoded and
    /// answered by [`WorkerApi::model_infer`] (in-process workers); over
    /// gRPC the bytes go as they are.
    async fn model_infer_wire(&self, r: Wire) -> Result<Bytes, WorkerError> {
        let request = pb::ModelInferRequest::decode(r.buf()).map_err(undecodable)?;
        let answer = self.model_infer(Arc::new(request)).await?;
        Ok(answer.encode_to_vec().into())
    }

    /// `Predict` as encoded, as [`WorkerApi::model_infer_wire`].
    async fn predict_wire(&self, r: Wire) -> Result<Bytes, WorkerError> {
        let request = PredictRequest::decode(r.buf()).map_err(undecodable)?;
        let answer = self.predict(Arc::new(request)).await?;
        Ok(answer.encode_to_vec().into())
    }
}

/// A message as encoded: the bytes a client sent and the fields the front
/// door appends (they replace the client's on decoding). Cheap to clone: a
/// retry sends the same bytes.
#[derive(Debug, Clone, Default)]
pub struct Wire {
    /// The bytes as received.
    pub body: Bytes,
    /// Fields appended to them.
    pub suffix: Bytes,
}

impl Wire {
    /// Its length encoded.
    pub fn len(&self) -> usize {
        self.body.len() + self.suffix.len()
    }

    /// Whether it is empty (a message with every field at its default).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole message, to decode or copy out.
    pub fn buf(&self) -> impl Buf + use<> {
        self.body.clone().chain(self.suffix.clone())
    }
}

/// What a worker answers a message it cannot decode (tonic's own answer).
fn undecodable(e: prost::DecodeError) -> WorkerError {
    WorkerError::Answered {
        code: Code::Internal,
        message: e.to_string(),
        no_retry: false,
    }
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
