//! Model backends behind one trait. Loading and inference are blocking
//! calls: the worker runs them on blocking threads, never on the async
//! runtime.

pub mod onnx;
mod runtimes;
#[cfg(feature = "tensorflow")]
pub mod tensorflow;
mod warmup;

use std::path::Path;
use std::sync::Arc;

use hotswap_proto::v1::{Api, ModelVersion, PredictorType};

use crate::Error;
use crate::signature::Signature;
use crate::tensor::Tensor;

pub use runtimes::{RuntimeConfig, RuntimeError, tensorflow_library_dir};

/// A loaded model version, shared by every request that uses it.
pub trait Model: Send + Sync + 'static {
    /// The inputs it takes and the outputs it returns.
    fn signature(&self) -> &Signature;

    /// The Triton-style platform name ("onnxruntime_onnx", ...).
    fn platform(&self) -> &'static str;

    /// Runs the model on inputs already checked against the signature (in
    /// its input order) and returns the requested outputs (all when
    /// `outputs` is empty). Blocking.
    fn infer(&self, inputs: Vec<Tensor>, outputs: &[String]) -> Result<Vec<Tensor>, Error>;

    /// As `infer`, on the calling thread, if the run would not wait for
    /// another call (its session is free); otherwise the inputs come back
    /// untouched. The worker asks this only of versions whose recent runs
    /// took microseconds, on small inputs, so an async thread runs them
    /// instead of handing each to a blocking thread and back (that hop cost
    /// more than such a run). By default a backend never runs inline.
    fn try_infer_now(
        &self,
        inputs: Vec<Tensor>,
        _outputs: &[String],
    ) -> Result<Result<Vec<Tensor>, Error>, Vec<Tensor>> {
        Err(inputs)
    }
}

/// Why a version did not load. What the runtimes say is kept in their own
/// words, with the worker's cache paths taken out (callers see it).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The version's folder could not be read.
    #[error("reading the version folder")]
    Folder(#[source] std::io::Error),

    /// An ONNX version must hold exactly one `.onnx` file; it held this many.
    #[error("expected exactly one *.onnx file in the version, found {0}")]
    OnnxFiles(usize),

    /// The runtime refused the files (a corrupt model, a missing op).
    #[error("{0}")]
    Refused(String),

    /// The SavedModel lacks the signature the API asks for.
    #[error("the SavedModel has no signature `{key}`; its signatures: {}", hotswap_common::list(.known))]
    NoSignature {
        /// The signature asked for.
        key: String,
        /// The signatures the SavedModel has.
        known: Vec<String>,
    },

    /// An input or output the worker cannot serve; `name` says which.
    #[error("{name}")]
    Tensor {
        /// The input or output.
        name: String,
        /// What about it cannot be served.
        #[source]
        source: TensorTypeError,
    },

    /// The runtime's library could not be found or started.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),

    /// The runtime refused the session options the worker set.
    #[error("session options")]
    SessionOptions(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// The loading thread panicked.
    #[error("loader panicked")]
    Panicked(#[source] tokio::task::JoinError),

    /// The version loaded but could not run the warm-up inference, so it is
    /// not published (see backend/warmup.rs).
    #[error("warm-up inference failed ({WARMUP_INPUTS}): {0}")]
    Warmup(String),

    /// A warm-up request shipped in the version's `warmup/` folder could
    /// not be read or did not run.
    #[error("warm-up request {file} failed: {message}")]
    WarmupRequest {
        /// The request's file in `warmup/`.
        file: String,
        /// What went wrong with it.
        message: String,
    },

    /// The API's predictor type has no backend here (Python predictors
    /// are not loaded as models).
    #[error("predictor type {0} is not served by this worker")]
    PredictorType(&'static str),
}

/// A tensor in a model's signature that hotswap cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorTypeError {
    /// An element type hotswap has no tensor type for.
    #[error("element type {0} is not supported")]
    Element(String),
    /// A TensorFlow dtype hotswap does not convert yet.
    #[error("dtype {0} is not served by hotswap yet")]
    Dtype(String),
    /// The model does not say how many dimensions the tensor has.
    #[error("the signature gives no rank (unknown shape), which hotswap cannot serve")]
    UnknownRank,
    /// A sequence, map or other non-tensor value.
    #[error("is a {0}; only tensor inputs and outputs are served")]
    NotATensor(String),
}

/// What a backend needs from the API config to load one of its versions.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Which backend loads the version.
    pub predictor: PredictorType,
    /// The SavedModel signature to serve ("" for the default).
    pub signature_key: String,
    /// Inferentia chips the API asks for (compute.inf).
    pub inferentia: u32,
    /// Run the warm-up inference before the version is published.
    pub warmup: bool,
}

impl LoadSpec {
    /// The spec for `version` of `api`: a model's own signature key (from
    /// its `paths` entry) wins over the API's.
    pub fn new(api: &Api, version: &ModelVersion) -> LoadSpec {
        let own = api
            .sources
            .iter()
            .find(|s| !s.is_dir && s.name == version.model)
            .map(|s| s.signature_key.clone())
            .filter(|k| !k.is_empty());
        LoadSpec {
            predictor: PredictorType::try_from(api.predictor_type)
                .unwrap_or(PredictorType::Unspecified),
            signature_key: own.unwrap_or_else(|| api.signature_key.clone()),
            inferentia: api.inferentia,
            warmup: true,
        }
    }
}

/// Loads the version whose files are in `dir`. Blocking.
pub fn load(
    spec: &LoadSpec,
    dir: &Path,
    what: &str,
    runtimes: &RuntimeConfig,
) -> Result<Arc<dyn Model>, Error> {
    let fail = |source: LoadError| Error::Load {
        what: what.to_owned(),
        source,
    };
    let model: Arc<dyn Model> = match spec.predictor {
        PredictorType::Onnx => Arc::new(onnx::OnnxModel::load(dir, runtimes).map_err(fail)?),
        #[cfg(feature = "tensorflow")]
        PredictorType::Tensorflow => Arc::new(tensorflow::TensorFlowModel::load(
            dir, spec, what, runtimes,
        )?),
        #[cfg(not(feature = "tensorflow"))]
        PredictorType::Tensorflow => {
            return Err(Error::FailedPrecondition(format!(
                "{what} is a TensorFlow SavedModel and this worker was built without TensorFlow \
                 (cargo feature `tensorflow`)"
            )));
        }
        other => return Err(fail(LoadError::PredictorType(other.as_str_name()))),
    };
    if spec.warmup {
        warmup::run(model.as_ref(), dir).map_err(fail)?;
    }
    Ok(model)
}

/// How warm-up inputs are made, for messages.
const WARMUP_INPUTS: &str = "inputs of zeros shaped by the signature, dynamic dimensions as 1";
