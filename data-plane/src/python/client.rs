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

use super::protocol::{FromChild, ModelAnswer, ToChild, read_sync, write_sync};

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

    /// Sends the request and reads until the model answer, setting aside
    /// anything else that arrives meanwhile.
    fn ask(
        &mut self,
        py: Python<'_>,
        model: Option<String>,
        version: String,
    ) -> PyResult<ModelAnswer> {
        let socket = &mut self.socket;
        py.detach(|| -> Result<ModelAnswer, String> {
            write_sync(socket, &FromChild::GetModel { model, version })
                .map_err(|e| e.to_string())?;
            loop {
                match read_sync::<ToChild>(socket).map_err(|e| e.to_string())? {
                    Some(ToChild::Model(answer)) => return Ok(answer),
                    Some(other) => DEFERRED.with(|d| d.borrow_mut().push_back(other)),
                    None => return Err("the worker closed the connection".to_owned()),
                }
            }
        })
        .map_err(PyRuntimeError::new_err)
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
