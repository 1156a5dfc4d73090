//! `python_client`, the object a PythonPredictor gets: `get_model` asks the
//! worker where a model version's files are (the worker resolves names and
//! `latest` and downloads into its disk cache), calls the predictor's
//! `load_model(path)` on a miss, and keeps what it returned, least recently
//! used out first beyond `cache_size`. A version whose files changed is
//! loaded again; an evicted model is deleted and garbage-collected so its
//! memory really goes back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyLookupError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::convert::{from_python, to_python};
use super::link::Link;
use super::protocol::{FromChild, ModelAnswer, RunAnswer, TensorInfo, ToChild};
use crate::lock;

pyo3::create_exception!(
    hotswap,
    ModelLookupError,
    PyLookupError,
    "get_model: no such model or version (a LookupError)."
);

thread_local! {
    /// Whether this thread is inside a load_model call.
    static LOADING_HERE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

struct Cached {
    content_hash: String,
    model: Py<PyAny>,
    last_used: u64,
}

/// A version whose `load_model` failed: "latest" passes over it until the
/// retry time, or until its files change.
struct Failed {
    content_hash: String,
    message: String,
    attempts: u32,
    retry_at: Instant,
}

/// First retry of a failed `load_model`; doubles per failure up to the
/// maximum (as the worker retries its own model loads).
const RETRY_START: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Cache {
    models: HashMap<(String, u64), Cached>,
    clock: u64,
}

#[pyclass(frozen)]
pub struct PythonClient {
    link: Arc<Link>,
    cache_size: usize,
    /// The predictor, set once it is constructed (it gets this client).
    predictor: Mutex<Option<Py<PyAny>>>,
    cache: Mutex<Cache>,
    /// Held while a model loads: concurrent first calls (threads of this
    /// process) load a version once.
    loading: Mutex<()>,
    failed: Mutex<HashMap<(String, u64), Failed>>,
}

/// Takes `mutex` without holding the GIL while waiting: the holder may need
/// the GIL to finish.
fn lock_detached<'a, T>(py: Python<'_>, mutex: &'a Mutex<T>) -> std::sync::MutexGuard<'a, T> {
    loop {
        match mutex.try_lock() {
            Ok(guard) => return guard,
            Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                py.detach(|| std::thread::sleep(Duration::from_micros(200)));
            }
        }
    }
}

impl PythonClient {
    pub fn new(link: Arc<Link>, cache_size: usize) -> PythonClient {
        PythonClient {
            link,
            cache_size,
            predictor: Mutex::new(None),
            cache: Mutex::new(Cache::default()),
            loading: Mutex::new(()),
            failed: Mutex::new(HashMap::new()),
        }
    }

    /// Drops a cached model whose version changed or went away, and gives
    /// its memory back.
    pub fn evict(
        &self,
        py: Python<'_>,
        model: String,
        version: u64,
        content_hash: &str,
    ) -> PyResult<()> {
        let key = (model, version);
        let gone = {
            let mut cache = lock(&self.cache);
            match cache.models.get(&key) {
                Some(c) if c.content_hash != content_hash => cache.models.remove(&key),
                _ => None,
            }
        };
        if let Some(gone) = gone {
            drop(gone);
            py.import("gc")?.call_method0("collect")?;
            crate::fd::trim_heap();
        }
        Ok(())
    }

    pub fn set_predictor(&self, predictor: Py<PyAny>) {
        *lock(&self.predictor) = Some(predictor);
    }

    fn ask(
        &self,
        py: Python<'_>,
        model: Option<String>,
        version: String,
        below: Option<u64>,
    ) -> PyResult<ModelAnswer> {
        match self.link.request(py, |call| FromChild::GetModel {
            call,
            model,
            version,
            below,
        })? {
            ToChild::Model { answer, .. } => Ok(answer),
            _ => Err(PyRuntimeError::new_err("unexpected answer from the worker")),
        }
    }

    /// The cached model for `key` if its content is current.
    fn cached(&self, key: &(String, u64), content_hash: &str, py: Python<'_>) -> Option<Py<PyAny>> {
        let mut cache = lock(&self.cache);
        cache.clock += 1;
        let clock = cache.clock;
        let hit = cache
            .models
            .get_mut(key)
            .filter(|c| c.content_hash == content_hash)?;
        hit.last_used = clock;
        Some(hit.model.clone_ref(py))
    }

    /// Inserts a loaded model, then drops the least recently used ones
    /// beyond the limit, collects garbage and returns freed memory.
    fn insert(
        &self,
        py: Python<'_>,
        key: (String, u64),
        content_hash: String,
        model: &Py<PyAny>,
    ) -> PyResult<()> {
        let evicted: Vec<Cached> = {
            let mut cache = lock(&self.cache);
            cache.clock += 1;
            let clock = cache.clock;
            cache.models.insert(
                key,
                Cached {
                    content_hash,
                    model: model.clone_ref(py),
                    last_used: clock,
                },
            );
            let mut gone = Vec::new();
            while self.cache_size > 0 && cache.models.len() > self.cache_size {
                let oldest = cache
                    .models
                    .iter()
                    .min_by_key(|(_, c)| c.last_used)
                    .map(|(k, _)| k.clone())
                    .expect("non-empty");
                gone.extend(cache.models.remove(&oldest));
            }
            gone
        };
        if !evicted.is_empty() {
            drop(evicted);
            py.import("gc")?.call_method0("collect")?;
            crate::fd::trim_heap();
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
        &self,
        py: Python<'_>,
        model_name: Option<String>,
        model_version: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let version = version_text(model_version)?;
        let latest = matches!(version.trim(), "" | "latest");
        // "latest" falls back, as the worker's own models do: past a version
        // whose load_model fails (now, or recently) to the next lower one.
        let mut below = None;
        let mut first_error: Option<PyErr> = None;
        loop {
            let (model, number, content_hash, path) =
                match self.ask(py, model_name.clone(), version.clone(), below)? {
                    ModelAnswer::Found {
                        model,
                        version,
                        content_hash,
                        path,
                    } => (model, version, content_hash, path),
                    ModelAnswer::Missing { .. } if first_error.is_some() => {
                        return Err(first_error.expect("checked"));
                    }
                    ModelAnswer::Missing {
                        message,
                        lookup: true,
                    } => return Err(ModelLookupError::new_err(message)),
                    ModelAnswer::Missing { message, .. } => {
                        return Err(PyRuntimeError::new_err(message));
                    }
                };
            let key = (model, number);
            if let Some(model) = self.cached(&key, &content_hash, py) {
                return Ok(model);
            }
            if latest && let Some(message) = self.failed_recently(&key, &content_hash) {
                first_error.get_or_insert_with(|| PyRuntimeError::new_err(message));
                below = Some(number);
                continue;
            }
            match self.load(py, key.clone(), content_hash.clone(), path) {
                Ok(model) => {
                    lock(&self.failed).remove(&key);
                    return Ok(model);
                }
                Err(e) if latest => {
                    self.record_failure(py, key, content_hash, &e);
                    first_error.get_or_insert(e);
                    below = Some(number);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl PythonClient {
    /// Calls `load_model(path)` for `key` unless another thread just did,
    /// and caches what it returns.
    fn load(
        &self,
        py: Python<'_>,
        key: (String, u64),
        content_hash: String,
        path: String,
    ) -> PyResult<Py<PyAny>> {
        // A load_model that calls get_model itself (one model built from
        // another) already holds the load lock on this thread.
        let _loading = if LOADING_HERE.get() {
            None
        } else {
            Some(lock_detached(py, &self.loading))
        };
        // Another thread may have loaded it while this one waited.
        if let Some(model) = self.cached(&key, &content_hash, py) {
            return Ok(model);
        }
        let predictor = lock(&self.predictor)
            .as_ref()
            .map(|p| p.clone_ref(py))
            .ok_or_else(|| {
                PyRuntimeError::new_err("get_model called before the predictor was constructed")
            })?;
        // An older content of the version goes first.
        let stale = lock(&self.cache).models.remove(&key);
        drop(stale);
        let outer = LOADING_HERE.replace(true);
        let model = predictor.call_method1(py, "load_model", (path,));
        LOADING_HERE.set(outer);
        let model = model?;
        self.insert(py, key, content_hash, &model)?;
        Ok(model)
    }

    /// Why the version's current content failed to load, while its retry
    /// time has not come.
    fn failed_recently(&self, key: &(String, u64), content_hash: &str) -> Option<String> {
        lock(&self.failed)
            .get(key)
            .filter(|f| f.content_hash == content_hash && Instant::now() < f.retry_at)
            .map(|f| {
                format!(
                    "load_model failed for {} version {} (tried again in {}s): {}",
                    key.0,
                    key.1,
                    f.retry_at
                        .saturating_duration_since(Instant::now())
                        .as_secs()
                        + 1,
                    f.message
                )
            })
    }

    fn record_failure(&self, py: Python<'_>, key: (String, u64), content_hash: String, e: &PyErr) {
        // Before the lock: `repr` runs Python code, which may let the GIL
        // go to a thread that then waits for this lock.
        let message = e
            .value(py)
            .repr()
            .map_or_else(|_| e.to_string(), |r| r.to_string());
        let mut failed = lock(&self.failed);
        let attempts = failed
            .get(&key)
            .filter(|f| f.content_hash == content_hash)
            .map_or(1, |f| f.attempts + 1);
        let delay = hotswap_common::backoff::nth(RETRY_START, RETRY_MAX, attempts);
        eprintln!(
            "python-worker: load_model failed for {} version {} (attempt {attempts}, next in {delay:?}): {message}",
            key.0, key.1
        );
        failed.insert(
            key,
            Failed {
                content_hash,
                message,
                attempts,
                retry_at: Instant::now() + delay,
            },
        );
    }
}

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
