//! Request bodies into Python and `predict`'s results out, as Cortex
//! handed them over: parsed JSON, `str`, `bytes` or a form mapping in; JSON
//! values, `str`, `bytes` or a response object out.

use std::collections::BTreeMap;

use hotswap_python::protocol::{FormValue, Output, Payload};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyString};

use crate::convert::{from_python, to_python};

/// A file from a multipart form, with the attributes Cortex users read from
/// starlette's `UploadFile`: `filename`, `content_type` and `file` (a
/// binary file object positioned at the start).
#[pyclass(frozen, module = "hotswap")]
pub struct UploadFile {
    #[pyo3(get)]
    filename: String,
    #[pyo3(get)]
    content_type: Option<String>,
    #[pyo3(get)]
    file: Py<PyAny>,
}

#[pymethods]
impl UploadFile {
    /// The whole file (from where `file` stands).
    fn read(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.file.call_method0(py, "read")
    }

    fn __repr__(&self) -> String {
        format!("UploadFile(filename={:?})", self.filename)
    }
}

pub fn payload_to_python<'py>(py: Python<'py>, payload: &Payload) -> PyResult<Bound<'py, PyAny>> {
    Ok(match payload {
        Payload::Json(value) => to_python(py, value)?,
        Payload::Text(text) => PyString::new(py, text).into_any(),
        Payload::Bytes(data) => PyBytes::new(py, data).into_any(),
        Payload::Form(fields) => {
            let form = PyDict::new(py);
            let bytes_io = py.import("io")?.getattr("BytesIO")?;
            for field in fields {
                let value = match &field.value {
                    FormValue::Text { text } => PyString::new(py, text).into_any(),
                    FormValue::File {
                        filename,
                        content_type,
                        data,
                    } => Bound::new(
                        py,
                        UploadFile {
                            filename: filename.clone(),
                            content_type: content_type.clone(),
                            file: bytes_io.call1((PyBytes::new(py, data),))?.unbind(),
                        },
                    )?
                    .into_any(),
                };
                form.set_item(&field.name, value)?;
            }
            form.into_any()
        }
    })
}

pub fn strings_to_python<'py>(
    py: Python<'py>,
    map: &BTreeMap<String, String>,
) -> PyResult<Bound<'py, PyAny>> {
    let dict = PyDict::new(py);
    for (k, v) in map {
        dict.set_item(k, v)?;
    }
    Ok(dict.into_any())
}

/// What `predict` returned, as the worker answers it.
pub fn output_from_python(value: &Bound<'_, PyAny>) -> PyResult<Output> {
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(Output::Text {
            text: text.to_str()?.to_owned(),
        });
    }
    if let Some(data) = bytes_of(value)? {
        return Ok(Output::Bytes { data });
    }
    // starlette's Response, or anything shaped like it.
    if value.hasattr("status_code")? && value.hasattr("body")? {
        let status_code: u16 = value.getattr("status_code")?.extract()?;
        if !(100..=599).contains(&status_code) {
            return Err(PyValueError::new_err(format!(
                "the response's status_code {status_code} is not an HTTP status"
            )));
        }
        let body = value.getattr("body")?;
        let body = match bytes_of(&body)? {
            Some(data) => data,
            None => match body.cast::<PyString>() {
                Ok(text) => text.to_str()?.as_bytes().to_vec(),
                Err(_) => {
                    return Err(PyValueError::new_err(
                        "the response's body must be bytes or str",
                    ));
                }
            },
        };
        let media_type = match value.getattr("media_type") {
            Ok(m) if !m.is_none() => Some(m.extract::<String>()?),
            _ => None,
        };
        let mut headers = BTreeMap::new();
        if let Ok(h) = value.getattr("headers")
            && !h.is_none()
        {
            for item in h.call_method0("items")?.try_iter()? {
                let (k, v): (String, String) = item?.extract()?;
                headers.insert(k.to_ascii_lowercase(), v);
            }
        }
        return Ok(Output::Response {
            status_code,
            media_type,
            headers,
            body,
        });
    }
    Ok(Output::Json {
        value: from_python(value)?,
    })
}

fn bytes_of(value: &Bound<'_, PyAny>) -> PyResult<Option<Vec<u8>>> {
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(Some(b.as_bytes().to_vec()));
    }
    if let Ok(b) = value.cast::<PyByteArray>() {
        return Ok(Some(b.to_vec()));
    }
    Ok(None)
}
