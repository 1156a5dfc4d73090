//! A worker: the models room (catalog, disk cache, swap table, loads), the
//! inference room (the entry point every call runs through) and the Python
//! predictor APIs, started together and driven by one reconciler. The
//! handlers (predict.rs, oip.rs) call the inference entry point and the
//! Python APIs, and read reports (catalog, statistics, version states)
//! from here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hotswap_common::catalog::{Catalog, VersionKey};
use hotswap_common::trust::ClusterCredentials;
use hotswap_python::ProcessConfig;
use hotswap_storage::StorageOptions;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::backend::RuntimeConfig;
use crate::cache::DownloadLimits;
use crate::inference::Inference;
use crate::models::{Models, ModelsConfig, SlotStatus, TableStats};
use crate::python_apis::PythonApis;

pub use crate::python_apis::PythonState;
pub use hotswap_common::catalog::ModelRef;

/// How a worker is started.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// host:port (or URI) of the model-store.
    pub model_store: String,
    /// Where downloaded versions go; a fresh temporary folder when None.
    pub cache_dir: Option<PathBuf>,
    /// How buckets are reached.
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

/// How often the reconciler looks again when nothing else happens (failed
/// loads are retried when their backoff ends).
const TICK: Duration = Duration::from_millis(500);

/// One worker (see the module's doc).
pub struct Worker {
    models: Arc<Models>,
    inference: Arc<Inference>,
    python: PythonApis,
    pub(crate) control_plane: Option<String>,
    pub(crate) advertise: Option<String>,
    pub(crate) cluster: ClusterCredentials,
    /// Set once the worker was first ready; it stays ready after (a load on
    /// demand or a new version must not take it out of rotation).
    ready_once: AtomicBool,
    shutdown: CancellationToken,
}

impl Worker {
    /// Starts the subscription and the reconciler; must run inside a tokio
    /// runtime.
    pub fn start(config: WorkerConfig) -> Result<Arc<Worker>, Error> {
        let models = Models::start(ModelsConfig {
            model_store: config.model_store,
            cache_dir: config.cache_dir,
            storage: config.storage,
            runtimes: config.runtimes,
            downloads: config.downloads,
            warmup: config.warmup,
            cluster: config.cluster.clone(),
        })?;
        let inference = Arc::new(Inference::new(models.clone()));
        let python = PythonApis::new(config.python, config.python_tracebacks, &models, &inference);
        let worker = Arc::new(Worker {
            models,
            inference,
            python,
            control_plane: config.control_plane,
            advertise: config.advertise,
            cluster: config.cluster,
            ready_once: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
        });
        tokio::spawn(reconcile(Arc::downgrade(&worker), worker.shutdown.clone()));
        Ok(worker)
    }

    /// The inference entry point.
    pub fn inference(&self) -> &Inference {
        &self.inference
    }

    /// The Python predictor APIs.
    pub fn python(&self) -> &PythonApis {
        &self.python
    }

    /// The catalog as last received.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.models.catalog()
    }

    /// Changes whenever the catalog does.
    pub fn catalog_updates(&self) -> watch::Receiver<Arc<Catalog>> {
        self.models.catalog_updates()
    }

    /// What RepositoryIndex reports of a version.
    pub fn version_status(&self, key: &VersionKey) -> Option<SlotStatus> {
        self.models.status(key)
    }

    /// Ready to serve: the model index has arrived and what was placed here
    /// when it did has loaded (or failed; see [`Models::settled`]), and
    /// every predictor class has started or failed. Once ready, always
    /// ready: later loads happen beside what serves.
    pub fn ready(&self) -> bool {
        if self.ready_once.load(Ordering::Relaxed) {
            return true;
        }
        let ready = self.models.settled() && !self.python.starting();
        if ready {
            self.ready_once.store(true, Ordering::Relaxed);
        }
        ready
    }

    /// Versions loaded here and Python APIs running here (what registration
    /// reports).
    pub fn held(&self) -> (Vec<VersionKey>, Vec<String>) {
        (self.models.held_versions(), self.python.ready())
    }

    /// Requests running now.
    pub fn in_flight(&self) -> usize {
        self.inference.in_flight()
    }

    /// Counters of the swap table.
    pub fn table_stats(&self) -> TableStats {
        self.models.table_stats()
    }

    /// Watch streams opened, snapshots applied, events applied.
    pub fn subscription_stats(&self) -> (u64, u64, u64) {
        self.models.subscription_stats()
    }

    /// The state of a Python API's predictor on this worker.
    pub fn python_state(&self, api: &str) -> Option<PythonState> {
        self.python.state(api)
    }

    /// Cancelled when the worker shuts down.
    pub(crate) fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the subscription and background loads.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
        self.models.shut_down();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The reconciler: on every catalog change and every [`TICK`], brings the
/// Python APIs and the models in line with the catalog. Runs until
/// `shutdown` or until the worker is gone; holds the worker only while
/// reconciling, so dropping the last handle stops it.
async fn reconcile(worker: Weak<Worker>, shutdown: CancellationToken) {
    let Some(mut updates) = worker.upgrade().map(|w| w.catalog_updates()) else {
        return;
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = updates.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(TICK) => {}
        }
        let Some(worker) = worker.upgrade() else {
            return;
        };
        let catalog = worker.catalog();
        if !catalog.complete {
            continue;
        }
        worker.python.reconcile(&catalog);
        worker.models.reconcile().await;
    }
}
