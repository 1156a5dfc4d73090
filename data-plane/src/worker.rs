//! The worker: the catalog from the model-store, the disk cache, the swap
//! table, and the rules that tie them: which version a request gets, when a
//! version is loaded (eagerly, or on first use with a cache limit), and what
//! happens when a load fails (the previous instance keeps serving; the load
//! is retried with backoff).

mod fetch;
mod load;
mod python_apis;
mod reconcile;
mod resolve;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotswap_common::catalog::Catalog;
use hotswap_common::subscription::{self, SubscriptionStats};
use hotswap_common::trust::ClusterCredentials;
use hotswap_proto::v1::ModelVersion;
use hotswap_python::ProcessConfig;
use hotswap_storage::{Storage, StorageOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::backend::{Model, RuntimeConfig};
use crate::cache::{DiskCache, DownloadLimits};
use crate::stats::{Phases, Stats};
use crate::table::{Loaded, Table, TableStats};
use crate::tensor::Tensor;

pub use hotswap_common::catalog::ModelRef;
pub use python_apis::PythonState;
pub use resolve::Target;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// host:port (or URI) of the model-store.
    pub model_store: String,
    /// Where downloaded versions go; a fresh temporary folder when None.
    pub cache_dir: Option<PathBuf>,
    pub storage: StorageOptions,
    /// host:port (or URI) of the control plane to register with, if any.
    /// A worker that registers is called by the control plane only: its
    /// listener then takes the cluster's credentials, not clients'.
    pub control_plane: Option<String>,
    /// host:port the control plane should call this worker on [default: the
    /// bound address; the host name when bound to all interfaces].
    pub advertise: Option<String>,
    /// How Python predictor processes are started.
    pub python: ProcessConfig,
    /// Where the inference runtimes' libraries are.
    pub runtimes: RuntimeConfig,
    /// Bounds on downloads (waits, tries, progress logs).
    pub downloads: DownloadLimits,
    /// Whether callers get a predictor's whole Python traceback; otherwise
    /// the exception's line and a request id, the traceback going to the
    /// log (for debugging, not for untrusted clients).
    pub python_tracebacks: bool,
    /// Run one inference on each new ONNX or TensorFlow version before it
    /// is published (backend/warmup.rs); off only to measure what it saves.
    pub warmup: bool,
    /// What the model-store and control plane trust this worker by, and
    /// what it trusts them by.
    pub cluster: ClusterCredentials,
}

pub struct Worker {
    catalog: watch::Receiver<Arc<Catalog>>,
    pub(crate) control_plane: Option<String>,
    pub(crate) advertise: Option<String>,
    pub(crate) cluster: ClusterCredentials,
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
    /// Set once the worker was first ready; it stays ready after (a load on
    /// demand or a new version must not take it out of rotation).
    ready_once: AtomicBool,
    python: ProcessConfig,
    /// See [`WorkerConfig::python_tracebacks`].
    python_tracebacks: bool,
    /// See [`WorkerConfig::warmup`].
    warmup: bool,
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
            DiskCache::new(cache_dir.clone(), storage, config.downloads).map_err(|source| {
                Error::CacheFolder {
                    path: cache_dir.clone(),
                    source,
                }
            })?;
        let (tx, rx) = watch::channel(Arc::new(Catalog::default()));
        let shutdown = CancellationToken::new();
        let worker = Arc::new(Worker {
            catalog: rx,
            control_plane,
            advertise,
            cluster: config.cluster.clone(),
            table: Table::default(),
            cache,
            stats: Stats::default(),
            subscription: Arc::default(),
            api_locks: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            ready_once: AtomicBool::new(false),
            python: config.python,
            python_tracebacks: config.python_tracebacks,
            warmup: config.warmup,
            runtimes: config.runtimes,
            python_apis: Mutex::default(),
            shutdown: shutdown.clone(),
            _cache_tmp: cache_tmp,
        });
        tokio::spawn(subscription::run(
            config.model_store,
            config.cluster.clone(),
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

    /// Ready to serve: the model index has arrived and what was placed here
    /// when it did has loaded (or failed; see [`Worker::settled`]). Once
    /// ready, always ready: later loads happen beside what serves.
    pub fn ready(&self) -> bool {
        if self.ready_once.load(Ordering::Relaxed) {
            return true;
        }
        let ready = self.settled();
        if ready {
            self.ready_once.store(true, Ordering::Relaxed);
        }
        ready
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
        let checked_at = Instant::now();
        let result = match checked {
            Err(e) => Err(e),
            Ok(inputs) => match loaded
                .batcher
                .as_ref()
                .and_then(|b| Some((b, b.rows(&inputs)?)))
            {
                Some((batcher, rows)) => batcher.run(inputs, outputs, rows).await,
                None => run(&loaded.model, inputs, outputs, stats.runs_short()).await,
            },
        };
        match result {
            Ok((out, began, infer)) => {
                let phases = Phases {
                    input: checked_at.saturating_duration_since(start),
                    queue: began.saturating_duration_since(checked_at),
                    infer,
                    output: (began + infer).elapsed(),
                };
                stats.success(start.elapsed(), phases);
                Ok(out)
            }
            Err(e) => {
                stats.failure(start.elapsed());
                Err(e)
            }
        }
    }
}

/// Inputs of at most this many elements in all may run inline (a model's
/// run time grows with its inputs; its recent runs say nothing of a call
/// many times their size).
const INLINE_MAX_ELEMENTS: usize = 4096;

/// Runs the model: inline when its recent runs were short, the inputs are
/// small and its session is free; otherwise on a blocking thread. Returns
/// the outputs, when the run began and how long it took.
async fn run(
    model: &Arc<dyn Model>,
    inputs: Vec<Tensor>,
    outputs: Vec<String>,
    runs_short: bool,
) -> Result<(Vec<Tensor>, Instant, Duration), Error> {
    let small = || inputs.iter().map(|t| t.data.len()).sum::<usize>() <= INLINE_MAX_ELEMENTS;
    let inputs = if runs_short && small() {
        let began = Instant::now();
        // As on the blocking pool, a backend panic fails this request only.
        let tried =
            std::panic::catch_unwind(AssertUnwindSafe(|| model.try_infer_now(inputs, &outputs)));
        match tried {
            Ok(Ok(r)) => return r.map(|out| (out, began, began.elapsed())),
            Ok(Err(inputs)) => inputs,
            Err(_) => return Err(Error::Inference("backend panicked".to_owned())),
        }
    } else {
        inputs
    };
    let model = model.clone();
    let run = tokio::task::spawn_blocking(move || {
        let began = Instant::now();
        let r = model.infer(inputs, &outputs);
        (r, began, began.elapsed())
    })
    .await;
    match run {
        Ok((Ok(out), began, infer)) => Ok((out, began, infer)),
        Ok((Err(e), _, _)) => Err(e),
        // A backend panic fails this request only.
        Err(e) => Err(Error::Inference(format!("backend panicked: {e}"))),
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

pub(crate) fn short(hash: &str) -> &str {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::signature::Signature;
    use crate::tensor::TensorData;

    /// A backend that answers with its inputs and counts where it ran.
    #[derive(Default)]
    struct Echo {
        busy: bool,
        panics: bool,
        signature: Signature,
        inline: AtomicUsize,
        pooled: AtomicUsize,
    }

    impl Model for Echo {
        fn signature(&self) -> &Signature {
            &self.signature
        }

        fn platform(&self) -> &'static str {
            "echo"
        }

        fn infer(&self, inputs: Vec<Tensor>, _: &[String]) -> Result<Vec<Tensor>, Error> {
            self.pooled.fetch_add(1, Ordering::Relaxed);
            Ok(inputs)
        }

        fn try_infer_now(
            &self,
            inputs: Vec<Tensor>,
            _: &[String],
        ) -> Result<Result<Vec<Tensor>, Error>, Vec<Tensor>> {
            assert!(!self.panics, "the backend failed");
            if self.busy {
                return Err(inputs);
            }
            self.inline.fetch_add(1, Ordering::Relaxed);
            Ok(Ok(inputs))
        }
    }

    fn input(elements: usize) -> Vec<Tensor> {
        let data = TensorData::F32(vec![1.5; elements]);
        vec![Tensor::new("x", vec![elements as i64], data).unwrap()]
    }

    async fn ran(echo: Echo, elements: usize, runs_short: bool) -> (usize, usize) {
        let echo = Arc::new(echo);
        let model: Arc<dyn Model> = echo.clone();
        let (out, _, _) = run(&model, input(elements), Vec::new(), runs_short)
            .await
            .unwrap();
        assert_eq!(out, input(elements), "the run saw the caller's inputs");
        (
            echo.inline.load(Ordering::Relaxed),
            echo.pooled.load(Ordering::Relaxed),
        )
    }

    #[tokio::test]
    async fn short_runs_on_small_inputs_run_inline_and_the_rest_on_the_pool() {
        let short = |busy| Echo {
            busy,
            ..Echo::default()
        };
        assert_eq!(ran(short(false), 4, true).await, (1, 0), "short, small");
        assert_eq!(ran(short(false), 4, false).await, (0, 1), "not known short");
        assert_eq!(
            ran(short(false), INLINE_MAX_ELEMENTS + 1, true).await,
            (0, 1),
            "inputs too large to trust the recent run times"
        );
        assert_eq!(ran(short(true), 4, true).await, (0, 1), "session busy");
    }

    #[tokio::test]
    async fn a_panic_inline_fails_that_call_only() {
        let model: Arc<dyn Model> = Arc::new(Echo {
            panics: true,
            ..Echo::default()
        });
        let err = run(&model, input(4), Vec::new(), true).await.unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
        let (out, _, _) = run(&model, input(4), Vec::new(), false).await.unwrap();
        assert_eq!(out, input(4));
    }
}
