//! Workers over gRPC: a lazily connected HTTP/2 channel per worker under
//! tower layers, each with its reason, and the one place a worker's status
//! becomes a [`WorkerError`].

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hotswap_common::client::{PeerStatus, WithToken, endpoint_named};
use hotswap_common::context::outgoing;
use hotswap_common::trust::ClusterCredentials;
use hotswap_proto::error::{Code, NO_RETRY};
use hotswap_proto::inference::{
    self as pb, grpc_inference_service_client::GrpcInferenceServiceClient,
};
use hotswap_proto::v1::{PredictRequest, PredictResponse};
use prost::bytes::Bytes;
use tonic::Status;
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic_prost::ProstCodec;
use tower::ServiceBuilder;
use tower::limit::ConcurrencyLimit;
use tower::timeout::Timeout;

use super::{BoxError, Connect, Wire, WorkerApi, WorkerError};
use crate::forwarding::WireCodec;

/// Upper bound on one call when the client set no deadline: a worker that
/// hangs must not hold a client forever.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Calls in flight to one worker when it sets no limit of its own.
const DEFAULT_LIMIT: usize = 1024;

type WorkerStack = ConcurrencyLimit<Timeout<WithToken<Channel>>>;

/// A request shared between the attempts of one call: each attempt encodes
/// the one copy the front door decoded.
#[derive(Debug, Default)]
struct Shared<T>(Arc<T>);

impl<T: prost::Message + Default + Clone> prost::Message for Shared<T> {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        self.0.encode_raw(buf)
    }

    // Requests only go out; decoding one would take its own copy.
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        Arc::make_mut(&mut self.0).merge_field(tag, wire_type, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.encoded_len()
    }

    fn clear(&mut self) {
        self.0 = Arc::default();
    }
}

/// Connects to workers over gRPC, with the cluster's TLS and token.
pub struct GrpcConnector {
    /// The cluster's TLS and token, presented to every worker.
    pub cluster: ClusterCredentials,
    /// The name workers' certificates must carry [default: the host of the
    /// address each advertises].
    pub worker_tls_name: Option<String>,
}

impl Connect for GrpcConnector {
    fn connect(&self, address: &str, capacity: u32) -> Result<Arc<dyn WorkerApi>, BoxError> {
        let worker = GrpcWorker::new(
            address,
            capacity,
            &self.cluster,
            self.worker_tls_name.as_deref(),
        )?;
        Ok(Arc::new(worker))
    }
}

/// A gRPC client to one worker, with its concurrency limit and
/// keepalives; cheap to clone.
#[derive(Clone)]
pub struct GrpcWorker {
    /// For the calls whose requests are shared between attempts.
    shared: Grpc<WorkerStack>,
    inference: GrpcInferenceServiceClient<WorkerStack>,
}

impl GrpcWorker {
    /// A client to the worker at `address` that sends at most `capacity`
    /// calls at once (0: no limit), connecting on first use.
    pub fn new(
        address: &str,
        capacity: u32,
        cluster: &ClusterCredentials,
        tls_name: Option<&str>,
    ) -> Result<GrpcWorker, BoxError> {
        let channel = endpoint_named(address, cluster, tls_name)?
            .connect_timeout(Duration::from_secs(2))
            // A worker that vanished without closing its connection is found
            // by keepalives, and calls fail over instead of hanging.
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true)
            .connect_lazy();
        let limit = if capacity == 0 {
            DEFAULT_LIMIT
        } else {
            capacity as usize
        };
        let stack = ServiceBuilder::new()
            // Outermost: never send a worker more calls than it said it takes
            // at once; excess calls wait here, not in the worker's queue.
            .concurrency_limit(limit)
            // Inside the limit, so waiting for a slot does not count against
            // the call's own time budget.
            .timeout(CALL_TIMEOUT)
            .service(WithToken::new(channel, cluster));
        Ok(GrpcWorker {
            shared: Grpc::new(stack.clone())
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
            inference: GrpcInferenceServiceClient::new(stack)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        })
    }
}

/// A failed call, classified. Each call goes out with the caller's
/// remaining time and trace context ([`outgoing`]).
fn classify(status: Status) -> WorkerError {
    if timed_out(&status) {
        return WorkerError::TimedOut;
    }
    // A status with a source was made by this process's transport (connect
    // refused, stream reset, connection closed); answers decoded from a
    // worker's trailers have none.
    if status.source().is_some() {
        return WorkerError::Unreachable(Box::new(PeerStatus(status)));
    }
    WorkerError::Answered {
        code: Code::of(status.code()),
        no_retry: status.metadata().contains_key(NO_RETRY),
        message: status.message().to_owned(),
    }
}

/// Whether the per-call timeout layer fired.
fn timed_out(status: &Status) -> bool {
    let mut source = status.source();
    while let Some(e) = source {
        if e.is::<tower::timeout::error::Elapsed>() {
            return true;
        }
        source = e.source();
    }
    false
}

impl GrpcWorker {
    /// Calls the unary method at `path` with a shared request.
    async fn call_shared<Req, Resp>(&self, path: &'static str, r: Arc<Req>) -> Result<Resp, Status>
    where
        Req: prost::Message + Default + Clone + 'static,
        Resp: prost::Message + Default + 'static,
    {
        let mut grpc = self.shared.clone();
        grpc.ready().await.map_err(Status::from_error)?;
        grpc.unary(
            outgoing(Shared(r)),
            PathAndQuery::from_static(path),
            ProstCodec::<Shared<Req>, Resp>::default(),
        )
        .await
        .map(tonic::Response::into_inner)
    }

    /// Calls the unary method at `path` with a request as encoded, and
    /// takes the answer as encoded.
    async fn call_wire(&self, path: &'static str, r: Wire) -> Result<Bytes, WorkerError> {
        let mut grpc = self.shared.clone();
        grpc.ready()
            .await
            .map_err(|e| classify(Status::from_error(e)))?;
        grpc.unary(outgoing(r), PathAndQuery::from_static(path), WireCodec)
            .await
            .map(tonic::Response::into_inner)
            .map_err(classify)
    }
}

#[async_trait]
impl WorkerApi for GrpcWorker {
    async fn model_infer_wire(&self, r: Wire) -> Result<Bytes, WorkerError> {
        self.call_wire("/inference.GRPCInferenceService/ModelInfer", r)
            .await
    }

    async fn predict_wire(&self, r: Wire) -> Result<Bytes, WorkerError> {
        self.call_wire("/hotswap.v1.Predictor/Predict", r).await
    }

    async fn predict(&self, r: Arc<PredictRequest>) -> Result<PredictResponse, WorkerError> {
        self.call_shared("/hotswap.v1.Predictor/Predict", r)
            .await
            .map_err(classify)
    }

    async fn model_infer(
        &self,
        r: Arc<pb::ModelInferRequest>,
    ) -> Result<pb::ModelInferResponse, WorkerError> {
        self.call_shared("/inference.GRPCInferenceService/ModelInfer", r)
            .await
            .map_err(classify)
    }

    async fn model_metadata(
        &self,
        r: pb::ModelMetadataRequest,
    ) -> Result<pb::ModelMetadataResponse, WorkerError> {
        let mut client = self.inference.clone();
        client
            .model_metadata(outgoing(r))
            .await
            .map(tonic::Response::into_inner)
            .map_err(classify)
    }

    async fn model_config(
        &self,
        r: pb::ModelConfigRequest,
    ) -> Result<pb::ModelConfigResponse, WorkerError> {
        let mut client = self.inference.clone();
        client
            .model_config(outgoing(r))
            .await
            .map(tonic::Response::into_inner)
            .map_err(classify)
    }

    async fn model_statistics(
        &self,
        r: pb::ModelStatisticsRequest,
    ) -> Result<pb::ModelStatisticsResponse, WorkerError> {
        let mut client = self.inference.clone();
        client
            .model_statistics(outgoing(r))
            .await
            .map(tonic::Response::into_inner)
            .map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let answered = classify(Status::invalid_argument("bad input"));
        assert!(matches!(
            answered,
            WorkerError::Answered {
                code: Code::InvalidArgument,
                no_retry: false,
                ..
            }
        ));
        let mut died = Status::unavailable("process died");
        died.metadata_mut()
            .insert(NO_RETRY, tonic::metadata::MetadataValue::from_static("1"));
        assert!(matches!(
            classify(died),
            WorkerError::Answered {
                code: Code::Unavailable,
                no_retry: true,
                ..
            }
        ));
        let transport = Status::from_error(Box::new(std::io::Error::other("connection reset")));
        assert!(matches!(classify(transport), WorkerError::Unreachable(_)));
        let elapsed = Status::from_error(Box::new(tower::timeout::error::Elapsed::new()));
        assert!(matches!(classify(elapsed), WorkerError::TimedOut));
    }
}
