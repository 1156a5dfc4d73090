//! Loading TensorFlow's library. The `tensorflow` crate is built with
//! runtime linking: `libtensorflow.so` (the PyPI tensorflow-cpu wheel's
//! `libtensorflow_cc.so.2`, linked to that name by the project's setup) is
//! opened on the first SavedModel load with its symbols kept local, so
//! processes that never serve TensorFlow (Python predictor children) never
//! load it. The crate looks in `TENSORFLOW_DIR`, which the binary points at
//! the folder the [`RuntimeConfig`] search finds when the user has not set
//! it (see `tensorflow_library_dir`).

use std::sync::OnceLock;

use crate::backend::{RuntimeConfig, RuntimeError};

static LOADED: OnceLock<Result<(), RuntimeError>> = OnceLock::new();

/// Loads the library once per process; later calls return the first
/// outcome (a library that is not there does not appear by retrying).
pub fn ensure_loaded(config: &RuntimeConfig) -> Result<(), RuntimeError> {
    LOADED
        .get_or_init(|| {
            // The crate's own search: TENSORFLOW_DIR, LD_LIBRARY_PATH, then
            // the standard install folders.
            let Some(path) = tensorflow::library::find() else {
                return Err(RuntimeError::TensorFlowNotFound {
                    searched: config.tensorflow_searched(),
                });
            };
            tensorflow::library::load().map_err(|message| RuntimeError::TensorFlowLoad {
                path: path.clone(),
                message,
            })?;
            tracing::info!(library = %path.display(), "TensorFlow loaded");
            Ok(())
        })
        .clone()
}
