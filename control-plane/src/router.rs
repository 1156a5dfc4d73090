//! Which worker a call goes to. Among the workers that hold the version (or
//! had it placed on them moments ago), the less busy of two picked at random
//! (power of two choices, by calls outstanding). When none holds it, the
//! worker with the fewest models, then the least busy, loads it on demand;
//! later calls follow it there. A call that fails because its worker could
//! not take it is retried once on another worker.

use std::error::Error as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hotswap_data_plane::catalog::VersionKey;
use tonic::{Code, Status};

use crate::channel::WorkerClients;
use crate::registry::{Registry, WorkerEntry};
use crate::{Error, lock};

pub struct Router {
    pub registry: Arc<Registry>,
    /// Serialises placements, so two calls for a version no worker holds
    /// place it once.
    placing: Mutex<()>,
}

/// How a failed worker call is handled.
enum Failure {
    /// The worker could not take the call (gone, restarting, connection
    /// cut, not ready): another worker may. Predict and ModelInfer have no
    /// side effects, so a second try is safe.
    Retry,
    /// An answer about the request, or time is up: passed on.
    Final,
}

fn classify(status: &Status) -> Failure {
    if crate::context::deadline_passed() || timed_out(status) {
        return Failure::Final;
    }
    // The worker says the call itself may be the problem (it was running
    // when a Python process died): once is enough.
    if status.metadata().contains_key(hotswap_data_plane::NO_RETRY) {
        return Failure::Final;
    }
    // A status with a source was made by this process's transport (connect
    // refused, stream reset, connection closed); answers decoded from a
    // worker's trailers have none.
    let transport = status.source().is_some();
    match status.code() {
        Code::Unavailable => Failure::Retry,
        Code::Unknown | Code::Internal | Code::Cancelled if transport => Failure::Retry,
        _ => Failure::Final,
    }
}

/// Whether the per-call timeout layer fired.
fn timed_out(status: &Status) -> bool {
    let mut source = status.source();
    while let Some(e) = source {
        if e.is::<tower::timeout::error::Elapsed>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// What the client gets for a final failure: the worker's own answer as it
/// came, or a plain UNAVAILABLE / DEADLINE_EXCEEDED for transport trouble
/// (its detail is logged, not returned).
fn final_error(key: &VersionKey, status: &Status) -> Error {
    if crate::context::deadline_passed() || timed_out(status) {
        return Error::DeadlineExceeded;
    }
    if status.source().is_some() {
        tracing::warn!(version = %key, error = %status, "worker call failed");
        return Error::WorkerUnavailable(key.to_string());
    }
    Error::from_status(status)
}

impl Router {
    pub fn new(registry: Arc<Registry>) -> Router {
        Router {
            registry,
            placing: Mutex::new(()),
        }
    }

    /// Calls `f` with the chosen worker's clients; retries once elsewhere.
    pub async fn call<T, F, Fut>(&self, key: &VersionKey, f: F) -> Result<T, Error>
    where
        F: Fn(WorkerClients) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let first = self
            .choose(key, None)
            .ok_or_else(|| Error::NoWorkers(key.to_string()))?;
        let status = match self.call_on(&first, &f).await {
            Ok(r) => return Ok(r),
            Err(status) => status,
        };
        if let Failure::Final = classify(&status) {
            return Err(final_error(key, &status));
        }
        let Some(second) = self.choose(key, Some(&first.id)) else {
            return Err(final_error(key, &status));
        };
        tracing::info!(version = %key, failed = %first.address, retry = %second.address, error = %status.message(), "retrying on another worker");
        self.call_on(&second, &f)
            .await
            .map_err(|s| final_error(key, &s))
    }

    async fn call_on<T, F, Fut>(&self, worker: &Arc<WorkerEntry>, f: &F) -> Result<T, Status>
    where
        F: Fn(WorkerClients) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        worker.outstanding.fetch_add(1, Ordering::Relaxed);
        worker.routed();
        let _done = Outstanding(worker);
        f(worker.clients.clone())
            .await
            .map(tonic::Response::into_inner)
    }

    /// The worker for `key`, never `exclude`.
    pub fn choose(&self, key: &VersionKey, exclude: Option<&str>) -> Option<Arc<WorkerEntry>> {
        let workers: Vec<Arc<WorkerEntry>> = self
            .registry
            .all()
            .into_iter()
            .filter(|w| Some(w.id.as_str()) != exclude)
            .collect();
        let busy = |w: &WorkerEntry| w.outstanding.load(Ordering::Relaxed);
        let holders: Vec<&Arc<WorkerEntry>> =
            workers.iter().filter(|w| w.has_or_will_have(key)).collect();
        match holders.len() {
            0 => {}
            1 => return Some(holders[0].clone()),
            n => {
                let a = random(n);
                let b = (a + 1 + random(n - 1)) % n;
                let pick = if busy(holders[b]) < busy(holders[a]) {
                    b
                } else {
                    a
                };
                return Some(holders[pick].clone());
            }
        }
        let _placing = lock(&self.placing);
        // Another call may have placed it while this one waited.
        if let Some(w) = workers.iter().find(|w| w.has_or_will_have(key)) {
            return Some(w.clone());
        }
        // Fewest models first: placing a model on a worker that holds others
        // may evict one of them (cache limits); then the least busy.
        let start = random(workers.len().max(1));
        let chosen = (0..workers.len())
            .map(|i| &workers[(start + i) % workers.len()])
            .min_by_key(|w| (w.load_count(), busy(w)))?
            .clone();
        chosen.place(key);
        Some(chosen)
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
