//! The worker side: `processes` Python children for one predictor, each
//! restarted (with backoff) when it dies. A call waits in the worker for a
//! free Python thread (each process takes as many calls as it has threads,
//! so nothing queues inside a process that may hang), within a bound: one
//! more is refused. A call that runs past its time limit fails, and its
//! process, which may be stuck, is killed and replaced. Calls running on a
//! child that dies fail with UNAVAILABLE (and are not retried elsewhere:
//! they may be what killed it); later calls go to the others, then to the
//! restarted child.

mod process;
mod spec;
mod supervise;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::process::{Children, Process};
pub use self::spec::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_QUEUED, ModelResolver, ProcessConfig, PythonPredictorSpec,
    THREAD_VARS,
};
use self::supervise::{Launch, supervise};
use crate::error::{CallError, StartError};
use crate::lock;
use crate::protocol::{Output, Request, ToChild};

/// A predictor's processes, each with its Python threads: calls go to a
/// free thread, one at a time per thread.
pub struct PythonPool {
    spec: Arc<PythonPredictorSpec>,
    slots: Vec<Arc<ArcSwapOption<Process>>>,
    next: AtomicUsize,
    /// Calls waiting for a free Python thread.
    queued: AtomicUsize,
    /// Woken when a thread frees up or a process is replaced.
    freed: Arc<Notify>,
    shutdown: CancellationToken,
}

impl PythonPool {
    /// Starts every child; fails with the Python traceback when the
    /// predictor does not import or construct.
    pub async fn start(spec: PythonPredictorSpec) -> Result<PythonPool, StartError> {
        let spec = Arc::new(spec);
        let launcher = Arc::new(Children(spec.clone()));
        Self::start_with(spec, launcher).await
    }

    /// Starts `spec.processes` processes with `launcher` (child processes,
    /// or stand-ins in the tests), restarted with it when they end.
    async fn start_with(
        spec: Arc<PythonPredictorSpec>,
        launcher: Arc<dyn Launch>,
    ) -> Result<PythonPool, StartError> {
        let shutdown = CancellationToken::new();
        // Children already started go again if a later one fails.
        let guard = shutdown.clone().drop_guard();
        let freed = Arc::new(Notify::new());
        let mut slots = Vec::new();
        for _ in 0..spec.processes.max(1) {
            let slot = Arc::new(ArcSwapOption::empty());
            let (process, child) = launcher.launch().await?;
            slot.store(Some(process));
            tokio::spawn(supervise(
                spec.clone(),
                launcher.clone(),
                slot.clone(),
                child,
                freed.clone(),
                shutdown.clone(),
            ));
            slots.push(slot);
        }
        guard.disarm();
        Ok(PythonPool {
            spec,
            slots,
            next: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            freed,
            shutdown,
        })
    }

    /// Runs the class's `predict` on a free Python thread of
    /// one of the children, waiting for one (a bounded number of callers
    /// may wait) and at most the call time limit for it to answer.
    pub async fn predict(&self, request: Request) -> Result<Output, CallError> {
        let mut message = ToChild::Predict { id: 0, request };
        // A process that died after the claim never got the call: it goes
        // to another (each try skips the dead one; the bound is a guard).
        for _ in 0..=self.slots.len() {
            let (process, busy) = self.claim().await?;
            let id = process.next_id.fetch_add(1, Ordering::Relaxed);
            if let ToChild::Predict { id: slot, .. } = &mut message {
                *slot = id;
            }
            let (tx, rx) = oneshot::channel();
            let (free_tx, free_rx) = oneshot::channel();
            lock(&process.pending).insert(id, tx);
            lock(&process.freeing).insert(id, free_tx);
            let forget = |process: &Process| {
                lock(&process.pending).remove(&id);
                lock(&process.freeing).remove(&id);
            };
            // Failed since the claim (its calls in flight already dropped):
            // this one would wait out the whole limit there.
            if !process.alive.load(Ordering::Relaxed) {
                forget(&process);
                continue;
            }
            match process.outbox.send(message) {
                Ok(()) => return self.watch(process, busy, rx, free_rx).await,
                Err(returned) => {
                    forget(&process);
                    process.alive.store(false, Ordering::Relaxed);
                    message = returned.0;
                }
            }
        }
        Err(CallError::NoProcess {
            file: self.spec.file.clone(),
        })
    }

    /// Waits for a sent call's answer, at most the call time limit. The
    /// wait runs in its own task, which holds the claimed thread: a caller
    /// that gives up (its deadline, a cancelled request) leaves the call
    /// watched, so a stuck process is still replaced when the limit
    /// passes, and its thread is never handed to another call meanwhile.
    /// The answer goes to the caller at once; the thread is given back when
    /// the child says it is free (after `post_predict`, which runs after
    /// the answer), within another call time limit.
    async fn watch(
        &self,
        process: Arc<Process>,
        busy: Busy,
        answer: oneshot::Receiver<Result<Output, CallError>>,
        free: oneshot::Receiver<()>,
    ) -> Result<Output, CallError> {
        let limit = self.spec.process.call_timeout;
        let (file, pid) = (self.spec.file.clone(), process.pid);
        let (settled, outcome) = oneshot::channel();
        let watcher = tokio::spawn(async move {
            // Given back only once the thread is free: a stuck process is
            // marked dead before anyone may claim its thread.
            let _busy = busy;
            let result = Self::settle(limit, answer, &process, file.clone()).await;
            let _ = settled.send(result);
            // Free, or the process failed (which drops the sender).
            if tokio::time::timeout(limit, free).await.is_err() {
                tracing::warn!(file = %file, pid = process.pid, limit = ?limit,
                    "post_predict ran past the call time limit; replacing its process");
                process.fail();
            }
        });
        match outcome.await {
            Ok(result) => result,
            Err(_) => match watcher.await {
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Cancelled: the runtime is shutting down, and the process
                // with it.
                _ => Err(CallError::ProcessDied {
                    file: self.spec.file.clone(),
                    pid,
                }),
            },
        }
    }

    /// A call's outcome: its answer, or why there is none within `limit`
    /// (a process past it is failed, to be replaced).
    async fn settle(
        limit: Duration,
        answer: oneshot::Receiver<Result<Output, CallError>>,
        process: &Process,
        file: String,
    ) -> Result<Output, CallError> {
        match tokio::time::timeout(limit, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CallError::ProcessDied {
                file,
                pid: process.pid,
            }),
            Err(_) => {
                tracing::warn!(file = %file, pid = process.pid, limit = ?limit,
                    "a predict call ran past its time limit; replacing its process");
                process.fail();
                Err(CallError::TimedOut { file, limit })
            }
        }
    }

    /// A live process with a free Python thread, claimed; waits for one as
    /// one of at most `max_queued` callers, and for a process to come back
    /// at most the call time limit.
    async fn claim(&self) -> Result<(Arc<Process>, Busy), CallError> {
        if let Some(claimed) = self.try_claim() {
            return Ok(claimed);
        }
        let max = self.spec.process.max_queued;
        if self.queued.fetch_add(1, Ordering::SeqCst) >= max {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(CallError::Busy {
                file: self.spec.file.clone(),
                queued: max,
            });
        }
        let _waiting = Waiting(&self.queued);
        // With no live process (being restarted), a caller waits at most the
        // call time limit for one to come back (on tokio's clock, which the
        // tests pause).
        let mut none_since: Option<Instant> = None;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a thread freed meanwhile wakes it.
            freed.as_mut().enable();
            if let Some(claimed) = self.try_claim() {
                return Ok(claimed);
            }
            let alive = self.live().next().is_some();
            if alive {
                none_since = None;
            } else if none_since.get_or_insert_with(Instant::now).elapsed()
                >= self.spec.process.call_timeout
            {
                return Err(CallError::NoProcess {
                    file: self.spec.file.clone(),
                });
            }
            tokio::select! {
                () = &mut freed => {}
                // Processes being restarted: look again now and then.
                () = tokio::time::sleep(Duration::from_millis(50)), if !alive => {}
            }
        }
    }

    /// Claims a free thread of a live process, in turn.
    fn try_claim(&self) -> Option<(Arc<Process>, Busy)> {
        let threads = self.spec.threads.max(1) as usize;
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|i| {
            let process = self.slots[(start + i) % n].load_full()?;
            if !process.alive.load(Ordering::Relaxed) {
                return None;
            }
            process
                .busy
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                    (b < threads).then_some(b + 1)
                })
                .ok()?;
            let busy = Busy {
                process: process.clone(),
                freed: self.freed.clone(),
            };
            Some((process, busy))
        })
    }

    fn live(&self) -> impl Iterator<Item = Arc<Process>> + '_ {
        self.slots
            .iter()
            .filter_map(|s| s.load_full())
            .filter(|p| p.alive.load(Ordering::Relaxed))
    }

    /// Tells every process that a model version changed (its current
    /// content hash) or went away (""), so cached copies go now.
    pub fn evict(&self, model: &str, version: u64, content_hash: &str) {
        for slot in &self.slots {
            if let Some(process) = slot.load_full() {
                let _ = process.outbox.send(ToChild::Evict {
                    model: model.to_owned(),
                    version,
                    content_hash: content_hash.to_owned(),
                });
            }
        }
    }

    /// Process ids of the live children (operators and tests).
    pub fn pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .filter_map(|s| s.load().as_ref().map(|p| p.pid))
            .collect()
    }
}

/// A claimed Python thread, given back (and a waiting call woken) when
/// dropped.
struct Busy {
    process: Arc<Process>,
    freed: Arc<Notify>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.process.busy.fetch_sub(1, Ordering::SeqCst);
        self.freed.notify_one();
    }
}

/// Counts a call as waiting for a thread until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for PythonPool {
    fn drop(&mut self) {
        // Supervisors stop; dropping the children kills them.
        self.shutdown.cancel();
    }
}
