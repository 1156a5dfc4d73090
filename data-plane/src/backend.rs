//! Model backends behind one trait. Loading and inference are blocking
//! calls: the worker runs them on blocking threads, never on the async
//! runtime.

pub mod onnx;
#[cfg(feature = "tensorflow")]
pub mod tensorflow;

use std::path::Path;
use std::sync::Arc;

use hotswap_proto::v1::{Api, ModelVersion, PredictorType};

use crate::Error;
use crate::signature::Signature;
use crate::tensor::Tensor;

/// A loaded model version, shared by every request that uses it.
pub trait Model: Send + Sync + 'static {
    fn signature(&self) -> &Signature;

    /// The Triton-style platform name ("onnxruntime_onnx", ...).
    fn platform(&self) -> &'static str;

    /// Runs the model on inputs already checked against the signature (in
    /// its input order) and returns the requested outputs (all when
    /// `outputs` is empty). Blocking.
    fn infer(&self, inputs: Vec<Tensor>, outputs: &[String]) -> Result<Vec<Tensor>, Error>;
}

/// What a backend needs from the API config to load one of its versions.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub predictor: PredictorType,
    /// The SavedModel signature to serve ("" for the default).
    pub signature_key: String,
    /// Inferentia chips the API asks for (compute.inf).
    pub inferentia: u32,
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
        }
    }
}

/// Prepares what the backends read from the environment when they start
/// (the folder of TensorFlow's library).
///
/// # Safety
/// Changes the process environment: call it before any other thread
/// starts (first thing in `main`).
pub unsafe fn prepare_env() {
    #[cfg(feature = "tensorflow")]
    // SAFETY: passed on from the caller.
    unsafe {
        tensorflow::prepare_env()
    };
}

/// Loads the version whose files are in `dir`. Blocking.
pub fn load(spec: &LoadSpec, dir: &Path, what: &str) -> Result<Arc<dyn Model>, Error> {
    match spec.predictor {
        PredictorType::Onnx => Ok(Arc::new(onnx::OnnxModel::load(dir, what)?)),
        #[cfg(feature = "tensorflow")]
        PredictorType::Tensorflow => Ok(Arc::new(tensorflow::TensorFlowModel::load(
            dir, spec, what,
        )?)),
        #[cfg(not(feature = "tensorflow"))]
        PredictorType::Tensorflow => Err(Error::FailedPrecondition(format!(
            "{what} is a TensorFlow SavedModel and this worker was built without TensorFlow \
             (cargo feature `tensorflow`)"
        ))),
        other => Err(Error::Load {
            what: what.to_owned(),
            message: format!(
                "predictor type {} is not served by this worker",
                other.as_str_name()
            ),
        }),
    }
}
