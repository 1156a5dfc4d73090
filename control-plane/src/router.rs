//! Which worker a call goes to. Among the workers that serve its route (or
//! had it placed on them moments ago), the less busy of two picked at random
//! (power of two choices, by calls outstanding). When none serves it, the
//! worker with the fewest routes, then the least busy, takes it (and loads
//! the version on demand); later calls follow it there. A call that fails
//! because its worker could not take it is retried once on another worker.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hotswap_common::context::deadline_passed;
use hotswap_common::lock;
use hotswap_proto::error::{Code, Report};

use crate::Error;
use crate::registry::{Registry, Route, WorkerEntry};
use crate::worker::{WorkerApi, WorkerError};

/// Chooses the worker for each call and retries once elsewhere.
pub struct Router {
    /// The workers it chooses among.
    pub registry: Arc<Registry>,
    /// Serialises placements, so two calls for a route no worker serves
    /// place it once.
    placing: Mutex<()>,
}

/// Whether a failed call may run again on another worker. Predict and
/// ModelInfer have no side effects, so a second try is safe when the first
/// never ran or the worker could not take it.
fn retryable(e: &WorkerError) -> bool {
    if deadline_passed() {
        return false;
    }
    match e {
        WorkerError::Unreachable(_) => true,
        // The worker could not serve it now (a version failed to load, a
        // predictor restarting); another may. Unless the worker says the
        // call itself may be the problem: once is enough.
        WorkerError::Answered {
            code: Code::Unavailable,
            no_retry,
            ..
        } => !no_retry,
        WorkerError::Answered { .. } | WorkerError::TimedOut => false,
    }
}

/// What the client gets for a final failure: the worker's own answer as it
/// came, or a plain UNAVAILABLE / DEADLINE_EXCEEDED for transport trouble
/// (its detail is logged, not returned).
fn final_error(route: &Route, e: WorkerError) -> Error {
    if deadline_passed() {
        return Error::DeadlineExceeded;
    }
    match e {
        WorkerError::TimedOut => Error::DeadlineExceeded,
        WorkerError::Unreachable(cause) => {
            tracing::warn!(route = %route, error = %Report(cause.as_ref()), "worker call failed");
            Error::WorkerUnavailable(route.to_string())
        }
        WorkerError::Answered { code, message, .. } => Error::Worker { code, message },
    }
}

impl Router {
    /// A router over `registry`'s workers.
    pub fn new(registry: Arc<Registry>) -> Router {
        Router {
            registry,
            placing: Mutex::new(()),
        }
    }

    /// Calls `f` with the chosen worker; retries once elsewhere.
    pub async fn call<T, F, Fut>(&self, route: &Route, f: F) -> Result<T, Error>
    where
        F: Fn(Arc<dyn WorkerApi>) -> Fut,
        Fut: Future<Output = Result<T, WorkerError>>,
    {
        let first = self
            .choose(route, None)
            .ok_or_else(|| Error::NoWorkers(route.to_string()))?;
        let failure = match self.call_on(&first, &f).await {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        if !retryable(&failure) {
            return Err(final_error(route, failure));
        }
        let Some(second) = self.choose(route, Some(&first.id)) else {
            return Err(final_error(route, failure));
        };
        tracing::info!(route = %route, failed = %first.address, retry = %second.address, error = %Report(&failure), "retrying on another worker");
        metrics::counter!("hotswap_route_retries_total").increment(1);
        self.call_on(&second, &f)
            .await
            .map_err(|e| final_error(route, e))
    }

    async fn call_on<T, F, Fut>(&self, worker: &Arc<WorkerEntry>, f: &F) -> Result<T, WorkerError>
    where
        F: Fn(Arc<dyn WorkerApi>) -> Fut,
        Fut: Future<Output = Result<T, WorkerError>>,
    {
        worker.outstanding.fetch_add(1, Ordering::Relaxed);
        worker.routed();
        let _done = Outstanding(worker);
        f(worker.api.clone()).await
    }

    /// The worker for `route`, never `exclude`: a lookup in the routing
    /// table and a pick of two, unless no worker holds the route yet.
    pub fn choose(&self, route: &Route, exclude: Option<&str>) -> Option<Arc<WorkerEntry>> {
        if let Some(w) = self.holder(route, exclude) {
            return Some(w);
        }
        let _placing = lock(&self.placing);
        // Another call may have placed it while this one waited.
        if let Some(w) = self.holder(route, exclude) {
            return Some(w);
        }
        // Fewest models first: placing a model on a worker that holds others
        // may evict one of them (cache limits); then the least busy.
        let table = self.registry.table();
        let workers: Vec<&Arc<WorkerEntry>> = table
            .workers()
            .iter()
            .filter(|w| Some(w.id.as_str()) != exclude)
            .collect();
        let start = random(workers.len().max(1));
        let chosen = (0..workers.len())
            .map(|i| workers[(start + i) % workers.len()])
            .min_by_key(|w| (w.load_count(), w.outstanding.load(Ordering::Relaxed)))?
            .clone();
        drop(table);
        self.registry.place(&chosen, route);
        Some(chosen)
    }

    /// Of the workers the table says hold `route`, the less busy of two.
    fn holder(&self, route: &Route, exclude: Option<&str>) -> Option<Arc<WorkerEntry>> {
        self.registry
            .table()
            .holders(route)?
            .pick(exclude, random)
            .cloned()
    }
}

struct Outstanding<'a>(&'a WorkerEntry);

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A number in 0..n (n > 0), from a shared splitmix64 sequence: cheap and
/// good enough to spread choices.
fn random(n: usize) -> usize {
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mut z = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % n.max(1) as u64) as usize
}

#[cfg(test)]
mod tests;
