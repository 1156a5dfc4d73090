//! Serving the control plane on an already-bound listener: the front door
//! (Predict, the Open Inference Protocol), worker registration and the
//! operators' API, over the shared server builder.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hotswap_common::GrpcServer;
use hotswap_common::catalog::Catalog;
use hotswap_common::subscription;
use hotswap_proto::DEFAULT_MAX_REQUEST_BYTES;
use hotswap_proto::grpc::{GrpcInference, GrpcPredictor};
use hotswap_proto::inference::grpc_inference_service_server::{
    self as inference_server, GrpcInferenceServiceServer,
};
use hotswap_proto::v1::control_plane_server::{self, ControlPlaneServer};
use hotswap_proto::v1::predictor_server::{self, PredictorServer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;

use crate::Error;
use crate::front::FrontDoor;
use crate::grpc::GrpcControlPlane;
use crate::own::OwnListeners;
use crate::register::Registrar;
use crate::registry::{Registry, RegistryLimits};
use crate::router::Router;
use crate::worker::Connect;
use crate::worker::grpc::GrpcConnector;

pub const SERVICE_NAME: &str = control_plane_server::SERVICE_NAME;

/// Largest message the front door decodes: what a worker accepts by
/// default, with room for names and shapes. Workers check inputs against
/// their own limit and name the input.
const MAX_MESSAGE_BYTES: usize = 2 * DEFAULT_MAX_REQUEST_BYTES;

/// Calls handled at once; more wait before anything of theirs is decoded.
/// Bounds the memory requests in flight take (each up to
/// [`MAX_MESSAGE_BYTES`]), as a worker bounds its own.
const MAX_CONCURRENT_CALLS: usize = 256;

#[derive(Debug, Clone, Default)]
pub struct ControlPlaneConfig {
    /// host:port (or URI) of the model-store.
    pub model_store: String,
    /// Bounds on the workers registered and what they report.
    pub limits: RegistryLimits,
}

/// A running control plane's shared state, for callers that also inspect it.
#[derive(Clone)]
pub struct ControlPlane {
    pub registry: Arc<Registry>,
    catalog: watch::Receiver<Arc<Catalog>>,
    shutdown: CancellationToken,
}

impl ControlPlane {
    /// Starts the catalog subscription and the registry sweeper; workers
    /// are called over gRPC.
    pub fn start(config: ControlPlaneConfig) -> ControlPlane {
        ControlPlane::start_with(config, Arc::new(GrpcConnector))
    }

    /// As [`ControlPlane::start`], reaching workers through `connector`.
    pub fn start_with(config: ControlPlaneConfig, connector: Arc<dyn Connect>) -> ControlPlane {
        let (tx, catalog) = watch::channel(Arc::new(Catalog::default()));
        let shutdown = CancellationToken::new();
        tokio::spawn(subscription::run(
            config.model_store,
            tx,
            Arc::default(),
            shutdown.clone(),
        ));
        let registry = Arc::new(Registry::with_limits(connector, config.limits));
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
    let front = FrontDoor {
        catalog: control_plane.catalog.clone(),
        registry: control_plane.registry.clone(),
        router: Arc::new(Router::new(control_plane.registry.clone())),
    };
    let own = listener
        .local_addr()
        .map_err(|e| Error::Server(hotswap_common::ServerError::Listener(e)))?;
    let registrar = Registrar {
        registry: control_plane.registry.clone(),
        shutdown: control_plane.shutdown.clone(),
        own: OwnListeners(vec![own]),
    };
    let server = GrpcServer::new("control-plane")
        .concurrency_limit(MAX_CONCURRENT_CALLS)
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
        );
    let health_task = tokio::spawn({
        let reporter = server.health();
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
                    (predictor_server::SERVICE_NAME, front),
                    (inference_server::SERVICE_NAME, front),
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
    let stopping = control_plane.shutdown.clone();
    let result = server
        .serve(listener, async move {
            shutdown.await;
            // End the registration streams first: graceful shutdown waits
            // for them.
            stopping.cancel();
        })
        .await;
    health_task.abort();
    Ok(result?)
}
