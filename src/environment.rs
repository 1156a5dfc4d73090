//! Everything hotswap reads from its environment, read once at start and
//! passed down as configuration: the libraries never read it themselves
//! (clippy.toml forbids it outside this file). Variables that other
//! programs' libraries read themselves (TensorFlow's, OpenTelemetry's
//! exporter, numeric libraries in Python processes) are prepared here too.

#![allow(
    clippy::disallowed_methods,
    reason = "the one place that reads and prepares the process environment"
)]

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, bail};
use hotswap_data_plane::RuntimeConfig;
use hotswap_data_plane::backend::tensorflow_library_dir;

/// The virtualenv the binary was built against (see build.rs).
const BUILD_VENV: &str = env!("HOTSWAP_BUILD_VENV");

/// Overrides the inter-op threads of TensorFlow sessions (0: TensorFlow's
/// own pool of one thread per core; default -1, a call's ops in its own
/// thread).
const TF_INTER_OP_THREADS: &str = "HOTSWAP_TF_INTER_OP_THREADS";

/// What the services take from the environment.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Where the worker finds ONNX Runtime and TensorFlow.
    pub runtimes: RuntimeConfig,
    /// What Python predictor processes inherit: the basics and the
    /// numeric-library thread counts the user set, no credentials
    /// (`hotswap_python::inherited`).
    pub python_env: Vec<(String, String)>,
    /// `STORAGE_EMULATOR_HOST`, Google's variable for a GCS emulator.
    pub gcs_emulator_host: Option<String>,
    /// Whether an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT
    /// or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); the exporter reads the
    /// variables itself.
    pub otlp: bool,
    /// Whether OTEL_SERVICE_NAME names the process.
    pub otel_service_name: bool,
}

impl Environment {
    /// Reads the environment and sets the variables libraries read for
    /// themselves.
    ///
    /// # Safety
    /// Changes the process environment: call it before any other thread
    /// exists (first thing in `main`).
    #[allow(unsafe_code)]
    pub unsafe fn prepare() -> anyhow::Result<Environment> {
        if std::env::var_os("TF_CPP_MIN_LOG_LEVEL").is_none() {
            // TensorFlow logs every load at INFO to stderr; keep its
            // warnings and errors only, unless the user chose.
            // SAFETY: the caller guarantees no other thread exists yet.
            unsafe { std::env::set_var("TF_CPP_MIN_LOG_LEVEL", "2") };
        }
        let mut runtimes = RuntimeConfig {
            onnxruntime: std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from),
            exe_dir: std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(PathBuf::from)),
            venvs: std::env::var_os("HOTSWAP_VENV")
                .map(PathBuf::from)
                .into_iter()
                .chain([PathBuf::from(BUILD_VENV)])
                .collect(),
            tensorflow_dir: std::env::var_os("TENSORFLOW_DIR").map(PathBuf::from),
            tf_inter_op_threads: inter_op_threads(std::env::var_os(TF_INTER_OP_THREADS))?,
        };
        // The `tensorflow` crate opens its library from TENSORFLOW_DIR;
        // point it at the folder the search finds, unless the user did.
        if runtimes.tensorflow_dir.is_none()
            && let Some(dir) = tensorflow_library_dir(&runtimes)
        {
            // SAFETY: as above.
            unsafe { std::env::set_var("TENSORFLOW_DIR", &dir) };
            runtimes.tensorflow_dir = Some(dir);
        }
        let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        Ok(Environment {
            runtimes,
            python_env: hotswap_python::inherited(
                std::env::vars_os()
                    .filter_map(|(n, v)| Some((n.into_string().ok()?, v.into_string().ok()?))),
            ),
            gcs_emulator_host: std::env::var("STORAGE_EMULATOR_HOST").ok(),
            otlp: set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            otel_service_name: set("OTEL_SERVICE_NAME"),
        })
    }
}

fn inter_op_threads(value: Option<OsString>) -> anyhow::Result<i32> {
    let Some(value) = value else { return Ok(-1) };
    let text = value
        .to_str()
        .with_context(|| format!("{TF_INTER_OP_THREADS} is not UTF-8"))?;
    match text.trim().parse::<i32>() {
        Ok(n) => Ok(n),
        Err(_) => bail!("{TF_INTER_OP_THREADS}={text:?} is not an integer"),
    }
}
