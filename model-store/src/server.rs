//! Serving the model-store on an already-bound listener, with gRPC health
//! and reflection.

use std::future::Future;
use std::time::Duration;

use hotswap_proto::v1::model_store_server::ModelStoreServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::Error;
use crate::grpc::GrpcModelStore;
use crate::poller::StoreHealth;
use crate::service::{ModelStore, ModelStoreConfig};

/// The gRPC service name, also the health-check name that reports whether
/// every bucket answered its last listing.
pub const SERVICE_NAME: &str = "hotswap.v1.ModelStore";

/// Runs the model-store until `shutdown` resolves. Health reports
/// NOT_SERVING until the first full index; then `""` is SERVING and
/// `hotswap.v1.ModelStore` follows the health of the buckets.
pub async fn serve(
    config: ModelStoreConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let store = ModelStore::start(config);
    serve_store(store, listener, shutdown).await
}

/// As [`serve`], for a store the caller started (and may also query).
pub async fn serve_store(
    store: ModelStore,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health_task = tokio::spawn(report_health(store.health(), reporter));
    // v1alpha too: grpcurl and older clients only speak that one.
    let reflection_v1 = reflection().build_v1().map_err(reflection_error)?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_error)?;

    let addr = listener
        .local_addr()
        .map_err(|e| Error::Server(format!("listener: {e}")))?;
    tracing::info!(%addr, "model-store listening");

    let stopping = store.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = Server::builder()
        // Watch streams live for hours: keepalives find subscribers whose
        // host vanished without closing the connection.
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        // One request log line per call, with its status and latency; a
        // failed call is most often the caller's mistake, so WARN, not ERROR.
        .layer(
            tower_http::trace::TraceLayer::new_for_grpc()
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::WARN)),
        )
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ModelStoreServer::new(GrpcModelStore(store)))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            shutdown.await;
            // End the Watch streams first: graceful shutdown waits for them.
            stopping.shut_down();
            let _ = stop_tx.send(());
        });
    let result = hotswap_proto::serving::with_grace(server, stop_rx).await;
    health_task.abort();
    result.map_err(|e| Error::Server(format!("grpc server on {addr}: {e}")))
}

async fn report_health(
    mut health: tokio::sync::watch::Receiver<StoreHealth>,
    reporter: HealthReporter,
) {
    loop {
        let h = *health.borrow_and_update();
        let overall = status(h.ready);
        let service = status(h.ready && h.sources_healthy);
        reporter.set_service_status("", overall).await;
        reporter.set_service_status(SERVICE_NAME, service).await;
        if health.changed().await.is_err() {
            return;
        }
    }
}

fn status(serving: bool) -> ServingStatus {
    if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Advertises only what this server serves: the descriptor set also holds
/// the worker's services.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(hotswap_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(SERVICE_NAME)
        .with_service_name("grpc.health.v1.Health")
}

fn reflection_error(e: tonic_reflection::server::Error) -> Error {
    Error::Server(format!("reflection: {e}"))
}
