//! The clients a predictor's constructor gets, as Cortex named them:
//! `python_client` ([`PythonClient`]: the predictor's own `load_model`,
//! with a cache), `onnx_client` ([`OnnxClient`]) and `tensorflow_client`
//! ([`TensorFlowClient`]), whose models run in the worker. Here: what they
//! share, the requests to the worker and the exceptions a user sees.

mod onnx;
mod python;
mod tensorflow;

use hotswap_python::protocol::{FromChild, RunAnswer, TensorInfo, ToChild};
use pyo3::exceptions::{PyLookupError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

pub use self::onnx::OnnxClient;
pub use self::python::PythonClient;
pub use self::tensorflow::TensorFlowClient;
use crate::convert::{from_python, to_python};
use crate::link::Link;

pyo3::create_exception!(
    hotswap,
    ModelLookupError,
    PyLookupError,
    "get_model: no such model or version (a LookupError)."
);

/// Sends a model-client request to the worker and turns a failure into the
/// Python exception a user expects.
fn ask(link: &Link, py: Python<'_>, make: impl FnOnce(u64) -> FromChild) -> PyResult<RunAnswer> {
    let answer = match link.request(py, make)? {
        ToChild::Run { answer, .. } => answer,
        _ => return Err(PyRuntimeError::new_err("unexpected answer from the worker")),
    };
    match answer {
        RunAnswer::Failed {
            message,
            lookup: true,
            ..
        } => Err(ModelLookupError::new_err(message)),
        RunAnswer::Failed {
            message,
            invalid: true,
            ..
        } => Err(PyValueError::new_err(message)),
        RunAnswer::Failed { message, .. } => Err(PyRuntimeError::new_err(message)),
        ok => Ok(ok),
    }
}

/// A `model_version` argument as the worker reads it: "latest" when
/// absent.
fn version_text(version: Option<Bound<'_, PyAny>>) -> PyResult<String> {
    match version {
        None => Ok("latest".to_owned()),
        Some(v) => Ok(v.str()?.to_str()?.to_owned()),
    }
}

/// `predict` of either model client: runs the model in the worker; its
/// outputs in order, each with its description.
fn run_model(
    link: &Link,
    py: Python<'_>,
    model_input: &Bound<'_, PyAny>,
    model_name: Option<String>,
    model_version: Option<Bound<'_, PyAny>>,
) -> PyResult<Vec<(TensorInfo, serde_json::Value)>> {
    let version = version_text(model_version)?;
    let input = from_python(model_input)?;
    let request = |call| FromChild::RunModel {
        call,
        model: model_name,
        version,
        input,
    };
    match ask(link, py, request)? {
        RunAnswer::Outputs { outputs } => Ok(outputs),
        _ => Err(PyRuntimeError::new_err("unexpected answer from the worker")),
    }
}

/// An output as numpy array of its type when numpy is installed, else as
/// nested lists.
fn output_value<'py>(
    py: Python<'py>,
    info: &TensorInfo,
    value: &serde_json::Value,
) -> PyResult<Bound<'py, PyAny>> {
    let value = to_python(py, value)?;
    match py.import("numpy") {
        Ok(np) => np.call_method1("asarray", (value, info.dtype.as_str())),
        Err(_) => Ok(value),
    }
}
