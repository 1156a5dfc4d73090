//! Serving a worker on an already-bound listener: the front-door services
//! over the shared server builder, health that follows the model index, and
//! registration with the control plane (ended first at shutdown, so the
//! control plane stops routing here before the server stops taking calls).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hotswap_common::GrpcServer;
use hotswap_common::transport::grpc::{GrpcInference, GrpcPredictor};
use hotswap_common::trust::ClientTrust;
use hotswap_proto::inference::grpc_inference_service_server::{
    self as inference_server, GrpcInferenceServiceServer,
};
use hotswap_proto::v1::predictor_server::{self, PredictorServer};
use tokio::net::TcpListener;
use tonic_health::ServingStatus;

use crate::Error;
use crate::predict::WorkerService;
use crate::registration::{self, Registration};
use crate::worker::{Worker, WorkerConfig};

/// Requests handled at once; more wait for a turn. Bounds the memory that
/// decoded requests (a JSON payload expands many times in memory) can take.
pub const MAX_CONCURRENT_REQUESTS: usize = 256;

/// How long a stopping worker keeps taking calls after leaving the control
/// plane's registry.
const DEREGISTER_PAUSE: Duration = Duration::from_millis(300);

/// How often health looks again while the worker is not ready yet (loads
/// finish without a catalog change).
const READINESS_CHECK: Duration = Duration::from_millis(200);

/// What a worker is served with (the binary builds it from flags and the
/// environment).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The worker itself: model-store, cache, runtimes, limits.
    pub worker: WorkerConfig,
    /// Largest request payload accepted, in bytes.
    pub max_request_bytes: usize,
    /// TLS and bearer tokens for clients, for a worker that does not
    /// register with a control plane (one that does takes the cluster's
    /// credentials instead).
    pub clients: ClientTrust,
}

/// Starts a worker and serves it until `shutdown` resolves.
pub async fn serve(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let worker = Worker::start(config.worker)?;
    let result = serve_worker(
        worker.clone(),
        config.max_request_bytes,
        config.clients,
        listener,
        shutdown,
    )
    .await;
    worker.shut_down();
    result
}

/// As [`serve`], for a worker the caller started (and may also inspect).
/// Health reports NOT_SERVING until the model index has arrived.
pub async fn serve_worker(
    worker: Arc<Worker>,
    max_request_bytes: usize,
    clients: ClientTrust,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    // The service checks payload sizes itself (to name the input); tonic's
    // own limit only guards against absurd messages.
    let decode_limit = max_request_bytes.saturating_mul(2).max(4 << 20);
    let service = WorkerService::new(worker.clone(), max_request_bytes);
    // Behind a control plane only the control plane calls (and it holds
    // the routing decisions); on its own the worker is client-facing.
    let guard = match &worker.control_plane {
        Some(_) => worker.cluster.internal(),
        None => clients.guard(),
    };
    let server = GrpcServer::new("data-plane")
        .guard(guard)
        .concurrency_limit(MAX_CONCURRENT_REQUESTS)
        .body_limit(decode_limit)
        .add_service(
            PredictorServer::new(GrpcPredictor(service.clone()))
                .max_decoding_message_size(decode_limit)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            GrpcInferenceServiceServer::new(GrpcInference(service.clone()))
                .max_decoding_message_size(decode_limit)
                .max_encoding_message_size(usize::MAX),
        )
        .http(hotswap_common::transport::http::router(
            Arc::new(service.clone()),
            Arc::new(service),
            decode_limit,
            hotswap_proto::limit::RequestLimit(max_request_bytes),
        ));
    let health_task = tokio::spawn({
        let reporter = server.health();
        let mut updates = worker.catalog_updates();
        let worker = worker.clone();
        async move {
            let mut last = None;
            loop {
                // Loads finish without a catalog change: look again often.
                let status = if worker.ready() {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                if last != Some(status) {
                    for name in [
                        "",
                        predictor_server::SERVICE_NAME,
                        inference_server::SERVICE_NAME,
                    ] {
                        reporter.set_service_status(name, status).await;
                    }
                    last = Some(status);
                }
                tokio::select! {
                    changed = updates.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(READINESS_CHECK) => {}
                }
            }
        }
    });
    let registration = worker.shutdown_token().child_token();
    // Without an address the server fails at once, saying why.
    let registered = match (&worker.control_plane, listener.local_addr()) {
        (Some(control_plane), Ok(addr)) => {
            let address = worker.advertise.clone().unwrap_or_else(|| advertised(addr));
            tokio::spawn(registration::run(
                worker.clone(),
                Registration {
                    control_plane: control_plane.clone(),
                    address,
                    capacity: MAX_CONCURRENT_REQUESTS as u32,
                },
                registration.clone(),
            ));
            true
        }
        _ => false,
    };
    let result = server
        .serve(listener, async move {
            shutdown.await;
            registration.cancel();
            if registered {
                // Calls the control plane routed here just before it saw the
                // registration end still arrive and are served.
                tokio::time::sleep(DEREGISTER_PAUSE).await;
            }
        })
        .await;
    health_task.abort();
    Ok(result?)
}

/// The address to register: the bound one, or the host name with the bound
/// port when bound to all interfaces (what peers on a container network
/// resolve).
fn advertised(addr: std::net::SocketAddr) -> String {
    if !addr.ip().is_unspecified() {
        return addr.to_string();
    }
    // The UTS namespace's name: a container's host name.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    format!("{host}:{}", addr.port())
}
