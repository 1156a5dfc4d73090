//! The Watch subscription: keeps a catalog (a worker's, a control plane's)
//! in step with the model-store, reconnecting with backoff and resuming from
//! the last revision applied. While the model-store is away, the catalog
//! stays as it was, so its holder keeps serving what it has.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hotswap_proto::v1::model_store_client::ModelStoreClient;
use hotswap_proto::v1::{WatchRequest, watch_response};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Applied, Catalog, CatalogBuilder, Pins};
use crate::client::{AddressError, PeerStatus, WithToken, endpoint};
use crate::reconnect::{self, Progress, Session};
use crate::trust::ClusterCredentials;
use hotswap_proto::error::Report;

/// Why a connection to the model-store ended; the subscription reconnects.
#[derive(Debug, thiserror::Error)]
enum Interrupted {
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error("connect")]
    Connect(#[source] tonic::transport::Error),
    #[error("watch")]
    Watch(#[source] PeerStatus),
    #[error("stream")]
    Stream(#[source] PeerStatus),
    #[error("stream ended")]
    Ended,
    #[error("out-of-order message; resubscribing for a snapshot")]
    OutOfOrder,
}

/// Counters of the subscription, for operators and tests.
#[derive(Debug, Default)]
pub struct SubscriptionStats {
    /// Watch streams opened.
    pub connects: AtomicU64,
    /// Complete snapshots applied.
    pub snapshots: AtomicU64,
    /// Events applied.
    pub events: AtomicU64,
}

impl SubscriptionStats {
    /// Streams opened, snapshots applied and events applied, so far.
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.connects.load(Ordering::Relaxed),
            self.snapshots.load(Ordering::Relaxed),
            self.events.load(Ordering::Relaxed),
        )
    }
}

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Runs until `shutdown`; publishes every complete state of the catalog.
pub async fn run(
    model_store: String,
    cluster: ClusterCredentials,
    catalog: watch::Sender<Arc<Catalog>>,
    stats: Arc<SubscriptionStats>,
    shutdown: CancellationToken,
) {
    let follow = Follow {
        model_store,
        cluster,
        catalog,
        stats,
        resume: true,
        pins: Pins::default(),
    };
    let delays = reconnect::Delays {
        min: BACKOFF_START,
        max: BACKOFF_MAX,
    };
    reconnect::run(follow, delays, shutdown).await;
}

/// The subscription's state across connections.
struct Follow {
    model_store: String,
    cluster: ClusterCredentials,
    catalog: watch::Sender<Arc<Catalog>>,
    stats: Arc<SubscriptionStats>,
    /// Cleared to resubscribe for a fresh snapshot.
    resume: bool,
    /// Pinned APIs, as first seen.
    pins: Pins,
}

impl Session for Follow {
    type Error = Interrupted;

    async fn run(&mut self, progress: &Progress) -> Result<(), Interrupted> {
        follow(self, progress).await
    }

    fn interrupted(&self, e: &Interrupted, delay: Duration) {
        tracing::warn!(model_store = %self.model_store, error = %Report(e), retry_in = ?delay, "model-store subscription interrupted");
    }
}

/// One connection: resumes from what the catalog holds (unless `resume` was
/// cleared: then from a fresh snapshot), applies messages until the stream
/// ends. Marks progress once messages flow. The published catalog keeps
/// pinned APIs as `pins` holds them; their versions in `working` may then
/// drift from the model-store's, which is harmless since they are replaced
/// on every publish.
async fn follow(f: &mut Follow, progress: &Progress) -> Result<(), Interrupted> {
    let Follow {
        model_store,
        cluster,
        catalog,
        stats,
        resume,
        pins,
    } = f;
    let channel = endpoint(model_store, cluster)?
        .connect_timeout(Duration::from_secs(2))
        // Finds a model-store whose host vanished without closing the
        // connection.
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(20))
        .connect()
        .await
        .map_err(Interrupted::Connect)?;
    let mut client =
        ModelStoreClient::new(WithToken::new(channel, cluster)).max_decoding_message_size(64 << 20);
    let (incarnation, after_revision) = {
        let c = catalog.borrow();
        if c.complete && *resume {
            (c.incarnation.clone(), c.revision)
        } else {
            (String::new(), 0)
        }
    };
    let mut stream = client
        .watch(WatchRequest {
            incarnation,
            after_revision,
        })
        .await
        .map_err(|s| Interrupted::Watch(PeerStatus(s)))?
        .into_inner();
    stats.connects.fetch_add(1, Ordering::Relaxed);
    let mut builder = CatalogBuilder::default();
    let mut working: Catalog = (**catalog.borrow()).clone();
    loop {
        let msg = stream
            .message()
            .await
            .map_err(|s| Interrupted::Stream(PeerStatus(s)))?;
        let Some(msg) = msg else {
            return Err(Interrupted::Ended);
        };
        progress.made();
        let is_event = matches!(msg.kind, Some(watch_response::Kind::Event(_)));
        match builder.apply(&mut working, msg) {
            Applied::Pending => {}
            Applied::Changed => {
                *resume = true;
                let counter = if is_event {
                    &stats.events
                } else {
                    &stats.snapshots
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(revision = working.revision, "catalog updated");
                catalog.send_replace(Arc::new(pins.apply(working.clone())));
            }
            Applied::OutOfOrder => {
                // Start over from a snapshot rather than apply a gap; the
                // old catalog keeps serving until the snapshot lands.
                *resume = false;
                return Err(Interrupted::OutOfOrder);
            }
        }
    }
}
