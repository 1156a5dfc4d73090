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

use super::table::{Begin, Failure, LoadGuard};
use super::{Loaded, Models, short};
use crate::Error;
use crate::backend::{self, LoadError};
use crate::cache::describe;

/// First retry of a failed load; doubles per failure up to the maximum.
const RETRY_START: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// What a request for the version `what`, whose last load failed with `f`,
/// gets: FAILED_PRECONDITION when no retry here can fix it, else UNAVAILABLE
/// saying when the next try is.
pub(crate) fn failure_error(f: &Failure, what: String) -> Error {
    if f.precondition {
        return Error::FailedPrecondition(f.message.clone());
    }
    let wait = f
        .retry_at
        .saturating_duration_since(tokio::time::Instant::now());
    Error::LoadFailed {
        what,
        message: if wait.is_zero() {
            f.message.clone()
        } else {
            format!("{} (retrying in {}s)", f.message, wait.as_secs() + 1)
        },
    }
}

impl Models {
    /// Starts loading `version` unless a load of it is running or it is in
    /// a failure backoff.
    pub fn load_in_background(self: &Arc<Self>, version: &ModelVersion) {
        let Some(mark) = self.table.begin_background(version) else {
            return;
        };
        let models = self.clone();
        let version = version.clone();
        tokio::spawn(async move {
            // Errors are logged and recorded by load().
            let _ = models.load(&version).await;
            drop(mark);
        });
    }

    /// Downloads and loads `target`'s current content and publishes it,
    /// unless that content is already published or failed too recently.
    /// Concurrent callers share one load per version.
    pub async fn load(&self, target: &ModelVersion) -> Result<Arc<Loaded>, Error> {
        let guard = match self.table.begin_load(target).await {
            Begin::Published(loaded) => return Ok(loaded),
            Begin::Failing(f) => return Err(failure_error(&f, describe(target))),
            Begin::Load(guard) => guard,
        };
        let api = self
            .catalog()
            .apis
            .get(&target.api)
            .cloned()
            .unwrap_or_default();
        match self.bring_up(&guard, &api, target).await {
            Ok(loaded) => {
                let published = guard.publish(&self.table, loaded.clone(), api.cache_size as usize);
                self.published_one(&loaded.key, &target.content_hash, published);
                self.trim_disk(&loaded.key, api.disk_cache_size as usize)
                    .await;
                Ok(loaded)
            }
            Err(e) => {
                self.record_failure(&guard, target, &e);
                Err(e)
            }
        }
    }

    /// Fetches and loads the version; the instance is not published yet.
    async fn bring_up(
        &self,
        guard: &LoadGuard,
        api: &Api,
        target: &ModelVersion,
    ) -> Result<Arc<Loaded>, Error> {
        let key = VersionKey::of(target);
        let mut dir = self.fetch(target).await?;
        let api_lock = self.api_lock(&target.api);
        let mut api_guard = api_lock.lock().await;
        // Disk evictions run under this lock: one that took this folder
        // before the load marked it in use has finished deleting it by
        // now. Marked in use, the slot's folder is not taken again.
        if !tokio::fs::try_exists(&dir).await.unwrap_or(false) {
            drop(api_guard);
            dir = self.fetch(target).await?;
            api_guard = api_lock.lock().await;
        }
        let _api = api_guard;
        if let Some(stale) = guard.set_disk(dir.clone(), &target.content_hash) {
            self.cache.remove(&stale).await;
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
                if self.over_disk_limit(&key.api, api.disk_cache_size as usize)
                    && let Some(dir) = guard.take_disk()
                {
                    self.cache.remove(&dir).await;
                }
                return Err(e);
            }
        };
        let labels = [("api", key.api.clone()), ("model", key.model.clone())];
        metrics::histogram!("hotswap_model_load_duration_seconds", &labels)
            .record(load_started.elapsed().as_secs_f64());
        Ok(Arc::new(self.table.instance(
            key,
            target.content_hash.clone(),
            model,
        )))
    }

    /// Logs and counts a publish, and what it evicted from memory.
    fn published_one(&self, key: &VersionKey, hash: &str, published: super::table::Published) {
        tracing::info!(version = %key, hash = %short(hash), swap = published.swap,
            "version loaded and published");
        let labels = [("api", key.api.clone()), ("model", key.model.clone())];
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
    }

    fn record_failure(&self, guard: &LoadGuard, target: &ModelVersion, e: &Error) {
        let key = VersionKey::of(target);
        let failure = guard.fail(
            &target.content_hash,
            // Without "load of <version>:", which every reader of the
            // failure adds or does not need.
            match e {
                Error::Load { source, .. } => report(source),
                other => report(other),
            },
            matches!(e, Error::FailedPrecondition(_)),
            |attempts| hotswap_common::backoff::nth(RETRY_START, RETRY_MAX, attempts),
        );
        metrics::counter!("hotswap_model_load_failures_total",
            "api" => key.api.clone(), "model" => key.model.clone())
        .increment(1);
        let retry_in = failure
            .retry_at
            .saturating_duration_since(tokio::time::Instant::now());
        tracing::warn!(version = %key, error = %Report(e), attempt = failure.attempts, retry_in = ?retry_in,
            serving = ?guard.serving().as_deref().map(short),
            "version failed to load; the previous content (if any) keeps serving");
    }

    fn api_lock(&self, api: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.api_locks)
            .entry(api.to_owned())
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use hotswap_proto::error::{Code, ServiceError};

    use super::*;

    fn failure(precondition: bool, wait: Duration) -> Failure {
        Failure {
            content_hash: "h".into(),
            message: "bad model".into(),
            precondition,
            attempts: 1,
            retry_at: tokio::time::Instant::now() + wait,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_version_is_unavailable_until_its_retry_unless_no_retry_can_fix_it() {
        let waiting = failure_error(&failure(false, Duration::from_secs(4)), "a/m v1".into());
        assert_eq!(waiting.code(), Code::Unavailable);
        assert_eq!(
            waiting.to_string(),
            "load of a/m v1: bad model (retrying in 5s)"
        );
        let due = failure_error(&failure(false, Duration::ZERO), "a/m v1".into());
        assert_eq!(due.to_string(), "load of a/m v1: bad model");
        let hardware = failure_error(&failure(true, Duration::from_secs(4)), "a/m v1".into());
        assert_eq!(hardware.code(), Code::FailedPrecondition);
        assert_eq!(hardware.to_string(), "bad model");
    }

    #[test]
    fn retries_back_off_from_a_second_to_a_minute() {
        let delay = |n| hotswap_common::backoff::nth(RETRY_START, RETRY_MAX, n);
        let s = Duration::from_secs;
        assert!(delay(1) >= s(1) && delay(1) < s(2), "{:?}", delay(1));
        assert!(delay(3) >= s(4), "{:?}", delay(3));
        assert!(delay(30) >= s(60) && delay(30) <= s(120), "{:?}", delay(30));
    }
}
