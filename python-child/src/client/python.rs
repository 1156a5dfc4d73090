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

use hotswap_python::protocol::{FromChild, ModelAnswer, ToChild};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use super::{ModelLookupError, version_text};
use crate::link::Link;
use crate::lock;

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
