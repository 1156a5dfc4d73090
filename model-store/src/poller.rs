//! One polling task per source: list, turn the listing into versions, apply
//! it to the index. A source that fails keeps its last good listing in the
//! index and is retried with backoff; the service never exits over a bucket.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hotswap_proto::v1::{EventKind, SourceStatus, VersionState, WatchResponse, watch_response};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use hotswap_common::backoff;
use hotswap_proto::error::{Report, report};
use hotswap_storage::{Folder, KeyCheck, ObjectMeta, Storage, check_key};

use crate::config::{ApiConfig, SourceConfig};
use crate::index::{Index, Scope};
use crate::{layout, lock};

/// Why one poll of a source failed; the source keeps its last listing.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error(transparent)]
    Storage(#[from] hotswap_storage::Error),
    #[error("listing took longer than {0:?}")]
    Timeout(Duration),
    #[error("indexing task failed")]
    Indexing(#[source] tokio::task::JoinError),
}

/// How each source is listed.
#[derive(Debug, Clone)]
pub struct PollSettings {
    /// Time between two listings of a source.
    pub interval: Duration,
    /// How long a version's files must stay unchanged before it is published.
    pub settle: Duration,
    /// A listing that takes longer fails (and is retried with backoff), so a
    /// hung bucket cannot stall its source forever.
    pub list_timeout: Duration,
    /// The longest wait between retries of a failing source.
    pub max_backoff: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            interval: Duration::from_secs(1),
            settle: Duration::from_secs(1),
            list_timeout: Duration::from_secs(120),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// What health checks report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// Every source has been indexed once (or has failed and is retrying).
    pub ready: bool,
    /// Every source's latest listing succeeded.
    pub sources_healthy: bool,
}

/// Starts one task per source. Dropping the returned handles stops them.
pub fn spawn(
    apis: &[Arc<ApiConfig>],
    storage: Arc<Storage>,
    index: Arc<Mutex<Index>>,
    settings: PollSettings,
    health: watch::Sender<StoreHealth>,
) -> Vec<JoinHandle<()>> {
    let sources: Vec<(Arc<ApiConfig>, usize, SourceConfig)> = apis
        .iter()
        .flat_map(|api| {
            api.sources()
                .into_iter()
                .enumerate()
                .map(move |(i, s)| (api.clone(), i, s))
        })
        .collect();
    let waiting = Arc::new(AtomicUsize::new(sources.len()));
    if sources.is_empty() {
        health.send_replace(StoreHealth {
            ready: true,
            sources_healthy: true,
        });
    }
    let health = Arc::new(health);
    sources
        .into_iter()
        .map(|(api, position, source)| {
            let task = SourceTask {
                api,
                position,
                source,
                storage: storage.clone(),
                index: index.clone(),
                settings: settings.clone(),
                health: health.clone(),
                waiting: waiting.clone(),
                warned: HashSet::new(),
            };
            tokio::spawn(task.run())
        })
        .collect()
}

struct SourceTask {
    api: Arc<ApiConfig>,
    /// Position among the API's sources (for its status).
    position: usize,
    source: SourceConfig,
    storage: Arc<Storage>,
    index: Arc<Mutex<Index>>,
    settings: PollSettings,
    health: Arc<watch::Sender<StoreHealth>>,
    /// Sources whose first index is not complete yet.
    waiting: Arc<AtomicUsize>,
    /// Unsafe keys already warned about, so a bad key warns once, not every poll.
    warned: HashSet<String>,
}

impl SourceTask {
    async fn run(mut self) {
        let mut first_success: Option<Instant> = None;
        let mut initial_done = false;
        let mut counted = false;
        let mut failures: u32 = 0;
        let mut backoff = backoff::delays(self.settings.interval, self.settings.max_backoff);
        let mut folder: Option<Folder> = None;
        loop {
            let started = Instant::now();
            let outcome = self.poll_once(&mut folder, started).await;
            let next = match outcome {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(api = %self.api.name, location = %self.source.location, "source reachable again");
                    }
                    failures = 0;
                    backoff.reset();
                    let first = *first_success.get_or_insert(started);
                    if started.duration_since(first) >= self.settings.settle {
                        initial_done = true;
                        // Listed, and what it held at the first listing has
                        // settled: the source is known (told once).
                        let listed =
                            lock(&self.index).mark_listed(&self.api.name, self.position as u32);
                        if let Some(event) = listed {
                            tracing::info!(api = %self.api.name, location = %self.source.location, revision = event.revision, "source listed");
                        }
                    }
                    started + self.settings.interval
                }
                Err(e) => {
                    failures += 1;
                    // A failed first attempt still completes the first
                    // index: the store serves what it has and keeps trying.
                    // The source stays unknown (not empty) to subscribers
                    // until a listing succeeds.
                    initial_done = true;
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        api = %self.api.name,
                        location = %self.source.location,
                        failures,
                        retry_in = ?delay,
                        error = %Report(&e),
                        "listing failed; keeping the versions last seen there"
                    );
                    self.record(Err((report(&e), failures)));
                    Instant::now() + delay
                }
            };
            if initial_done && !counted {
                // Each source counts once; zero waiting means ready.
                counted = true;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
            }
            self.report_health();
            tokio::time::sleep_until(next.into()).await;
        }
    }

    /// Lists the source and applies the listing.
    async fn poll_once(
        &mut self,
        folder: &mut Option<Folder>,
        started: Instant,
    ) -> Result<(), PollError> {
        if folder.is_none() {
            *folder = Some(self.storage.open(&self.source.location).await?);
        }
        let listing = match tokio::time::timeout(
            self.settings.list_timeout,
            folder.as_ref().expect("opened above").list(),
        )
        .await
        {
            Ok(Ok(listing)) => listing,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(PollError::Timeout(self.settings.list_timeout)),
        };
        let listing = self.safe_keys(listing);
        let (api, source) = (self.api.clone(), self.source.clone());
        // Grouping and hashing tens of thousands of files is CPU work.
        let versions = tokio::task::spawn_blocking(move || {
            layout::versions(&api.name, api.layout(), &source, &listing)
        })
        .await
        .map_err(PollError::Indexing)?;
        let scope = match &self.source.model {
            Some(model) => Scope::Model(model),
            None => Scope::Api,
        };
        let events = lock(&self.index).apply(
            &self.api.name,
            scope,
            versions,
            started,
            self.settings.settle,
        );
        for event in &events {
            log_event(event);
        }
        self.record(Ok(started.elapsed()));
        Ok(())
    }

    /// Drops keys that could escape a folder on a subscriber's disk.
    fn safe_keys(&mut self, listing: Vec<ObjectMeta>) -> Vec<ObjectMeta> {
        listing
            .into_iter()
            .filter(|object| match check_key(&object.key) {
                KeyCheck::File => true,
                KeyCheck::FolderMarker => false,
                KeyCheck::Unsafe(reason) => {
                    if self.warned.insert(object.key.clone()) {
                        tracing::warn!(
                            api = %self.api.name,
                            location = %self.source.location,
                            key = ?object.key,
                            reason,
                            "ignoring object key"
                        );
                    }
                    false
                }
            })
            .collect()
    }

    /// Records a poll's outcome: how long it took, or the error and the
    /// number of failures in a row.
    fn record(&self, outcome: Result<Duration, (String, u32)>) {
        let source = [
            ("api", self.api.name.clone()),
            ("source", self.source.location.to_string()),
        ];
        match &outcome {
            Ok(took) => metrics::histogram!("hotswap_store_poll_duration_seconds", &source)
                .record(took.as_secs_f64()),
            Err(_) => metrics::counter!("hotswap_store_poll_errors_total", &source).increment(1),
        }
        let mut index = lock(&self.index);
        let previous = index
            .source_status(&self.api.name, self.position)
            .cloned()
            .unwrap_or_default();
        let status = match outcome {
            Ok(took) => SourceStatus {
                healthy: true,
                last_success: Some(SystemTime::now().into()),
                last_poll_duration: prost_types::Duration::try_from(took).ok(),
                ..SourceStatus::default()
            },
            Err((last_error, consecutive_failures)) => SourceStatus {
                healthy: false,
                last_error,
                consecutive_failures,
                ..previous
            },
        };
        index.set_source_status(
            &self.api.name,
            self.position,
            SourceStatus {
                location: self.source.location.to_string(),
                ..status
            },
        );
    }

    fn report_health(&self) {
        let sources_healthy = lock(&self.index).sources_healthy();
        let ready = self.waiting.load(Ordering::SeqCst) == 0;
        self.health.send_if_modified(|h| {
            let new = StoreHealth {
                ready,
                sources_healthy,
            };
            std::mem::replace(h, new) != new
        });
    }
}

fn log_event(event: &WatchResponse) {
    let Some(watch_response::Kind::Event(e)) = &event.kind else {
        return;
    };
    let Some(v) = &e.version else { return };
    let kind = EventKind::try_from(e.kind)
        .unwrap_or_default()
        .as_str_name();
    let state = VersionState::try_from(v.state)
        .unwrap_or_default()
        .as_str_name();
    tracing::info!(
        revision = event.revision,
        api = %v.api,
        model = %v.model,
        version = v.version,
        kind,
        state,
        reason = %v.reason,
        files = v.files.len(),
        "published"
    );
}
