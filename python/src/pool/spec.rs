//! What a pool runs and how: the predictor, the processes' configuration,
//! and the worker's answers to the model calls predictors make.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::protocol::{ModelAnswer, PredictorClass, RunAnswer};

/// Answers `python_client.get_model(...)`, `onnx_client` and
/// `tensorflow_client` calls: which version a name and version mean, where
/// its files are; runs ONNX and TensorFlow models.
#[async_trait::async_trait]
pub trait ModelResolver: Send + Sync + 'static {
    /// `below`: for "latest", only versions lower than it (the child
    /// falls back past versions its `load_model` failed on).
    async fn resolve(
        &self,
        model: Option<String>,
        version: String,
        below: Option<u64>,
    ) -> ModelAnswer;

    /// `onnx_client.predict` / `tensorflow_client.predict`: runs the model
    /// on `input` (a nested list, or an object of input name -> nested
    /// list).
    async fn run_model(
        &self,
        model: Option<String>,
        version: String,
        input: serde_json::Value,
    ) -> RunAnswer;

    /// `onnx_client.get_model`: the model's inputs and outputs.
    async fn model_signature(&self, model: Option<String>, version: String) -> RunAnswer;
}

/// How a worker starts predictor processes and bounds their calls (from
/// its configuration).
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// The binary to run as `<exe> python-worker` [default: this process's
    /// own binary].
    pub exe: Option<PathBuf>,
    /// A virtualenv, made from the Python this binary embeds, whose
    /// packages predictors import.
    pub venv: Option<PathBuf>,
    /// The worker's variables the processes inherit ([`inherited`]: no
    /// credentials); the processes start from an empty environment. Those
    /// of [`THREAD_VARS`] not among them are set so that the processes
    /// share the cores.
    ///
    /// [`inherited`]: crate::inherited
    pub inherited_env: Vec<(String, String)>,
    /// A `predict` call running longer fails (DEADLINE_EXCEEDED), and its
    /// process, which may be stuck, is killed and replaced.
    pub call_timeout: Duration,
    /// Calls waiting for a free Python thread, per API; one more is
    /// refused (RESOURCE_EXHAUSTED) rather than queued without bound.
    pub max_queued: usize,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            exe: None,
            venv: None,
            inherited_env: Vec::new(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_queued: DEFAULT_MAX_QUEUED,
        }
    }
}

/// Default [`ProcessConfig::call_timeout`].
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`ProcessConfig::max_queued`]: a quarter of the calls a worker
/// handles at once (256), so the queue of a predictor that hangs leaves
/// room for the worker's other APIs.
pub const DEFAULT_MAX_QUEUED: usize = 64;

/// The numeric libraries' thread-count variables.
pub const THREAD_VARS: [&str; 3] = ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"];

/// One API's Python predictor: the user's file, its configuration, and how
/// many processes and threads run it.
#[derive(Clone)]
pub struct PythonPredictorSpec {
    /// The user's predictor file's contents.
    pub source: String,
    /// The file's name (for tracebacks and logs).
    pub file: String,
    /// `predictor.config`, handed to the constructor.
    pub config: serde_json::Value,
    /// processes_per_replica.
    pub processes: usize,
    /// Models each process keeps loaded (0: no limit).
    pub cache_size: u32,
    /// The class the file defines and how it is built.
    pub class: PredictorClass,
    /// Python threads per process (threads_per_process).
    pub threads: u32,
    /// How the processes are started.
    pub process: ProcessConfig,
    /// Where `get_model` finds models; None: the API has none.
    pub models: Option<Arc<dyn ModelResolver>>,
    /// `predictor.env`: set for the processes, over what they inherit.
    pub env: BTreeMap<String, String>,
}
