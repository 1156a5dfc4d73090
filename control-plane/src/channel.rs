//! The client stack the control plane calls one worker through: a lazily
//! connected HTTP/2 channel under tower layers, each with its reason.

use std::time::Duration;

use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use hotswap_proto::v1::predictor_client::PredictorClient;
use tonic::transport::{Channel, Endpoint};
use tower::ServiceBuilder;
use tower::limit::ConcurrencyLimit;
use tower::timeout::Timeout;

/// Upper bound on one call when the client set no deadline: a worker that
/// hangs must not hold a client forever.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub type WorkerStack = ConcurrencyLimit<Timeout<Channel>>;

#[derive(Clone)]
pub struct WorkerClients {
    pub predictor: PredictorClient<WorkerStack>,
    pub inference: GrpcInferenceServiceClient<WorkerStack>,
}

impl WorkerClients {
    pub fn new(address: &str, capacity: u32) -> Result<WorkerClients, String> {
        let uri = if address.contains("://") {
            address.to_owned()
        } else {
            format!("http://{address}")
        };
        let channel = Endpoint::from_shared(uri)
            .map_err(|e| format!("worker address {address}: {e}"))?
            .connect_timeout(Duration::from_secs(2))
            // A worker that vanished without closing its connection is found
            // by keepalives, and calls fail over instead of hanging.
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true)
            .connect_lazy();
        let limit = if capacity == 0 {
            1024
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
            .service(channel);
        Ok(WorkerClients {
            predictor: PredictorClient::new(stack.clone())
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
            inference: GrpcInferenceServiceClient::new(stack)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        })
    }
}
