//! `python_client`, the object a PythonPredictor gets: `get_model` asks the
//! worker where a model version's files are (the worker resolves names and
//! `latest` and downloads into its disk cache), calls the predictor's
//! `load_model(path)` on a miss, and keeps what it returned, least recently
//! used out first beyond `cache_size`. A version whose files changed is
//! loaded again; an evicted model is deleted and garbage-collected so its
//! memory really goes back.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::os::unix::net::UnixStream;

use pyo3::exceptions::{PyLookupError, PyRuntimeError};
use pyo3::prelude::*;

use pyo3::exceptions::PyValueError;
use pyo3::types::{PyDict, PyList};

use super::convert::{from_python, to_python};
use super::protocol::{
    FromChild, ModelAnswer, OnnxAnswer, TensorInfo, ToChild, read_sync, write_sync,
};

thread_local! {
    /// Requests that arrived while a `get_model` waited for its answer; the
    /// main loop takes them first.
    pub static DEFERRED: RefCell<VecDeque<ToChild>> = const { RefCell::new(VecDeque::new()) };
}

struct Cached {
    content_hash: String,
    model: Py<PyAny>,
    last_used: u64,
}

/// Sends a request to the worker and reads until its answer (picked by
/// `pick`), setting aside the calls that arrive meanwhile. The GIL is
/// released while waiting.
fn exchange<T: Send>(
    py: Python<'_>,
    socket: &mut UnixStream,
    request: &FromChild,
    pick: fn(ToChild) -> Result<T, ToChild>,
) -> PyResult<T> {
    py.detach(|| -> Result<T, String> {
        write_sync(socket, request).map_err(|e| e.to_string())?;
        loop {
            match read_sync::<ToChild>(socket).map_err(|e| e.to_string())? {
                Some(message) => match pick(message) {
                    Ok(answer) => return Ok(answer),
                    Err(other) => DEFERRED.with(|d| d.borrow_mut().push_back(other)),
                },
                None => return Err("the worker closed the connection".to_owned()),
            }
        }
    })
    .map_err(PyRuntimeError::new_err)
}

#[pyclass(unsendable)]
pub struct PythonClient {
    socket: UnixStream,
    cache_size: usize,
    /// The predictor, set once it is constructed (it gets this client).
    pub predictor: Option<Py<PyAny>>,
    cache: HashMap<(String, u64), Cached>,
    clock: u64,
}

impl PythonClient {
    pub fn new(socket: UnixStream, cache_size: usize) -> PythonClient {
        PythonClient {
            socket,
            cache_size,
            predictor: None,
            cache: HashMap::new(),
            clock: 0,
        }
    }

    fn ask(
        &mut self,
        py: Python<'_>,
        model: Option<String>,
        version: String,
    ) -> PyResult<ModelAnswer> {
        exchange(
            py,
            &mut self.socket,
            &FromChild::GetModel { model, version },
            |m| match m {
                ToChild::Model(answer) => Ok(answer),
                other => Err(other),
            },
        )
    }

    /// Drops the least recently used models beyond the limit, then collects
    /// garbage and returns freed memory to the system.
    fn evict(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.cache_size == 0 || self.cache.len() <= self.cache_size {
            return Ok(());
        }
        while self.cache.len() > self.cache_size {
            let oldest = self
                .cache
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(k, _)| k.clone())
                .expect("non-empty");
            if let Some(gone) = self.cache.remove(&oldest) {
                drop(gone.model);
            }
        }
        py.import("gc")?.call_method0("collect")?;
        // SAFETY: malloc_trim only returns free heap pages to the system.
        unsafe {
            libc::malloc_trim(0);
        }
        Ok(())
    }
}

#[pymethods]
impl PythonClient {
    /// `get_model(model_name=None, model_version="latest")`: what
    /// `load_model` returned for that version.
    #[pyo3(signature = (model_name=None, model_version=None))]
    fn get_model(
        &mut self,
        py: Python<'_>,
        model_name: Option<String>,
        model_version: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let version = match model_version {
            None => "latest".to_owned(),
            Some(v) => v.str()?.to_str()?.to_owned(),
        };
        let (model, version, content_hash, path) = match self.ask(py, model_name, version)? {
            ModelAnswer::Found {
                model,
                version,
                content_hash,
                path,
            } => (model, version, content_hash, path),
            ModelAnswer::Missing {
                message,
                lookup: true,
            } => return Err(PyLookupError::new_err(message)),
            ModelAnswer::Missing { message, .. } => return Err(PyRuntimeError::new_err(message)),
        };
        self.clock += 1;
        let key = (model, version);
        if let Some(cached) = self.cache.get_mut(&key)
            && cached.content_hash == content_hash
        {
            cached.last_used = self.clock;
            return Ok(cached.model.clone_ref(py));
        }
        let predictor = self
            .predictor
            .as_ref()
            .ok_or_else(|| {
                PyRuntimeError::new_err("get_model called before the predictor was constructed")
            })?
            .clone_ref(py);
        // An older content of the version goes first: its replacement is
        // loading now.
        if let Some(stale) = self.cache.remove(&key) {
            drop(stale.model);
        }
        let model = predictor.call_method1(py, "load_model", (path,))?;
        self.cache.insert(
            key,
            Cached {
                content_hash,
                model: model.clone_ref(py),
                last_used: self.clock,
            },
        );
        self.evict(py)?;
        Ok(model)
    }
}

/// `onnx_client`, the object an ONNXPredictor gets: `predict` runs the ONNX
/// model in the worker (ONNX Runtime from Rust) and returns its outputs in
/// order, as numpy arrays when numpy is installed (lists otherwise);
/// `get_model` returns the signatures.
#[pyclass(unsendable)]
pub struct OnnxClient {
    socket: UnixStream,
}

impl OnnxClient {
    pub fn new(socket: UnixStream) -> OnnxClient {
        OnnxClient { socket }
    }

    fn ask(&mut self, py: Python<'_>, request: FromChild) -> PyResult<OnnxAnswer> {
        let answer = exchange(py, &mut self.socket, &request, |m| match m {
            ToChild::Onnx(answer) => Ok(answer),
            other => Err(other),
        })?;
        match answer {
            OnnxAnswer::Failed {
                message,
                lookup: true,
                ..
            } => Err(PyLookupError::new_err(message)),
            OnnxAnswer::Failed {
                message,
                invalid: true,
                ..
            } => Err(PyValueError::new_err(message)),
            OnnxAnswer::Failed { message, .. } => Err(PyRuntimeError::new_err(message)),
            ok => Ok(ok),
        }
    }
}

fn version_text(version: Option<Bound<'_, PyAny>>) -> PyResult<String> {
    match version {
        None => Ok("latest".to_owned()),
        Some(v) => Ok(v.str()?.to_str()?.to_owned()),
    }
}

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
        &mut self,
        py: Python<'_>,
        model_input: Bound<'_, PyAny>,
        model_name: Option<String>,
        model_version: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let request = FromChild::OnnxPredict {
            model: model_name,
            version: version_text(model_version)?,
            input: from_python(&model_input)?,
        };
        let OnnxAnswer::Outputs { outputs } = self.ask(py, request)? else {
            return Err(PyRuntimeError::new_err("unexpected answer from the worker"));
        };
        let numpy = py.import("numpy").ok();
        let list = PyList::empty(py);
        for (info, value) in outputs {
            let value = to_python(py, &value)?;
            let value = match &numpy {
                Some(np) => np.call_method1("asarray", (value, info.dtype.as_str()))?,
                None => value,
            };
            list.append(value)?;
        }
        Ok(list.into_any().unbind())
    }

    #[pyo3(signature = (model_name=None, model_version=None))]
    fn get_model(
        &mut self,
        py: Python<'_>,
        model_name: Option<String>,
        model_version: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let request = FromChild::OnnxSignature {
            model: model_name,
            version: version_text(model_version)?,
        };
        let OnnxAnswer::Signature { inputs, outputs } = self.ask(py, request)? else {
            return Err(PyRuntimeError::new_err("unexpected answer from the worker"));
        };
        let model = PyDict::new(py);
        // The ONNX Runtime session lives in the worker, not in Python.
        model.set_item("session", py.None())?;
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
