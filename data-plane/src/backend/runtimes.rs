//! Where a worker finds the inference runtimes' shared libraries and how it
//! runs them. The binary reads the environment once into a
//! [`RuntimeConfig`]; the backends only look where it says. Both libraries
//! come from PyPI wheels the project's setup installs into its virtualenv
//! (ONNX Runtime's `libonnxruntime.so` from `onnxruntime`, TensorFlow's C
//! library from `tensorflow-cpu`), or sit next to the binary or in `../lib`
//! in installed layouts and the container image. The user sets nothing in
//! the usual case.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the inference runtimes' libraries are and how their sessions
/// run, as the binary read them from its flags and environment.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// ONNX Runtime's library, when the user names it (`ORT_DYLIB_PATH`,
    /// ort's own variable): used as is, nothing else is searched.
    pub onnxruntime: Option<PathBuf>,
    /// The folder of the running binary: it and `../lib` are searched first.
    pub exe_dir: Option<PathBuf>,
    /// Virtualenvs searched next, in order (`HOTSWAP_VENV`, then the one the
    /// binary was built against).
    pub venvs: Vec<PathBuf>,
    /// The folder TensorFlow's library is opened from (`TENSORFLOW_DIR`, as
    /// the binary found or was given it); the `tensorflow` crate reads the
    /// variable itself, this is for messages.
    pub tensorflow_dir: Option<PathBuf>,
    /// Inter-op threads of TensorFlow sessions; -1 runs a call's ops in the
    /// calling thread (see `tensorflow.rs`).
    pub tf_inter_op_threads: i32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            onnxruntime: None,
            exe_dir: None,
            venvs: Vec::new(),
            tensorflow_dir: None,
            tf_inter_op_threads: -1,
        }
    }
}

/// The file the `tensorflow` crate opens.
pub(crate) const TENSORFLOW_LIBRARY: &str = "libtensorflow.so";

/// Why an inference runtime's library could not be found or started.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    /// `ORT_DYLIB_PATH` names something that is not a file.
    #[error("ORT_DYLIB_PATH={} is not a file", .0.display())]
    OnnxPathNotAFile(PathBuf),

    /// No ONNX Runtime library in any folder searched.
    #[error(
        "libonnxruntime.so not found (searched {}); run the project's setup (`make setup`), \
         or set ORT_DYLIB_PATH",
        shown(.searched)
    )]
    OnnxNotFound {
        /// The folders searched, in order.
        searched: Vec<PathBuf>,
    },

    /// The ONNX Runtime library was found but did not load.
    #[error("loading ONNX Runtime from {}", .path.display())]
    OnnxLoad {
        /// The library's path.
        path: PathBuf,
        /// ort's error (shared: the error is cloned to every load that
        /// asks).
        #[source]
        source: Arc<ort::LoadDynamicError>,
    },

    /// ONNX Runtime loaded but its environment did not start.
    #[error("starting ONNX Runtime")]
    OnnxStart(#[source] Arc<ort::Error>),

    /// No TensorFlow library in any folder searched.
    #[error(
        "TensorFlow's library {TENSORFLOW_LIBRARY} was not found ({searched}, LD_LIBRARY_PATH, \
         /usr/local/lib); run the project's setup (`make setup`), or set TENSORFLOW_DIR to the \
         folder holding it"
    )]
    TensorFlowNotFound {
        /// Where the worker looked, for the message.
        searched: String,
    },

    /// The `tensorflow` crate reports this one as text.
    #[error("loading TensorFlow from {}: {message}", .path.display())]
    TensorFlowLoad {
        /// The library's path.
        path: PathBuf,
        /// What the `tensorflow` crate said.
        message: String,
    },
}

fn shown(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl RuntimeConfig {
    /// The binary's folder and `../lib`.
    fn installed_dirs(&self) -> Vec<PathBuf> {
        self.exe_dir
            .iter()
            .flat_map(|dir| [dir.clone(), dir.join("../lib")])
            .collect()
    }

    /// Where `libonnxruntime.so` is.
    pub fn onnxruntime_library(&self) -> Result<PathBuf, RuntimeError> {
        if let Some(path) = &self.onnxruntime {
            return if path.is_file() {
                Ok(path.clone())
            } else {
                Err(RuntimeError::OnnxPathNotAFile(path.clone()))
            };
        }
        let mut searched = self.installed_dirs();
        for venv in &self.venvs {
            searched.extend(venv_capi_dirs(venv));
        }
        searched
            .iter()
            .find_map(|dir| onnxruntime_in(dir))
            .ok_or(RuntimeError::OnnxNotFound { searched })
    }

    /// Folders that may hold TensorFlow's library, in search order.
    fn tensorflow_candidates(&self) -> Vec<PathBuf> {
        let mut dirs = self.installed_dirs();
        dirs.extend(self.venvs.iter().map(|v| v.join("tensorflow-lib")));
        dirs
    }

    /// Where the worker looked for TensorFlow's library, for messages.
    #[cfg(feature = "tensorflow")]
    pub(crate) fn tensorflow_searched(&self) -> String {
        match &self.tensorflow_dir {
            Some(dir) => format!("searched TENSORFLOW_DIR={}", dir.display()),
            None => format!(
                "TENSORFLOW_DIR unset and no {TENSORFLOW_LIBRARY} in {}",
                shown(&self.tensorflow_candidates())
            ),
        }
    }
}

/// The first folder that holds TensorFlow's library, for the binary to
/// point `TENSORFLOW_DIR` at when the user has not.
pub fn tensorflow_library_dir(config: &RuntimeConfig) -> Option<PathBuf> {
    config
        .tensorflow_candidates()
        .into_iter()
        .find(|d| d.join(TENSORFLOW_LIBRARY).is_file())
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
fn onnxruntime_in(dir: &Path) -> Option<PathBuf> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_are_found_where_the_config_says() {
        let root = tempfile::tempdir().unwrap();
        let venv = root.path().join("venv");
        let capi = venv.join("lib/python3.11/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        std::fs::write(capi.join("libonnxruntime.so.1.32.0"), b"").unwrap();
        let tf = venv.join("tensorflow-lib");
        std::fs::create_dir_all(&tf).unwrap();
        std::fs::write(tf.join(TENSORFLOW_LIBRARY), b"").unwrap();

        let config = RuntimeConfig {
            exe_dir: Some(root.path().join("bin")),
            venvs: vec![venv.clone()],
            ..RuntimeConfig::default()
        };
        assert_eq!(
            config.onnxruntime_library().unwrap(),
            capi.join("libonnxruntime.so.1.32.0")
        );
        assert_eq!(tensorflow_library_dir(&config), Some(tf));

        let nowhere = RuntimeConfig::default();
        let err = nowhere.onnxruntime_library().unwrap_err().to_string();
        assert!(err.contains("not found"), "{err}");
        assert_eq!(tensorflow_library_dir(&nowhere), None);
        let named = RuntimeConfig {
            onnxruntime: Some(root.path().join("missing.so")),
            ..config
        };
        assert!(matches!(
            named.onnxruntime_library(),
            Err(RuntimeError::OnnxPathNotAFile(_))
        ));
    }
}
