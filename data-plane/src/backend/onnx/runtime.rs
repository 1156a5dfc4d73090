//! Finding and starting ONNX Runtime. ort loads `libonnxruntime.so` at run
//! time (no download at build time); the library comes from the PyPI
//! `onnxruntime` wheel that the project's setup installs into its virtualenv.
//! Search order: `ORT_DYLIB_PATH` (ort's own variable), a library next to the
//! executable or in `../lib` (installed layouts, container images), the
//! virtualenv named by `HOTSWAP_VENV`, then the virtualenv this binary was
//! built against. The user sets nothing in the usual case.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;

/// The virtualenv known at build time (see build.rs).
const BUILD_VENV: &str = env!("HOTSWAP_BUILD_VENV");

static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// The process-wide ONNX Runtime environment, started on first use.
pub fn environment() -> Result<Environment, String> {
    ENVIRONMENT
        .get_or_init(|| {
            let path = library_path()?;
            let env = ort::init_from(&path)
                .map_err(|e| format!("loading ONNX Runtime from {}: {e}", path.display()))?
                .with_name("hotswap")
                .build()
                .map_err(|e| format!("starting ONNX Runtime: {e}"))?;
            tracing::info!(library = %path.display(), "ONNX Runtime loaded");
            Ok(env)
        })
        .clone()
}

/// Where `libonnxruntime.so` is, or why it was not found.
pub fn library_path() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("ORT_DYLIB_PATH={} is not a file", path.display()))
        };
    }
    let mut searched = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        searched.push(dir.clone());
        searched.push(dir.join("../lib"));
    }
    for venv in [
        std::env::var("HOTSWAP_VENV").ok(),
        Some(BUILD_VENV.to_owned()),
    ]
    .into_iter()
    .flatten()
    {
        searched.extend(venv_capi_dirs(Path::new(&venv)));
    }
    searched
        .iter()
        .find_map(|dir| library_in(dir))
        .ok_or_else(|| {
            format!(
                "libonnxruntime.so not found (searched {}); run the project's setup \
                 (`make setup`), or set ORT_DYLIB_PATH",
                searched
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// `<venv>/lib/python3.X/site-packages/onnxruntime/capi` for every Python
/// the virtualenv has.
fn venv_capi_dirs(venv: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(venv.join("lib")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
        .map(|e| e.path().join("site-packages/onnxruntime/capi"))
        .collect()
}

/// `libonnxruntime.so` or its versioned name in `dir`.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}
