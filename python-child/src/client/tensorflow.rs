//! `tensorflow_client`.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::{output_value, run_model};
use crate::link::Link;

/// `tensorflow_client`, the object a TensorFlowPredictor gets: `predict`
/// runs the SavedModel in the worker (TensorFlow's C API from Rust) and
/// returns a dict of output name -> values (numpy arrays when numpy is
/// installed, lists otherwise), as TensorFlow Serving's response converted
/// to a dict.
#[pyclass(frozen)]
pub struct TensorFlowClient {
    link: Arc<Link>,
}

impl TensorFlowClient {
    pub fn new(link: Arc<Link>) -> TensorFlowClient {
        TensorFlowClient { link }
    }
}

#[pymethods]
impl TensorFlowClient {
    #[pyo3(signature = (model_input, model_name=None, model_version=None))]
    fn predict(
        &self,
        py: Python<'_>,
        model_input: Bound<'_, PyAny>,
        model_name: Option<String>,
        model_version: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let outputs = run_model(&self.link, py, &model_input, model_name, model_version)?;
        let dict = PyDict::new(py);
        for (info, value) in outputs {
            dict.set_item(&info.name, output_value(py, &info, &value)?)?;
        }
        Ok(dict.into_any().unbind())
    }
}
