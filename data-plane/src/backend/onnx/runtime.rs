//! Starting ONNX Runtime: ort loads `libonnxruntime.so` at run time (no
//! download at build time), from where the [`RuntimeConfig`] says, once per
//! process.

use std::sync::{Arc, OnceLock};

use ort::environment::Environment;

use crate::backend::{RuntimeConfig, RuntimeError};

static ENVIRONMENT: OnceLock<Result<Environment, RuntimeError>> = OnceLock::new();

/// The process-wide ONNX Runtime environment, started on first use (later
/// calls get the first outcome: a library that is not there does not appear
/// by retrying).
pub fn environment(config: &RuntimeConfig) -> Result<Environment, RuntimeError> {
    ENVIRONMENT
        .get_or_init(|| {
            let path = config.onnxruntime_library()?;
            let env = ort::init_from(&path)
                .map_err(|e| RuntimeError::OnnxLoad {
                    path: path.clone(),
                    source: Arc::new(e),
                })?
                .with_name("hotswap")
                .build()
                .map_err(|e| RuntimeError::OnnxStart(Arc::new(e)))?;
            tracing::info!(library = %path.display(), "ONNX Runtime loaded");
            Ok(env)
        })
        .clone()
}
