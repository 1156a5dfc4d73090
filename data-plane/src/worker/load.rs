//! Bringing a version up on this worker: download into the disk cache,
//! load beside what serves, publish with one pointer swap, then make room.
//! A version that fails never costs another version: nothing is evicted,
//! from memory or from disk, until the new version has loaded. (A version
//! updated in place gives up its previous content's folder once the new
//! content is on disk; the previous content keeps serving from memory, and
//! no listing names it any more.) A download holds only its own version:
//! the API's lock, which serialises loads and evictions, is taken once the
//! files are on disk.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotswap_common::catalog::VersionKey;
use hotswap_common::lock;
use hotswap_proto::error::{Report, report};
use hotswap_proto::v1::{Api, ModelVersion};

use super::{Worker, short};
use crate::Error;
use crate::backend::{self, LoadError, Model};
use crate::batch::{Batcher, Batching, unbatchable};
use crate::cache::describe;
use crate::table::{Failure, Loaded, Slot};

/// First retry of a failed load; doubles per failure up to the maximum.
const RETRY_START: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

impl Worker {
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
        let _in_use = InUse::mark(&slot);
        let result = self.bring_up(&slot, &api, target).await;
        if let Err(e) = &result {
            self.record_failure(&slot, target, e);
        }
        result
    }

    async fn bring_up(
        &self,
        slot: &Slot,
        api: &Api,
        target: &ModelVersion,
    ) -> Result<Arc<Loaded>, Error> {
        let key = VersionKey::of(target);
        let mut dir = self.fetch(target).await?;
        let api_lock = self.api_lock(&target.api);
        let mut api_guard = api_lock.lock().await;
        // Disk evictions run under this lock: one that took this folder
        // before the slot was marked in use has finished deleting it by
        // now. Marked in use, the slot's folder is not taken again.
        if !tokio::fs::try_exists(&dir).await.unwrap_or(false) {
            drop(api_guard);
            dir = self.fetch(target).await?;
            api_guard = api_lock.lock().await;
        }
        let _api = api_guard;
        let stale = {
            let mut state = lock(&slot.state);
            let old = state.disk.take();
            state.disk = Some((dir.clone(), target.content_hash.clone()));
            old.filter(|(old_dir, _)| *old_dir != dir)
        };
        if let Some((old_dir, _)) = stale {
            self.cache.remove(&old_dir).await;
        }
        let spec = backend::LoadSpec {
            warmup: self.warmup,
            ..backend::LoadSpec::new(api, target)
        };
        let what = describe(target);
        let runtimes = self.runtimes.clone();
        let load_started = Instant::now();
        let loaded =
            tokio::task::spawn_blocking(move || backend::load(&spec, &dir, &what, &runtimes))
                .await
                .map_err(|e| Error::Load {
                    what: describe(target),
                    source: LoadError::Panicked(e),
                })
                .and_then(|r| r);
        let model = match loaded {
            Ok(model) => model,
            Err(e) => {
                // Over the disk limit, the version that failed leaves, not
                // one that serves.
                if self.over_disk_limit(&key.api, api.disk_cache_size as usize) {
                    let dir = lock(&slot.state).disk.take();
                    if let Some((dir, _)) = dir {
                        self.cache.remove(&dir).await;
                    }
                }
                return Err(e);
            }
        };
        lock(&slot.state).failure = None;
        let batcher = self.batcher(api, &key, &model);
        let loaded =
            Arc::new(
                self.table
                    .instance(key.clone(), target.content_hash.clone(), model, batcher),
            );
        // Room is made now that the new instance is here: memory while it
        // is published, then disk.
        let published = self
            .table
            .publish(slot, loaded.clone(), api.cache_size as usize);
        tracing::info!(version = %key, hash = %short(&target.content_hash), swap = published.swap,
            "version loaded and published");
        let labels = [("api", key.api.clone()), ("model", key.model.clone())];
        metrics::histogram!("hotswap_model_load_duration_seconds", &labels)
            .record(load_started.elapsed().as_secs_f64());
        metrics::counter!("hotswap_model_loads_total", &labels).increment(1);
        if published.swap {
            metrics::counter!("hotswap_model_swaps_total", &labels).increment(1);
        }
        for e in published.evicted {
            tracing::info!(version = %e, "evicted from memory (cache_size)");
            metrics::counter!("hotswap_model_evictions_total", "from" => "memory").increment(1);
            metrics::counter!("hotswap_model_unloads_total",
                "api" => e.api.clone(), "model" => e.model.clone(), "reason" => "evicted")
            .increment(1);
        }
        self.trim_disk(&key, api.disk_cache_size as usize).await;
        Ok(loaded)
    }

    /// The version's batching queue, when its API asks for batches
    /// (`server_side_batching`) and the model has a batch dimension.
    fn batcher(&self, api: &Api, key: &VersionKey, model: &Arc<dyn Model>) -> Option<Batcher> {
        let settings = Batching::of(api)?;
        if let Some(why) = unbatchable(model.signature()) {
            tracing::warn!(version = %key, reason = %why,
                "server_side_batching is off for this version: calls run one by one");
            return None;
        }
        Some(Batcher::start(
            model.clone(),
            settings,
            key,
            self.stats.of(key),
        ))
    }

    fn record_failure(&self, slot: &Slot, target: &ModelVersion, e: &Error) {
        let key = VersionKey::of(target);
        let mut state = lock(&slot.state);
        let attempts = match &state.failure {
            Some(f) if f.content_hash == target.content_hash => f.attempts + 1,
            _ => 1,
        };
        let delay = hotswap_common::backoff::nth(RETRY_START, RETRY_MAX, attempts);
        metrics::counter!("hotswap_model_load_failures_total",
            "api" => key.api.clone(), "model" => key.model.clone())
        .increment(1);
        tracing::warn!(version = %key, error = %Report(e), attempt = attempts, retry_in = ?delay,
            serving = ?slot.current.load().as_ref().map(|l| short(&l.content_hash)),
            "version failed to load; the previous content (if any) keeps serving");
        state.failure = Some(Failure {
            content_hash: target.content_hash.clone(),
            // Without "load of <version>:", which every reader of the
            // failure adds or does not need.
            message: match e {
                Error::Load { source, .. } => report(source),
                other => report(other),
            },
            precondition: matches!(e, Error::FailedPrecondition(_)),
            attempts,
            retry_at: Instant::now() + delay,
        });
    }

    fn api_lock(&self, api: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.api_locks)
            .entry(api.to_owned())
            .or_default()
            .clone()
    }

    /// Versions of `api` with files in the disk cache.
    fn on_disk(&self, api: &str) -> usize {
        self.table
            .entries()
            .iter()
            .filter(|(k, s)| k.api == api && lock(&s.state).disk.is_some())
            .count()
    }

    fn over_disk_limit(&self, api: &str, limit: usize) -> bool {
        limit > 0 && self.on_disk(api) > limit
    }

    /// With a disk limit, deletes cached versions of `keep`'s API beyond
    /// it, those not in memory first, then the least recently used; never
    /// `keep`, never one a load is using.
    async fn trim_disk(&self, keep: &VersionKey, limit: usize) {
        if limit == 0 {
            return;
        }
        let mut candidates: Vec<_> = self
            .table
            .entries()
            .into_iter()
            .filter(|(k, s)| {
                let state = lock(&s.state);
                k.api == keep.api && k != keep && state.disk.is_some() && !state.in_use
            })
            .map(|(k, s)| ((s.current.load().is_some(), s.last_used()), k, s))
            .collect();
        candidates.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let mut total = self.on_disk(&keep.api);
        for (_, victim, slot) in candidates {
            if total <= limit {
                break;
            }
            // Checked again as it is taken: a load may have begun since.
            let dir = {
                let mut state = lock(&slot.state);
                if state.in_use {
                    None
                } else {
                    state.disk.take()
                }
            };
            if let Some((dir, _)) = dir {
                self.cache.remove(&dir).await;
                total -= 1;
                tracing::info!(version = %victim, "evicted from the disk cache (disk_cache_size)");
                metrics::counter!("hotswap_model_evictions_total", "from" => "disk").increment(1);
            }
        }
    }
}

/// Marks a slot's files as in use by a load until dropped, so that no
/// eviction deletes the folder the load reads.
struct InUse<'a>(&'a Slot);

impl<'a> InUse<'a> {
    fn mark(slot: &'a Slot) -> InUse<'a> {
        lock(&slot.state).in_use = true;
        InUse(slot)
    }
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).in_use = false;
    }
}
