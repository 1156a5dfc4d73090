//! Serving the control plane on two already-bound listeners: the front
//! door (Predict, the Open Inference Protocol) for clients, and the
//! internal one (worker registration, the operators' `ListWorkers`) for the
//! other planes, each over the shared server builder. Registration is
//! never served where clients call: a client that could register would
//! receive other clients' calls.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hotswap_common::GrpcServer;
use hotswap_common::catalog::Catalog;
use hotswap_common::subscription;
use hotswap_common::transport::grpc::{GrpcInference, GrpcPredictor};
use hotswap_common::trust::{ClientTrust, ClusterCredentials};
use hotswap_proto::inference::grpc_inference_service_server::{
    self as inference_server, GrpcInferenceServiceServer,
};
use hotswap_proto::limit::RequestLimit;
use hotswap_proto::v1::control_plane_server::{self, ControlPlaneServer};
use hotswap_proto::v1::predictor_server::{self, PredictorServer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::sync::WaitForCancellationFutureOwned;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::Error;
use crate::forwarding::Forwarding;
use crate::front::FrontDoor;
use crate::grpc::GrpcControlPlane;
use crate::own::OwnListeners;
use crate::register::Registrar;
use crate::registry::{Registry, RegistryLimits};
use crate::router::Router;
use crate::worker::Connect;
use crate::worker::grpc::GrpcConnector;

/// The gRPC name of the control plane's own service, for health checks.
pub const SERVICE_NAME: &str = control_plane_server::SERVICE_NAME;

/// Largest message (or HTTP body) the front door decodes, for a request
/// limit of `limit`: room for names and shapes, and for JSON, whose text
/// may be longer than the tensors it holds. Each input is then checked
/// against the limit itself, as a worker checks it.
fn max_message_bytes(limit: RequestLimit) -> usize {
    limit.0.saturating_mul(2).max(4 << 20)
}

/// Calls handled at once; more wait before anything of theirs is decoded.
/// Bounds the memory requests in flight take (each up to
/// [`max_message_bytes`]), as a worker bounds its own.
const MAX_CONCURRENT_CALLS: usize = 256;

/// What a control plane is started with (the binary builds it from flags
/// and the environment).
#[derive(Debug, Clone, Default)]
pub struct ControlPlaneConfig {
    /// The limit on one request's payload: the workers' own
    /// (`--max-request-bytes`), so that a call a worker would refuse for
    /// its size is refused here instead, before it is forwarded.
    pub request_limit: RequestLimit,
    /// host:port (or URI) of the model-store.
    pub model_store: String,
    /// Bounds on the workers registered and what they report.
    pub limits: RegistryLimits,
    /// What the model-store and workers trust this control plane by, and
    /// what it trusts them (and registering workers) by.
    pub cluster: ClusterCredentials,
    /// TLS and bearer tokens at the front door.
    pub clients: ClientTrust,
    /// With TLS, the name workers' certificates must carry [default: the
    /// host of the address each worker advertises].
    pub worker_tls_name: Option<String>,
}

/// The control plane's two listeners.
pub struct Listeners {
    /// Clients: Predict and the Open Inference Protocol.
    pub front: TcpListener,
    /// The other planes: worker registration and `ListWorkers`.
    pub internal: TcpListener,
}

/// A running control plane's shared state, for callers that also inspect it.
#[derive(Clone)]
pub struct ControlPlane {
    /// The registered workers.
    pub registry: Arc<Registry>,
    catalog: watch::Receiver<Arc<Catalog>>,
    shutdown: CancellationToken,
    cluster: ClusterCredentials,
    clients: ClientTrust,
    request_limit: RequestLimit,
}

impl ControlPlane {
    /// Starts the catalog subscription and the registry sweeper; workers
    /// are called over gRPC.
    pub fn start(config: ControlPlaneConfig) -> ControlPlane {
        let connector = GrpcConnector {
            cluster: config.cluster.clone(),
            worker_tls_name: config.worker_tls_name.clone(),
        };
        ControlPlane::start_with(config, Arc::new(connector))
    }

    /// As [`ControlPlane::start`], reaching workers through `connector`.
    pub fn start_with(config: ControlPlaneConfig, connector: Arc<dyn Connect>) -> ControlPlane {
        let (tx, catalog) = watch::channel(Arc::new(Catalog::default()));
        let shutdown = CancellationToken::new();
        tokio::spawn(subscription::run(
            config.model_store,
            config.cluster.clone(),
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
            cluster: config.cluster,
            clients: config.clients,
            request_limit: config.request_limit,
        }
    }

    /// The catalog as last received from the model-store.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// Stops the control plane: its catalog subscription, its registry
    /// sweeper, and any server serving it (as its `shutdown` resolving would).
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }
}

/// Starts a control plane and serves it until `shutdown` resolves.
pub async fn serve(
    config: ControlPlaneConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let control_plane = ControlPlane::start(config);
    let result = serve_control_plane(control_plane.clone(), listeners, shutdown).await;
    control_plane.shut_down();
    result
}

/// As [`serve`], for a control plane the caller started. Health is
/// NOT_SERVING until the model index has arrived.
pub async fn serve_control_plane(
    control_plane: ControlPlane,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let bound = |l: &TcpListener| {
        l.local_addr()
            .map_err(|e| Error::Server(hotswap_common::ServerError::Listener(e)))
    };
    let own = OwnListeners(vec![bound(&listeners.front)?, bound(&listeners.internal)?]);
    let front = FrontDoor {
        catalog: control_plane.catalog.clone(),
        registry: control_plane.registry.clone(),
        router: Arc::new(Router::new(control_plane.registry.clone())),
        limit: control_plane.request_limit,
    };
    let max_message = max_message_bytes(control_plane.request_limit);
    let registrar = Registrar {
        registry: control_plane.registry.clone(),
        shutdown: control_plane.shutdown.clone(),
        own,
    };
    let front_server = GrpcServer::new("control-plane")
        .guard(control_plane.clients.guard())
        .concurrency_limit(MAX_CONCURRENT_CALLS)
        .body_limit(max_message)
        // Predict and ModelInfer are forwarded as bytes (`forwarding.rs`);
        // the generated servers serve the other methods.
        .add_service(Forwarding::new(
            front.clone(),
            PredictorServer::new(GrpcPredictor(front.clone()))
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(usize::MAX),
            max_message,
        ))
        .add_service(Forwarding::new(
            front.clone(),
            GrpcInferenceServiceServer::new(GrpcInference(front.clone()))
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(usize::MAX),
            max_message,
        ))
        .http(hotswap_common::transport::http::router(
            Arc::new(front.clone()),
            Arc::new(front),
            max_message,
            control_plane.request_limit,
        ));
    let internal_server = GrpcServer::new("control-plane-internal")
        .guard(control_plane.cluster.internal())
        .add_service(ControlPlaneServer::new(GrpcControlPlane(registrar)));
    let health_task = tokio::spawn(report_health(
        control_plane.clone(),
        front_server.health(),
        internal_server.health(),
    ));
    // `stopping` is cancelled when `shutdown` resolves or either server
    // ends (a listener that failed stops the other too); it also ends the
    // registration streams, which graceful shutdown waits for.
    let stopping = control_plane.shutdown.clone();
    let stopped = || -> WaitForCancellationFutureOwned { stopping.clone().cancelled_owned() };
    let (front_result, internal_result, ()) = tokio::join!(
        async {
            let result = front_server.serve(listeners.front, stopped()).await;
            stopping.cancel();
            result
        },
        async {
            let result = internal_server.serve(listeners.internal, stopped()).await;
            stopping.cancel();
            result
        },
        async {
            tokio::select! {
                () = shutdown => stopping.cancel(),
                () = stopping.cancelled() => {}
            }
        },
    );
    health_task.abort();
    front_result?;
    internal_result?;
    Ok(())
}

/// Front door: "" once the catalog is here, Predict and the Open Inference
/// Protocol once a worker is registered too. Internal: once the catalog is
/// here (workers must be able to register before any is).
async fn report_health(
    control_plane: ControlPlane,
    front: HealthReporter,
    internal: HealthReporter,
) {
    let mut updates = control_plane.catalog.clone();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        let complete = updates.borrow_and_update().complete;
        let routable = complete && control_plane.registry.any_ready();
        let statuses = [
            (&front, "", complete),
            (&front, predictor_server::SERVICE_NAME, routable),
            (&front, inference_server::SERVICE_NAME, routable),
            (&internal, "", complete),
            (&internal, SERVICE_NAME, complete),
        ];
        for (reporter, name, up) in statuses {
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
