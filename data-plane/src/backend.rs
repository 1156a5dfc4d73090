//! Model backends behind one trait. Loading and inference are blocking
//! calls: the worker runs them on blocking threads, never on the async
//! runtime.

pub mod onnx;

use std::path::Path;
use std::sync::Arc;

use hotswap_proto::v1::PredictorType;

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

/// Loads the version whose files are in `dir`. Blocking.
pub fn load(predictor: PredictorType, dir: &Path, what: &str) -> Result<Arc<dyn Model>, Error> {
    match predictor {
        PredictorType::Onnx => Ok(Arc::new(onnx::OnnxModel::load(dir, what)?)),
        other => Err(Error::Load {
            what: what.to_owned(),
            message: format!(
                "predictor type {} is not served by this worker yet",
                other.as_str_name()
            ),
        }),
    }
}
