//! Serving a worker on an already-bound listener, with gRPC health and
//! reflection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hotswap_proto::inference::grpc_inference_service_server::GrpcInferenceServiceServer;
use hotswap_proto::v1::predictor_server::PredictorServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::Error;
use crate::grpc::{GrpcInference, GrpcPredictor};
use crate::predict::WorkerService;
use crate::worker::{Worker, WorkerConfig};

pub const PREDICTOR_SERVICE: &str = "hotswap.v1.Predictor";
pub const INFERENCE_SERVICE: &str = "inference.GRPCInferenceService";

/// Default largest request payload (the whole message may be a little
/// larger: names, shapes).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 << 20;

/// Requests handled at once; more wait for a turn. Bounds the memory that
/// decoded requests (a JSON payload expands many times in memory) can take.
pub const MAX_CONCURRENT_REQUESTS: usize = 256;

/// How long a stopping worker keeps taking calls after leaving the control
/// plane's registry.
const DEREGISTER_PAUSE: Duration = Duration::from_millis(300);

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub worker: WorkerConfig,
    pub max_request_bytes: usize,
}

/// Starts a worker and serves it until `shutdown` resolves.
pub async fn serve(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let worker = Worker::start(config.worker)?;
    let result = serve_worker(worker.clone(), config.max_request_bytes, listener, shutdown).await;
    worker.shut_down();
    result
}

/// As [`serve`], for a worker the caller started (and may also inspect).
/// Health reports NOT_SERVING until the model index has arrived.
pub async fn serve_worker(
    worker: Arc<Worker>,
    max_request_bytes: usize,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health_task = tokio::spawn({
        let mut updates = worker.catalog_updates();
        async move {
            loop {
                let status = if updates.borrow_and_update().complete {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                for name in ["", PREDICTOR_SERVICE, INFERENCE_SERVICE] {
                    reporter.set_service_status(name, status).await;
                }
                if updates.changed().await.is_err() {
                    return;
                }
            }
        }
    });
    let reflection_v1 = reflection().build_v1().map_err(reflection_error)?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_error)?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Server(format!("listener: {e}")))?;
    tracing::info!(%addr, "data-plane listening");
    // Registration ends first at shutdown, so the control plane stops
    // routing here before the server stops taking calls.
    let registration = worker.shutdown_token().child_token();
    if let Some(control_plane) = worker.control_plane.clone() {
        let address = worker.advertise.clone().unwrap_or_else(|| advertised(addr));
        tokio::spawn(crate::registration::run(
            worker.clone(),
            crate::registration::Registration {
                control_plane,
                address,
                capacity: MAX_CONCURRENT_REQUESTS as u32,
            },
            registration.clone(),
        ));
    }
    let registered = worker.control_plane.is_some();

    // The service checks payload sizes itself (to name the input); tonic's
    // own limit only guards against absurd messages.
    let decode_limit = max_request_bytes.saturating_mul(2).max(4 << 20);
    let service = WorkerService::new(worker, max_request_bytes);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        // Outermost: excess requests queue here before anything is decoded.
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            MAX_CONCURRENT_REQUESTS,
        ))
        // Each call runs in a span that continues the caller's trace.
        .layer(crate::telemetry::TraceContextLayer {
            service: "data-plane",
        })
        // One request log line per call, with its status and latency; a
        // failed call is most often the caller's mistake, so WARN, not ERROR.
        .layer(
            tower_http::trace::TraceLayer::new_for_grpc()
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::WARN)),
        )
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            PredictorServer::new(GrpcPredictor(service.clone()))
                .max_decoding_message_size(decode_limit)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            GrpcInferenceServiceServer::new(GrpcInference(service))
                .max_decoding_message_size(decode_limit)
                .max_encoding_message_size(usize::MAX),
        )
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            shutdown.await;
            registration.cancel();
            if registered {
                // Calls the control plane routed here just before it saw the
                // registration end still arrive and are served.
                tokio::time::sleep(DEREGISTER_PAUSE).await;
            }
            let _ = stop_tx.send(());
        });
    let result = hotswap_proto::serving::with_grace(server, stop_rx).await;
    health_task.abort();
    result.map_err(|e| Error::Server(format!("grpc server on {addr}: {e}")))
}

/// The address to register: the bound one, or the host name with the bound
/// port when bound to all interfaces (what peers on a container network
/// resolve).
fn advertised(addr: std::net::SocketAddr) -> String {
    if !addr.ip().is_unspecified() {
        return addr.to_string();
    }
    let mut name = [0u8; 256];
    // SAFETY: gethostname writes at most `name.len()` bytes into the buffer.
    let ok = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0;
    let host = ok
        .then(|| std::ffi::CStr::from_bytes_until_nul(&name).ok())
        .flatten()
        .and_then(|c| c.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("127.0.0.1");
    format!("{host}:{}", addr.port())
}

/// Advertises only what a worker serves.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(hotswap_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(hotswap_proto::INFERENCE_FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(PREDICTOR_SERVICE)
        .with_service_name(INFERENCE_SERVICE)
        .with_service_name("grpc.health.v1.Health")
}

fn reflection_error(e: tonic_reflection::server::Error) -> Error {
    Error::Server(format!("reflection: {e}"))
}
