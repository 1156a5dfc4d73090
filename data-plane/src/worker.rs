//! The worker: the catalog from the model-store, the disk cache, the swap
//! table, and the rules that tie them: which version a request gets, when a
//! version is loaded (eagerly, or on first use with a cache limit), and what
//! happens when a load fails (the previous instance keeps serving; the load
//! is retried with backoff).

mod reconcile;
mod resolve;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotswap_model_store::storage::{Storage, StorageOptions};
use hotswap_proto::v1::{Api, ModelVersion, PredictorType};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backend;
use crate::cache::{DiskCache, describe};
use crate::catalog::{Catalog, VersionKey};
use crate::stats::Stats;
use crate::subscription::SubscriptionStats;
use crate::table::{Failure, Loaded, Table, TableStats};
use crate::tensor::Tensor;
use crate::{Error, lock, subscription};

pub use resolve::ModelRef;

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
}

pub struct Worker {
    catalog: watch::Receiver<Arc<Catalog>>,
    table: Table,
    cache: DiskCache,
    stats: Stats,
    subscription: Arc<SubscriptionStats>,
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
                    .map_err(|e| Error::Server(format!("cache folder: {e}")))?;
                let dir = tmp.path().to_path_buf();
                (Some(tmp), dir)
            }
        };
        let storage = Arc::new(Storage::new(config.storage));
        let cache = DiskCache::new(cache_dir.clone(), storage)
            .map_err(|e| Error::Server(format!("cache folder {}: {e}", cache_dir.display())))?;
        let (tx, rx) = watch::channel(Arc::new(Catalog::default()));
        let shutdown = CancellationToken::new();
        let worker = Arc::new(Worker {
            catalog: rx,
            table: Table::default(),
            cache,
            stats: Stats::default(),
            subscription: Arc::default(),
            shutdown: shutdown.clone(),
            _cache_tmp: cache_tmp,
        });
        tokio::spawn(subscription::run(
            config.model_store,
            tx,
            worker.subscription.clone(),
            shutdown,
        ));
        tokio::spawn(reconcile::run(worker.clone()));
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

    /// Stops the subscription and background loads.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }

    /// The instance to serve `target` with: the published one (which may
    /// still be an older content of the same version while its update
    /// loads), else a load now. Concurrent callers share one load.
    pub async fn acquire(&self, target: &ModelVersion) -> Result<Arc<Loaded>, Error> {
        let slot = self.table.slot(&VersionKey::of(target));
        slot.touch(self.table.tick());
        if let Some(loaded) = slot.current.load_full() {
            return Ok(loaded);
        }
        self.load(target).await
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
        let result = match loaded.model.signature().check_inputs(inputs) {
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
            return Err(Error::Load {
                what: describe(target),
                message: format!(
                    "{} (retrying in {}s)",
                    f.message,
                    f.retry_at
                        .saturating_duration_since(Instant::now())
                        .as_secs()
                        + 1
                ),
            });
        }
        let api = self
            .catalog()
            .apis
            .get(&target.api)
            .cloned()
            .unwrap_or_default();
        let result = self.download_and_load(&api, target).await;
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
                tracing::warn!(version = %key, error = %e, attempt = attempts, retry_in = ?delay,
                    serving = ?slot.current.load().as_ref().map(|l| short(&l.content_hash)),
                    "version failed to load; the previous content (if any) keeps serving");
                state.failure = Some(Failure {
                    content_hash: target.content_hash.clone(),
                    message: e.to_string(),
                    attempts,
                    retry_at: Instant::now() + delay,
                });
                Err(e)
            }
        }
    }

    async fn download_and_load(
        &self,
        api: &Api,
        target: &ModelVersion,
    ) -> Result<Arc<dyn backend::Model>, Error> {
        let key = VersionKey::of(target);
        self.make_disk_room(&key, api.disk_cache_size as usize)
            .await;
        let dir = self.cache.fetch(target).await?;
        let slot = self.table.slot(&key);
        let stale = {
            let mut state = lock(&slot.state);
            let old = state.disk.take();
            state.disk = Some((dir.clone(), target.content_hash.clone()));
            old.filter(|(old_dir, _)| *old_dir != dir)
        };
        if let Some((old_dir, _)) = stale {
            self.cache.remove(&old_dir).await;
        }
        let predictor =
            PredictorType::try_from(api.predictor_type).unwrap_or(PredictorType::Unspecified);
        let what = describe(target);
        tokio::task::spawn_blocking(move || backend::load(predictor, &dir, &what))
            .await
            .map_err(|e| Error::Load {
                what: describe(target),
                message: format!("loader panicked: {e}"),
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

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

impl Worker {
    /// Whether a request for `target` would be served without an error now:
    /// loaded, or loadable on demand and not in a failure backoff.
    pub fn servable(&self, target: &ModelVersion) -> bool {
        let on_demand = self
            .catalog()
            .apis
            .get(&target.api)
            .is_some_and(|a| a.cache_size > 0);
        match self.table.get(&VersionKey::of(target)) {
            Some(slot) if slot.current.load().is_some() => true,
            Some(slot) => {
                on_demand
                    && !lock(&slot.state).failure.as_ref().is_some_and(|f| {
                        f.content_hash == target.content_hash && Instant::now() < f.retry_at
                    })
            }
            None => on_demand,
        }
    }
}
