//! `onnx_client` and the session object its `get_model` returns, shaped
//! like onnxruntime's `InferenceSession`.

use std::sync::Arc;

use hotswap_python::protocol::{FromChild, RunAnswer, TensorInfo};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::{ask, output_value, run_model, version_text};
use crate::link::Link;

/// `onnx_client`, the object an ONNXPredictor gets: `predict` runs the ONNX
/// model in the worker (ONNX Runtime from Rust) and returns its outputs in
/// order, as numpy arrays when numpy is installed (lists otherwise);
/// `get_model` returns a session object (`OnnxSession`) and the signatures.
#[pyclass(frozen)]
pub struct OnnxClient {
    link: Arc<Link>,
}

impl OnnxClient {
    pub fn new(link: Arc<Link>) -> OnnxClient {
        OnnxClient { link }
    }
}

/// The `input_signatures` / `output_signatures` of `get_model`: name ->
/// `shape` and `type`.
fn signatures<'py>(py: Python<'py>, tensors: &[TensorInfo]) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for t in tensors {
        let d = PyDict::new(py);
        d.set_item("shape", t.shape.clone())?;
        d.set_item("type", &t.dtype)?;
        out.set_item(&t.name, d)?;
    }
    Ok(out)
}

#[pymethods]
impl OnnxClient {
    #[pyo3(signature = (model_input, model_name=None, model_version=None))]
    fn predict(
        &self,
        py: Python<'_>,
        model_input: Bound<'_, PyAny>,
        model_name: Option<String>,
        model_version: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let outputs = run_model(&self.link, py, &model_input, model_name, model_version)?;
        let list = PyList::empty(py);
        for (info, value) in outputs {
            list.append(output_value(py, &info, &value)?)?;
        }
        Ok(list.into_any().unbind())
    }

    #[pyo3(signature = (model_name=None, model_version=None))]
    fn get_model(
        &self,
        py: Python<'_>,
        model_name: Option<String>,
        model_version: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let version = version_text(model_version)?;
        let (model_name_for_session, version_for_session) = (model_name.clone(), version.clone());
        let request = |call| FromChild::ModelSignature {
            call,
            model: model_name,
            version,
        };
        let RunAnswer::Signature { inputs, outputs } = ask(&self.link, py, request)? else {
            return Err(PyRuntimeError::new_err("unexpected answer from the worker"));
        };
        let model = PyDict::new(py);
        let session = OnnxSession {
            link: self.link.clone(),
            model: model_name_for_session,
            version: version_for_session,
            inputs: inputs.iter().map(NodeArg::of).collect(),
            outputs: outputs.iter().map(NodeArg::of).collect(),
        };
        model.set_item("session", Bound::new(py, session)?)?;
        let listed = PyList::empty(py);
        for t in &inputs {
            let d = PyDict::new(py);
            d.set_item("name", &t.name)?;
            d.set_item("shape", t.shape.clone())?;
            d.set_item("type", &t.dtype)?;
            listed.append(d)?;
        }
        model.set_item("signatures", listed)?;
        model.set_item("input_signatures", signatures(py, &inputs)?)?;
        model.set_item("output_signatures", signatures(py, &outputs)?)?;
        Ok(model.into_any().unbind())
    }
}

/// `onnx_client.get_model()["session"]`: what code written against
/// onnxruntime's `InferenceSession` calls (`run`, `get_inputs`,
/// `get_outputs`), backed by the worker's own session of that model
/// version (ONNX Runtime from Rust; nothing is loaded in Python).
#[pyclass(frozen, module = "hotswap")]
pub struct OnnxSession {
    link: Arc<Link>,
    model: Option<String>,
    version: String,
    inputs: Vec<NodeArg>,
    outputs: Vec<NodeArg>,
}

/// An input or output as onnxruntime describes it: `name`, `shape` (None
/// for a free dimension) and `type` (`tensor(float)`, ...).
#[pyclass(frozen, module = "hotswap")]
#[derive(Clone)]
pub struct NodeArg {
    #[pyo3(get)]
    name: String,
    #[pyo3(get)]
    shape: Vec<Option<i64>>,
    #[pyo3(get, name = "type")]
    kind: String,
}

impl NodeArg {
    fn of(t: &TensorInfo) -> NodeArg {
        // onnxruntime's element names for numpy's.
        let element = match t.dtype.as_str() {
            "float32" => "float",
            "float64" => "double",
            "float16" => "float16",
            "str" | "object" => "string",
            other => other,
        };
        NodeArg {
            name: t.name.clone(),
            shape: t.shape.iter().map(|d| (*d >= 0).then_some(*d)).collect(),
            kind: format!("tensor({element})"),
        }
    }
}

#[pymethods]
impl NodeArg {
    fn __repr__(&self) -> String {
        format!(
            "NodeArg(name={:?}, type={:?}, shape={:?})",
            self.name, self.kind, self.shape
        )
    }
}

#[pymethods]
impl OnnxSession {
    /// onnxruntime's `run(output_names, input_feed)`: the named outputs (all
    /// when None) in the order asked, as numpy arrays (lists without numpy).
    #[pyo3(signature = (output_names, input_feed, run_options=None))]
    fn run(
        &self,
        py: Python<'_>,
        output_names: Option<Vec<String>>,
        input_feed: Bound<'_, PyDict>,
        run_options: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let _ = run_options;
        let version = Some(PyString::new(py, &self.version).into_any());
        let outputs = run_model(
            &self.link,
            py,
            input_feed.as_any(),
            self.model.clone(),
            version,
        )?;
        let wanted =
            output_names.unwrap_or_else(|| self.outputs.iter().map(|o| o.name.clone()).collect());
        let list = PyList::empty(py);
        for name in &wanted {
            let (info, value) = outputs
                .iter()
                .find(|(i, _)| &i.name == name)
                .ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "unknown output `{name}`; the model's outputs: {}",
                        self.outputs
                            .iter()
                            .map(|o| o.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            list.append(output_value(py, info, value)?)?;
        }
        Ok(list.into_any().unbind())
    }

    fn get_inputs(&self) -> Vec<NodeArg> {
        self.inputs.clone()
    }

    fn get_outputs(&self) -> Vec<NodeArg> {
        self.outputs.clone()
    }
}
