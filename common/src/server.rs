//! The one way a hotswap service is served over gRPC: an already-bound
//! listener in (TCP_NODELAY on every accepted socket), HTTP/2 keepalives,
//! the shared tower stack, gRPC health and reflection for exactly the
//! services added, and a graceful shutdown bounded by a grace period. A
//! service crate adds its services and drives its health; everything else
//! about serving lives here, once.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;
use tower::Service;

use crate::context::CallContextLayer;
use crate::trust::Guard;

mod body;
mod gate;
mod limit;
mod listen;
mod tls;

pub use body::{BODY_LIMIT, BODY_TIMEOUT};
pub use listen::{ACCEPT_BACKLOG, listen};

pub use tls::TlsError;

/// How long a stopping server waits for clients to finish and hang up.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// HTTP/2 pings on idle connections: long-lived streams (Watch,
/// registration) find a peer whose host vanished without closing the
/// connection.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a server did not start, or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listener's address could not be read.
    #[error("listener")]
    Listener(#[source] std::io::Error),
    /// The reflection service could not be built from the descriptors.
    #[error("reflection")]
    Reflection(#[source] tonic_reflection::server::Error),
    /// The listener's TLS material is unusable.
    #[error("TLS for the listener on {addr}")]
    Tls {
        /// The listener's address.
        addr: SocketAddr,
        /// What is wrong with the material.
        #[source]
        source: TlsError,
    },
    /// Serving failed.
    #[error("grpc server on {addr}")]
    Transport {
        /// The listener's address.
        addr: SocketAddr,
        /// tonic's error.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Health checks and reflection: never held back by the concurrency limit
/// and never asked for credentials (probes carry none).
const PROBES: [&str; 4] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/v2/health/",
];

fn is_probe(path: &str) -> bool {
    PROBES.iter().any(|p| path.starts_with(p))
}

/// A gRPC server being assembled.
pub struct GrpcServer {
    /// Names the service in its log lines and spans ("data-plane", ...).
    name: &'static str,
    routes: RoutesBuilder,
    /// What reflection advertises: the services added, and health.
    names: Vec<&'static str>,
    health: HealthReporter,
    concurrency_limit: Option<usize>,
    body_limit: usize,
    body_timeout: Duration,
    guard: Guard,
    /// HTTP routes served on the same port (HTTP/1.1 and HTTP/2), beside
    /// gRPC.
    http: Option<axum::Router>,
}

impl GrpcServer {
    /// A server with gRPC health and nothing else yet; `name` names it in
    /// its log lines, spans and metrics ("data-plane", ...).
    pub fn new(name: &'static str) -> GrpcServer {
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut server = GrpcServer {
            name,
            routes: RoutesBuilder::default(),
            names: Vec::new(),
            health,
            concurrency_limit: None,
            body_limit: BODY_LIMIT,
            body_timeout: BODY_TIMEOUT,
            guard: Guard::open(),
            http: None,
        };
        server.routes.add_service(health_service);
        server.names.push("grpc.health.v1.Health");
        server
    }

    /// The server's gRPC health: the service sets each name's status as its
    /// readiness changes (tonic-health answers SERVING for "" until told
    /// otherwise, so services set it at once).
    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Serves a gRPC service (a generated `...Server`), which reflection
    /// then advertises.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: Service<
                tonic::codegen::http::Request<Body>,
                Error = Infallible,
                Response = tonic::codegen::http::Response<Body>,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Calls handled at once; more wait in the queue, once their bodies
    /// have arrived and before anything of theirs is decoded (bounds the
    /// memory decoded requests take). Health checks and reflection are
    /// never held back (`server/limit.rs`).
    pub fn concurrency_limit(mut self, limit: usize) -> Self {
        self.concurrency_limit = Some(limit);
        self
    }

    /// Largest request body in bytes (a gRPC message, or an HTTP body):
    /// one declared larger is refused before it is read, one that grows
    /// larger as soon as it does (413, or RESOURCE_EXHAUSTED to gRPC).
    /// [`BODY_LIMIT`] unless set.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long a request body may take to arrive (408, or
    /// DEADLINE_EXCEEDED to gRPC); [`BODY_TIMEOUT`] unless set.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Serves `router` on the same listener: HTTP/1.1 is accepted too, and
    /// requests that are not gRPC go to it. The server's layers (credentials,
    /// the concurrency limit, the request log) apply to both.
    pub fn http(mut self, router: axum::Router) -> Self {
        self.http = Some(router);
        self
    }

    /// Who may call: TLS on the listener, and the credentials each call
    /// must carry (`trust.rs`). Open by default.
    pub fn guard(mut self, guard: Guard) -> Self {
        self.guard = guard;
        self
    }

    /// Serves until `shutdown` resolves, then stops taking calls and waits
    /// at most [`SHUTDOWN_GRACE`] for those running. A service that must do
    /// something first at shutdown (end its streams, leave a registry) does
    /// it inside `shutdown`.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let addr = listener.local_addr().map_err(ServerError::Listener)?;
        self.routes.add_service(
            reflection(&self.names)
                .build_v1()
                .map_err(ServerError::Reflection)?,
        );
        // v1alpha too: grpcurl and older clients only speak that one.
        self.routes.add_service(
            reflection(&self.names)
                .build_v1alpha()
                .map_err(ServerError::Reflection)?,
        );
        // Certificates and keys are parsed here: a bad one stops the start.
        let acceptor = match &self.guard.tls {
            Some(t) => Some(
                tls::acceptor(&t.tls, t.mutual)
                    .map_err(|source| ServerError::Tls { addr, source })?,
            ),
            None => None,
        };
        let builder = Server::builder();
        let tls = acceptor.is_some();
        let http = self.http.is_some();
        tracing::info!(%addr, tls, http, "{} listening", self.name);
        if self.guard.internal && self.guard.is_open() {
            tracing::warn!(%addr, "{}: anyone who reaches this listener may call it (no TLS, no cluster token); see docs/security.md", self.name);
        }
        // Small answers go out at once: without it, Nagle's algorithm and
        // delayed ACKs hold some of them for tens of milliseconds.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let shutdown = async move {
            shutdown.await;
            let _ = stop_tx.send(());
        };
        let router =
            builder
                .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
                .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
                // Outermost: every call counted and timed, refused ones,
                // body reads and waits in the queue included.
                .layer(crate::metrics::RequestMetricsLayer { service: self.name })
                // Each call runs in a span that continues the caller's trace,
                // and its deadline is known to the calls it makes in turn;
                // outside the request log, so its lines belong to the span.
                .layer(CallContextLayer { service: self.name })
                // One request log line per call, with its status and latency; a
                // failed call is most often the caller's mistake, so WARN.
                .layer(tower_http::trace::TraceLayer::new_for_grpc().on_failure(
                    tower_http::trace::DefaultOnFailure::new().level(tracing::Level::WARN),
                ))
                // Inside the request log, so refused calls are logged; before
                // the body is read, so a caller without credentials costs
                // no more than its headers.
                .layer(gate::GateLayer(self.guard.gate.clone()))
                // The body arrives whole, within its limit and deadline,
                // before the call takes a slot: a slow sender holds only
                // its own connection.
                .layer(body::BodyFirstLayer::new(
                    self.body_limit,
                    self.body_timeout,
                ))
                // Innermost: calls beyond the limit wait here, bodies in
                // hand, before anything of theirs is decoded.
                .layer(tower::util::option_layer(
                    self.concurrency_limit.map(limit::LimitLayer::new),
                ))
                .accept_http1(http)
                .add_routes(routes(self.routes, self.http));
        let served = match acceptor {
            Some(acceptor) => {
                let incoming = tls::incoming(incoming, acceptor);
                with_grace(
                    router.serve_with_incoming_shutdown(incoming, shutdown),
                    stop_rx,
                )
                .await
            }
            None => {
                with_grace(
                    router.serve_with_incoming_shutdown(incoming, shutdown),
                    stop_rx,
                )
                .await
            }
        };
        served.map_err(|source| ServerError::Transport { addr, source })
    }
}

/// The gRPC services, and the HTTP routes beside them. What matches neither
/// is answered in the caller's protocol: UNIMPLEMENTED to gRPC, a 404 with
/// `{"error": ...}` to HTTP.
fn routes(grpc: RoutesBuilder, http: Option<axum::Router>) -> tonic::service::Routes {
    let Some(http) = http else {
        return grpc.routes();
    };
    let grpc = grpc.routes();
    let router =
        http.fallback_service(tower::service_fn(move |request: axum::extract::Request| {
            let grpc = grpc.clone();
            async move {
                if is_grpc(&request) {
                    let response = tower::ServiceExt::oneshot(grpc, request).await?;
                    return Ok::<_, Infallible>(response.map(axum::body::Body::new));
                }
                let message = format!(
                    "no such endpoint: {} {} (POST /<api> calls an API; the Open Inference \
                     Protocol is under /v2)",
                    request.method(),
                    request.uri().path()
                );
                Ok(axum::response::IntoResponse::into_response(http_refusal(
                    axum::http::StatusCode::NOT_FOUND,
                    &message,
                )))
            }
        }));
    tonic::service::Routes::from(router)
}

/// Whether a request speaks gRPC rather than one of the HTTP bindings.
pub(crate) fn is_grpc<B>(request: &http::Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// An HTTP refusal, as the HTTP bindings answer failures.
pub(crate) fn http_refusal(
    status: axum::http::StatusCode,
    message: &str,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    (status, axum::Json(serde_json::json!({ "error": message })))
}

/// Advertises the services this server serves, not everything the
/// descriptor sets hold.
fn reflection(names: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(hotswap_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(hotswap_proto::INFERENCE_FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for name in names {
        builder = builder.with_service_name(*name);
    }
    builder
}

/// Runs `server` to its end, but at most [`SHUTDOWN_GRACE`] after
/// `stopping` fires: graceful shutdown waits for every connection to close,
/// and a client that never closes must not keep the process alive.
async fn with_grace<E>(
    server: impl Future<Output = Result<(), E>>,
    stopping: oneshot::Receiver<()>,
) -> Result<(), E> {
    let grace = async {
        if stopping.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        () = grace => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "clients still connected after the grace period; closing anyway");
            Ok(())
        }
    }
}
