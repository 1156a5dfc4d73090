//! Serving the model-store on an already-bound listener, over the shared
//! server builder.

use std::future::Future;

use hotswap_common::GrpcServer;
use hotswap_common::trust::Guard;
use hotswap_proto::v1::model_store_server::{self, ModelStoreServer};
use tokio::net::TcpListener;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::Error;
use crate::grpc::GrpcModelStore;
use crate::poller::StoreHealth;
use crate::service::{ModelStore, ModelStoreConfig};

/// The gRPC service name, also the health-check name that reports whether
/// every bucket answered its last listing.
pub const SERVICE_NAME: &str = model_store_server::SERVICE_NAME;

/// Runs the model-store until `shutdown` resolves. Health reports
/// NOT_SERVING until the first full index; then `""` is SERVING and
/// `hotswap.v1.ModelStore` follows the health of the buckets.
pub async fn serve(
    config: ModelStoreConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let guard = config.cluster.internal();
    let store = ModelStore::start(config);
    serve_store(store, guard, listener, shutdown).await
}

/// As [`serve`], for a store the caller started (and may also query).
pub async fn serve_store(
    store: ModelStore,
    guard: Guard,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let server = GrpcServer::new("model-store")
        .guard(guard)
        .add_service(ModelStoreServer::new(GrpcModelStore(store.clone())));
    let health_task = tokio::spawn(report_health(store.health(), server.health()));
    let result = server
        .serve(listener, async move {
            shutdown.await;
            // End the Watch streams first: graceful shutdown waits for them.
            store.shut_down();
        })
        .await;
    health_task.abort();
    Ok(result?)
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
