//! The worker: the catalog from the model-store, the disk cache, the swap
//! table, and the rules that tie them: which version a request gets, when a
//! version is loaded (eagerly, or on first use with a cache limit), and what
//! happens when a load fails (the previous instance keeps serving; the load
//! is retried with backoff).

mod python_apis;
mod reconcile;
mod resolve;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotswap_common::catalog::{Catalog, VersionKey};
use hotswap_common::lock;
use hotswap_common::subscription::{self, SubscriptionStats};
use hotswap_proto::error::{Report, report};
use hotswap_proto::v1::{Api, ModelVersion};
use hotswap_python::ProcessConfig;
use hotswap_storage::{Storage, StorageOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::backend::{self, LoadError, RuntimeConfig};
use crate::cache::{DiskCache, describe};
use crate::stats::Stats;
use crate::table::{Failure, Loaded, Slot, Table, TableStats};
use crate::tensor::Tensor;

pub use hotswap_common::catalog::ModelRef;
pub use python_apis::PythonState;
pub use resolve::Target;

/// First retry of a failed load; doubles per failure up to the maximum.
const RETRY_START: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// host:port (or URI) of the model-store.
    pub model_store: String,
    /// Where downloaded versions go; a fresh temporary folder when None.
    pub cache_dir: Option<PathBuf>,
    pub storage: StorageOptions,
    /// host:port (or URI) of the control plane to register with, if any.
    pub control_plane: Option<String>,
    /// host:port the control plane should call this worker on [default: the
    /// bound address; the host name when bound to all interfaces].
    pub advertise: Option<String>,
    /// How Python predictor processes are started.
    pub python: ProcessConfig,
    /// Where the inference runtimes' libraries are.
    pub runtimes: RuntimeConfig,
}

pub struct Worker {
    catalog: watch::Receiver<Arc<Catalog>>,
    pub(crate) control_plane: Option<String>,
    pub(crate) advertise: Option<String>,
    table: Table,
    cache: DiskCache,
    stats: Stats,
    subscription: Arc<SubscriptionStats>,
    /// Per API: held while a version is made room for, downloaded and
    /// loaded, so that cache evictions never delete a folder another load
    /// is reading and concurrent loads cannot overshoot the limits.
    api_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Requests running now.
    in_flight: AtomicUsize,
    python: ProcessConfig,
    runtimes: RuntimeConfig,
    python_apis: Mutex<HashMap<String, python_apis::PythonApi>>,
    shutdown: CancellationToken,
    /// Keeps the default cache folder alive (and deletes it at the end).
    _cache_tmp: Option<tempfile::TempDir>,
}

impl Worker {
    /// Starts the subscription and the reconciler; must run inside a tokio
    /// runtime.
    pub fn start(config: WorkerConfig) -> Result<Arc<Worker>, Error> {
        let (cache_tmp, cache_dir) = match config.cache_dir {
            Some(dir) => (None, dir),
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("hotswap-cache-")
                    .tempdir()
                    .map_err(|source| Error::CacheFolder {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                let dir = tmp.path().to_path_buf();
                (Some(tmp), dir)
            }
        };
        let storage = Arc::new(Storage::new(config.storage));
        let (control_plane, advertise) = (config.control_plane, config.advertise);
        let cache =
            DiskCache::new(cache_dir.clone(), storage).map_err(|source| Error::CacheFolder {
                path: cache_dir.clone(),
                source,
            })?;
        let (tx, rx) = watch::channel(Arc::new(Catalog::default()));
        let shutdown = CancellationToken::new();
        let worker = Arc::new(Worker {
            catalog: rx,
            control_plane,
            advertise,
            table: Table::default(),
            cache,
            stats: Stats::default(),
            subscription: Arc::default(),
            api_locks: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            python: config.python,
            runtimes: config.runtimes,
            python_apis: Mutex::default(),
            shutdown: shutdown.clone(),
            _cache_tmp: cache_tmp,
        });
        tokio::spawn(subscription::run(
            config.model_store,
            tx,
            worker.subscription.clone(),
            shutdown,
        ));
        tokio::spawn(reconcile::run(
            Arc::downgrade(&worker),
            worker.shutdown.clone(),
        ));
        Ok(worker)
    }

    /// The catalog as last received.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// Changes whenever the catalog does.
    pub fn catalog_updates(&self) -> watch::Receiver<Arc<Catalog>> {
        self.catalog.clone()
    }

    pub fn ready(&self) -> bool {
        self.catalog.borrow().complete
    }

    pub fn table_stats(&self) -> TableStats {
        self.table.stats()
    }

    /// Watch streams opened, snapshots applied, events applied.
    pub fn subscription_stats(&self) -> (u64, u64, u64) {
        self.subscription.get()
    }

    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    pub(crate) fn table(&self) -> &Table {
        &self.table
    }

    /// Cancelled when the worker shuts down.
    pub(crate) fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the subscription and background loads.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }

    /// The instance to serve a request with: the first candidate that is
    /// published or loads. Concurrent callers share one load per version.
    pub async fn acquire(&self, targets: Vec<Target>) -> Result<Arc<Loaded>, Error> {
        let mut last = None;
        for target in targets {
            let loaded = match target.loaded {
                Some(loaded) => Ok(loaded),
                None => self.load(&target.version).await,
            };
            match loaded {
                Ok(loaded) => {
                    if let Some(slot) = self.table.get(&loaded.key) {
                        slot.touch(self.table.tick());
                    }
                    return Ok(loaded);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NotFound("no version to serve".to_owned())))
    }

    /// Requests running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Starts loading `version` unless a load of it is running or it is in
    /// a failure backoff.
    pub(crate) fn load_in_background(self: &Arc<Self>, version: &ModelVersion) {
        let slot = self.table.slot(&VersionKey::of(version));
        {
            let mut state = lock(&slot.state);
            let waiting = state.failure.as_ref().is_some_and(|f| {
                f.content_hash == version.content_hash && Instant::now() < f.retry_at
            });
            if state.loading || waiting {
                return;
            }
            state.loading = true;
        }
        let worker = self.clone();
        let version = version.clone();
        tokio::spawn(async move {
            // Errors are logged and recorded by load().
            let _ = worker.load(&version).await;
            lock(&slot.state).loading = false;
        });
    }

    /// Runs a model on checked inputs, off the async runtime, and records
    /// statistics.
    pub async fn infer(
        &self,
        loaded: &Arc<Loaded>,
        inputs: Vec<Tensor>,
        outputs: Vec<String>,
    ) -> Result<Vec<Tensor>, Error> {
        let stats = self.stats.of(&loaded.key);
        let start = Instant::now();
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _done = InFlight(&self.in_flight);
        let checked = loaded
            .model
            .signature()
            .check_outputs(&outputs)
            .and_then(|()| loaded.model.signature().check_inputs(inputs));
        let result = match checked {
            Err(e) => Err((e, None)),
            Ok(inputs) => {
                let model = loaded.model.clone();
                let run = tokio::task::spawn_blocking(move || {
                    let t = Instant::now();
                    let r = model.infer(inputs, &outputs);
                    (r, t.elapsed())
                })
                .await;
                match run {
                    Ok((Ok(out), compute)) => Ok((out, compute)),
                    Ok((Err(e), compute)) => Err((e, Some(compute))),
                    // A backend panic fails this request only.
                    Err(e) => Err((Error::Inference(format!("backend panicked: {e}")), None)),
                }
            }
        };
        match result {
            Ok((out, compute)) => {
                stats.record(start.elapsed(), Some(compute), true);
                Ok(out)
            }
            Err((e, compute)) => {
                stats.record(start.elapsed(), compute, false);
                Err(e)
            }
        }
    }

    /// Downloads and loads `target`'s current content and publishes it,
    /// unless that content is already published or failed too recently.
    pub(crate) async fn load(&self, target: &ModelVersion) -> Result<Arc<Loaded>, Error> {
        let key = VersionKey::of(target);
        let slot = self.table.slot(&key);
        let _loading = slot.load_lock.lock().await;
        if let Some(loaded) = slot.current.load_full()
            && loaded.content_hash == target.content_hash
        {
            return Ok(loaded);
        }
        if let Some(f) = &lock(&slot.state).failure
            && f.content_hash == target.content_hash
            && Instant::now() < f.retry_at
        {
            return Err(f.error(describe(target)));
        }
        let api = self
            .catalog()
            .apis
            .get(&target.api)
            .cloned()
            .unwrap_or_default();
        let api_lock = self.api_lock(&target.api);
        let _api = api_lock.lock().await;
        // Make room first, so that memory never holds more than cache_size
        // published instances, even while this one loads.
        for e in self.table.evict_lru(&key, api.cache_size as usize) {
            tracing::info!(version = %e, "evicted from memory (cache_size)");
        }
        let result = self.download_and_load(&slot, &api, target).await;
        let mut state = lock(&slot.state);
        match result {
            Ok(model) => {
                state.failure = None;
                drop(state);
                let loaded = Arc::new(self.table.instance(
                    key.clone(),
                    target.content_hash.clone(),
                    model,
                ));
                let evicted = self
                    .table
                    .publish(&slot, loaded.clone(), api.cache_size as usize);
                tracing::info!(version = %key, hash = %short(&target.content_hash), "version loaded and published");
                for e in evicted {
                    tracing::info!(version = %e, "evicted from memory (cache_size)");
                }
                Ok(loaded)
            }
            Err(e) => {
                let attempts = match &state.failure {
                    Some(f) if f.content_hash == target.content_hash => f.attempts + 1,
                    _ => 1,
                };
                let delay = RETRY_START
                    .saturating_mul(1 << (attempts - 1).min(16))
                    .min(RETRY_MAX);
                tracing::warn!(version = %key, error = %Report(&e), attempt = attempts, retry_in = ?delay,
                    serving = ?slot.current.load().as_ref().map(|l| short(&l.content_hash)),
                    "version failed to load; the previous content (if any) keeps serving");
                state.failure = Some(Failure {
                    content_hash: target.content_hash.clone(),
                    // Without "load of <version>:", which every reader of
                    // the failure adds or does not need.
                    message: match &e {
                        Error::Load { source, .. } => report(source),
                        other => report(other),
                    },
                    precondition: matches!(e, Error::FailedPrecondition(_)),
                    attempts,
                    retry_at: Instant::now() + delay,
                });
                Err(e)
            }
        }
    }

    fn api_lock(&self, api: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.api_locks)
            .entry(api.to_owned())
            .or_default()
            .clone()
    }

    async fn download_and_load(
        &self,
        slot: &Slot,
        api: &Api,
        target: &ModelVersion,
    ) -> Result<Arc<dyn backend::Model>, Error> {
        let key = VersionKey::of(target);
        self.make_disk_room(&key, api.disk_cache_size as usize)
            .await;
        let dir = self.cache.fetch(target).await?;
        let stale = {
            let mut state = lock(&slot.state);
            let old = state.disk.take();
            state.disk = Some((dir.clone(), target.content_hash.clone()));
            old.filter(|(old_dir, _)| *old_dir != dir)
        };
        if let Some((old_dir, _)) = stale {
            self.cache.remove(&old_dir).await;
        }
        let spec = backend::LoadSpec::new(api, target);
        let what = describe(target);
        let runtimes = self.runtimes.clone();
        tokio::task::spawn_blocking(move || backend::load(&spec, &dir, &what, &runtimes))
            .await
            .map_err(|e| Error::Load {
                what: describe(target),
                source: LoadError::Panicked(e),
            })?
    }

    /// With a disk limit, deletes the least recently used cached versions of
    /// the API (those not in memory first) so that one more fits.
    async fn make_disk_room(&self, key: &VersionKey, limit: usize) {
        if limit == 0 {
            return;
        }
        let mut on_disk: Vec<_> = self
            .table
            .entries()
            .into_iter()
            .filter(|(k, s)| k.api == key.api && k != key && lock(&s.state).disk.is_some())
            .map(|(k, s)| ((s.current.load().is_some(), s.last_used()), k, s))
            .collect();
        on_disk.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        while on_disk.len() >= limit {
            let (_, victim, slot) = on_disk.remove(0);
            let dir = lock(&slot.state).disk.take();
            if let Some((dir, _)) = dir {
                self.cache.remove(&dir).await;
                tracing::info!(version = %victim, "evicted from the disk cache (disk_cache_size)");
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Counts a request as running until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

impl Worker {
    /// Whether a request for `target` would be served without an error now:
    /// loaded, or valid, loadable on demand and not in a failure backoff.
    pub fn servable(&self, target: &ModelVersion) -> bool {
        if self.published(target).is_some() {
            return true;
        }
        let on_demand = self
            .catalog()
            .apis
            .get(&target.api)
            .is_some_and(|a| a.cache_size > 0);
        on_demand && Catalog::valid(target) && !self.failed(target)
    }
}
