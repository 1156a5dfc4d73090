//! Serving the control plane on an already-bound listener: the front door
//! (Predict, the Open Inference Protocol), worker registration and the
//! operators' API, with gRPC health and reflection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hotswap_data_plane::catalog::Catalog;
use hotswap_data_plane::grpc::{GrpcInference, GrpcPredictor};
use hotswap_proto::inference::grpc_inference_service_server::GrpcInferenceServiceServer;
use hotswap_proto::v1::control_plane_server::ControlPlaneServer;
use hotswap_proto::v1::predictor_server::PredictorServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::Error;
use crate::context::CallContextLayer;
use crate::front::FrontDoor;
use crate::grpc::GrpcControlPlane;
use crate::register::Registrar;
use crate::registry::Registry;
use crate::router::Router;

pub const SERVICE_NAME: &str = "hotswap.v1.ControlPlane";

/// Largest message the front door decodes: what a worker accepts by
/// default, with room for names and shapes. Workers check inputs against
/// their own limit and name the input.
const MAX_MESSAGE_BYTES: usize = 2 * hotswap_data_plane::DEFAULT_MAX_REQUEST_BYTES;

#[derive(Debug, Clone)]
pub struct ControlPlaneConfig {
    /// host:port (or URI) of the model-store.
    pub model_store: String,
}

/// A running control plane's shared state, for callers that also inspect it.
#[derive(Clone)]
pub struct ControlPlane {
    pub registry: Arc<Registry>,
    catalog: watch::Receiver<Arc<Catalog>>,
    shutdown: CancellationToken,
}

impl ControlPlane {
    /// Starts the catalog subscription and the registry sweeper.
    pub fn start(config: ControlPlaneConfig) -> ControlPlane {
        let (tx, catalog) = watch::channel(Arc::new(Catalog::default()));
        let shutdown = CancellationToken::new();
        tokio::spawn(hotswap_data_plane::subscription::run(
            config.model_store,
            tx,
            Arc::default(),
            shutdown.clone(),
        ));
        let registry = Arc::new(Registry::default());
        tokio::spawn({
            let registry = registry.clone();
            let shutdown = shutdown.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        _ = tick.tick() => registry.sweep(),
                    }
                }
            }
        });
        ControlPlane {
            registry,
            catalog,
            shutdown,
        }
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }
}

/// Starts a control plane and serves it until `shutdown` resolves.
pub async fn serve(
    config: ControlPlaneConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let control_plane = ControlPlane::start(config);
    let result = serve_control_plane(control_plane.clone(), listener, shutdown).await;
    control_plane.shut_down();
    result
}

/// As [`serve`], for a control plane the caller started. Health is
/// NOT_SERVING until the model index has arrived.
pub async fn serve_control_plane(
    control_plane: ControlPlane,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health_task = tokio::spawn({
        let mut updates = control_plane.catalog.clone();
        let registry = control_plane.registry.clone();
        async move {
            // "" and the registration service: serving once the catalog is
            // here (workers must be able to register). The front-door
            // services: also need a worker.
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                let complete = updates.borrow_and_update().complete;
                let front = complete && !registry.is_empty();
                for (name, up) in [
                    ("", complete),
                    (SERVICE_NAME, complete),
                    (hotswap_data_plane::PREDICTOR_SERVICE, front),
                    (hotswap_data_plane::INFERENCE_SERVICE, front),
                ] {
                    let status = if up {
                        ServingStatus::Serving
                    } else {
                        ServingStatus::NotServing
                    };
                    reporter.set_service_status(name, status).await;
                }
                tokio::select! {
                    changed = updates.changed() => if changed.is_err() { return },
                    _ = tick.tick() => {}
                }
            }
        }
    });
    let reflection_v1 = reflection().build_v1().map_err(reflection_error)?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_error)?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Server(format!("listener: {e}")))?;
    tracing::info!(%addr, "control-plane listening");

    let front = FrontDoor {
        catalog: control_plane.catalog.clone(),
        registry: control_plane.registry.clone(),
        router: Arc::new(Router::new(control_plane.registry.clone())),
    };
    let registrar = Registrar {
        registry: control_plane.registry.clone(),
        shutdown: control_plane.shutdown.clone(),
    };
    let stopping = control_plane.shutdown.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        // Captures each call's deadline and trace context for the worker
        // call it turns into; outermost, so every span below continues the
        // caller's trace.
        .layer(CallContextLayer)
        // One request log line per call, with its status and latency; a
        // failed call is most often the caller's mistake, so WARN.
        .layer(
            tower_http::trace::TraceLayer::new_for_grpc()
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::WARN)),
        )
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ControlPlaneServer::new(GrpcControlPlane(registrar)))
        .add_service(
            PredictorServer::new(GrpcPredictor(front.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            GrpcInferenceServiceServer::new(GrpcInference(front))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(usize::MAX),
        )
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            shutdown.await;
            // End the registration streams first: graceful shutdown waits
            // for them.
            stopping.cancel();
            let _ = stop_tx.send(());
        });
    let result = hotswap_proto::serving::with_grace(server, stop_rx).await;
    health_task.abort();
    result.map_err(|e| Error::Server(format!("grpc server on {addr}: {e}")))
}

/// Advertises only what the control plane serves.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(hotswap_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(hotswap_proto::INFERENCE_FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(SERVICE_NAME)
        .with_service_name(hotswap_data_plane::PREDICTOR_SERVICE)
        .with_service_name(hotswap_data_plane::INFERENCE_SERVICE)
        .with_service_name("grpc.health.v1.Health")
}

fn reflection_error(e: tonic_reflection::server::Error) -> Error {
    Error::Server(format!("reflection: {e}"))
}
