//! Finding and loading TensorFlow's library. The `tensorflow` crate is built
//! with runtime linking: `libtensorflow.so` (the PyPI tensorflow-cpu wheel's
//! `libtensorflow_cc.so.2`, linked to that name by the project's setup) is
//! opened on the first SavedModel load with its symbols kept local, so
//! processes that never serve TensorFlow (Python predictor children) never
//! load it. The crate looks in `TENSORFLOW_DIR`; when the user has not set
//! it, `hotswap` sets it at start to the first folder holding the library:
//! next to the executable or in `../lib` (installed layouts, the container
//! image), the virtualenv named by `HOTSWAP_VENV`, then the virtualenv this
//! binary was built against (in `tensorflow-lib/`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The file the `tensorflow` crate opens.
const LIBRARY: &str = "libtensorflow.so";

/// The variable the `tensorflow` crate reads.
const DIR_VAR: &str = "TENSORFLOW_DIR";

/// The virtualenv known at build time (see build.rs).
const BUILD_VENV: &str = env!("HOTSWAP_BUILD_VENV");

static LOADED: OnceLock<Result<(), String>> = OnceLock::new();

/// Loads the library once per process; later calls return the first
/// outcome (a library that is not there does not appear by retrying).
pub fn ensure_loaded() -> Result<(), String> {
    LOADED
        .get_or_init(|| {
            // The crate's own search: TENSORFLOW_DIR, LD_LIBRARY_PATH, then
            // the standard install folders.
            let Some(path) = tensorflow::library::find() else {
                return Err(format!(
                    "TensorFlow's library {LIBRARY} was not found ({}, LD_LIBRARY_PATH, \
                     /usr/local/lib); run the project's setup (`make setup`), or set \
                     {DIR_VAR} to the folder holding it",
                    searched_text()
                ));
            };
            tensorflow::library::load()
                .map_err(|e| format!("loading TensorFlow from {}: {e}", path.display()))?;
            tracing::info!(library = %path.display(), "TensorFlow loaded");
            Ok(())
        })
        .clone()
}

/// Sets `TENSORFLOW_DIR` to the folder found by the search above, unless
/// the user set it.
///
/// # Safety
/// Changes the process environment: call it before any other thread
/// starts (first thing in `main`).
pub unsafe fn prepare_env() {
    if std::env::var_os(DIR_VAR).is_some() {
        return;
    }
    if let Some(dir) = candidates().into_iter().find(|d| d.join(LIBRARY).is_file()) {
        // SAFETY: the caller guarantees no other thread exists yet.
        unsafe { std::env::set_var(DIR_VAR, dir) };
    }
}

fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(dir.clone());
        dirs.push(dir.join("../lib"));
    }
    for venv in [
        std::env::var("HOTSWAP_VENV").ok(),
        Some(BUILD_VENV.to_owned()),
    ]
    .into_iter()
    .flatten()
    {
        dirs.push(Path::new(&venv).join("tensorflow-lib"));
    }
    dirs
}

fn searched_text() -> String {
    match std::env::var_os(DIR_VAR) {
        Some(dir) => format!("searched {DIR_VAR}={}", Path::new(&dir).display()),
        None => {
            let dirs: Vec<String> = candidates()
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            format!("{DIR_VAR} unset and no {LIBRARY} in {}", dirs.join(", "))
        }
    }
}
