//! Which worker a call goes to. Among the workers that hold the version (or
//! had it placed on them moments ago), the less busy of two picked at random
//! (power of two choices, by calls outstanding). When none holds it, the
//! least busy worker, fewest models first, which loads it on demand; later
//! calls follow it there. A call that fails because its worker is gone is
//! retried once on another worker.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hotswap_data_plane::catalog::VersionKey;
use tonic::{Code, Status};

use crate::Error;
use crate::channel::WorkerClients;
use crate::registry::{Registry, WorkerEntry};

pub struct Router {
    pub registry: Arc<Registry>,
}

/// Failures that say the worker could not take the call (gone, restarting,
/// connection cut), as opposed to an answer about the request. Predict and
/// ModelInfer have no side effects, so a second try is safe.
fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Cancelled
    )
}

impl Router {
    /// Calls `f` with the chosen worker's clients; retries once elsewhere.
    pub async fn call<T, F, Fut>(&self, key: &VersionKey, f: F) -> Result<T, Error>
    where
        F: Fn(WorkerClients) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let first = self
            .choose(key, None)
            .ok_or_else(|| Error::NoWorkers(key.to_string()))?;
        match self.call_on(&first, &f).await {
            Ok(r) => Ok(r),
            Err(status) if retryable(&status) => {
                let Some(second) = self.choose(key, Some(&first.id)) else {
                    return Err(Error::from_status(&status));
                };
                tracing::info!(version = %key, failed = %first.address, retry = %second.address, error = %status.message(), "retrying on another worker");
                self.call_on(&second, &f)
                    .await
                    .map_err(|s| Error::from_status(&s))
            }
            Err(status) => Err(Error::from_status(&status)),
        }
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
        let holders: Vec<&Arc<WorkerEntry>> =
            workers.iter().filter(|w| w.has_or_will_have(key)).collect();
        let busy = |w: &WorkerEntry| w.outstanding.load(Ordering::Relaxed);
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
        let start = random(workers.len().max(1));
        let chosen = (0..workers.len())
            .map(|i| &workers[(start + i) % workers.len()])
            .min_by_key(|w| (busy(w), w.load_count()))?
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
