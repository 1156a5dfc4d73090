//! Python-predictor APIs on this worker: one pool of Python processes per
//! API, started when the API appears (or its file, config or process count
//! changes) and stopped when it goes. A predictor that fails to start is
//! reported with its exception's line and its calls fail with it. A
//! predictor's traceback goes to the log; callers get the exception's line
//! (and a request id naming the log line), unless the worker is told to
//! return tracebacks.

use std::sync::{Arc, Mutex};

use hotswap_common::catalog::{ApiKind, Catalog, VersionKey, is_latest};
use hotswap_common::lock;
use hotswap_proto::error::{Code, Report, ServiceError, report};
use hotswap_proto::v1::{Api, PredictorType};
use hotswap_python::protocol::{
    ModelAnswer, Output, PredictorClass, Request, RunAnswer, TensorInfo,
};
use hotswap_python::{CallError, ModelResolver, PythonPool, PythonPredictorSpec, StartError};
use sha2::{Digest, Sha256};

use super::Worker;
use crate::Error;

#[derive(Clone)]
pub enum PythonState {
    Starting,
    Ready(Arc<PythonPool>),
    /// Why the predictor did not start, as callers are told.
    Failed(String),
}

pub struct PythonApi {
    /// What the running pool was started from.
    fingerprint: String,
    pub state: PythonState,
    /// The API's model versions and content hashes as last seen, to tell
    /// the processes which cached models to drop.
    seen: std::collections::HashMap<(String, u64), String>,
}

impl PythonApi {
    /// Tells a running pool about model versions updated in place or
    /// removed since the last look.
    fn evict_changed(&mut self, catalog: &Catalog, api: &str) {
        let now = versions_of(catalog, api);
        if let PythonState::Ready(pool) = &self.state {
            for (key, hash) in &self.seen {
                match now.get(key) {
                    Some(current) if current == hash => {}
                    Some(current) => pool.evict(&key.0, key.1, current),
                    None => pool.evict(&key.0, key.1, ""),
                }
            }
        }
        self.seen = now;
    }
}

/// An API's model versions and their content hashes.
fn versions_of(catalog: &Catalog, api: &str) -> std::collections::HashMap<(String, u64), String> {
    catalog
        .versions
        .iter()
        .filter(|(k, _)| k.api == api)
        .map(|(k, v)| ((k.model.clone(), k.version), v.content_hash.clone()))
        .collect()
}

/// Why a predictor class did not start on this worker.
#[derive(Debug, thiserror::Error)]
enum NotStarted {
    #[error("the model-store sent no predictor file for api `{0}`")]
    NoFile(String),
    #[error("api `{0}`: predictor classes for this predictor type are not supported yet")]
    Unsupported(String),
    #[error(transparent)]
    Start(#[from] StartError),
}

fn fingerprint(api: &Api) -> String {
    let mut h = Sha256::new();
    for part in [&api.predictor_source, &api.predictor_path, &api.config_json] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for n in [
        api.processes_per_replica,
        api.threads_per_process,
        api.cache_size,
        api.disk_cache_size,
        api.predictor_type as u32,
    ] {
        h.update(n.to_le_bytes());
    }
    for source in &api.sources {
        h.update(source.location.as_bytes());
        h.update(source.name.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

impl Worker {
    /// Starts, restarts and stops Python pools to match the catalog.
    pub(crate) fn reconcile_python(self: &Arc<Self>, catalog: &Catalog) {
        let mut apis = lock(&self.python_apis);
        apis.retain(|name, _| catalog.kind(name) == Some(ApiKind::Predictor));
        for api in catalog.apis_of(ApiKind::Predictor) {
            let wanted = fingerprint(api);
            if let Some(running) = apis.get_mut(&api.name)
                && running.fingerprint == wanted
            {
                running.evict_changed(catalog, &api.name);
                continue;
            }
            apis.insert(
                api.name.clone(),
                PythonApi {
                    fingerprint: wanted.clone(),
                    state: PythonState::Starting,
                    // What the new processes will find; changes from here on
                    // are sent to them.
                    seen: versions_of(catalog, &api.name),
                },
            );
            let worker = self.clone();
            let api = api.clone();
            tokio::spawn(async move {
                let state = match worker.start_python(&api).await {
                    Ok(pool) => {
                        tracing::info!(api = %api.name, "Python predictor ready");
                        PythonState::Ready(Arc::new(pool))
                    }
                    Err(e) => {
                        tracing::error!(api = %api.name, error = %Report(&e), "Python predictor failed to start");
                        PythonState::Failed(match &e {
                            NotStarted::Start(StartError::Predictor(traceback))
                                if !worker.python_tracebacks =>
                            {
                                format!(
                                    "{} (the traceback is in the worker's log)",
                                    traceback.summary()
                                )
                            }
                            _ => report(&e),
                        })
                    }
                };
                if let Some(entry) = lock(&worker.python_apis).get_mut(&api.name)
                    && entry.fingerprint == wanted
                {
                    entry.state = state;
                }
            });
        }
    }

    async fn start_python(self: &Arc<Self>, api: &Api) -> Result<PythonPool, NotStarted> {
        if api.predictor_source.is_empty() {
            return Err(NotStarted::NoFile(api.name.clone()));
        }
        let config = serde_json::from_str(&api.config_json).unwrap_or(serde_json::Value::Null);
        let file = std::path::Path::new(&api.predictor_path)
            .file_name()
            .map_or_else(
                || "predictor.py".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            );
        let class = match PredictorType::try_from(api.predictor_type) {
            Ok(PredictorType::Python) => PredictorClass::Python,
            Ok(PredictorType::Onnx) => PredictorClass::Onnx,
            Ok(PredictorType::Tensorflow) => PredictorClass::TensorFlow,
            _ => return Err(NotStarted::Unsupported(api.name.clone())),
        };
        let models: Option<Arc<dyn ModelResolver>> = (!api.sources.is_empty()).then(|| {
            Arc::new(ApiModels {
                worker: Arc::downgrade(self),
                api: api.name.clone(),
                disk_limit: api.disk_cache_size as usize,
                on_disk: Mutex::default(),
            }) as Arc<dyn ModelResolver>
        });
        PythonPool::start(PythonPredictorSpec {
            source: api.predictor_source.clone(),
            file,
            config,
            processes: api.processes_per_replica.max(1) as usize,
            cache_size: api.cache_size,
            class,
            threads: api.threads_per_process.max(1),
            process: self.python.clone(),
            models,
            env: api.env.clone().into_iter().collect(),
        })
        .await
        .map_err(NotStarted::from)
    }

    /// The state of a Python API's predictor on this worker.
    pub fn python_state(&self, api: &str) -> Option<PythonState> {
        lock(&self.python_apis).get(api).map(|p| p.state.clone())
    }

    /// Whether a predictor class is still starting here.
    pub(crate) fn python_starting(&self) -> bool {
        lock(&self.python_apis)
            .values()
            .any(|p| matches!(p.state, PythonState::Starting))
    }

    /// Python APIs whose predictor is ready here.
    pub(crate) fn python_ready(&self) -> Vec<String> {
        lock(&self.python_apis)
            .iter()
            .filter(|(_, p)| matches!(p.state, PythonState::Ready(_)))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Calls a Python API's predictor.
    pub async fn python_predict(&self, api: &str, request: Request) -> Result<Output, Error> {
        match self.python_state(api) {
            Some(PythonState::Ready(pool)) => pool
                .predict(request)
                .await
                .map_err(|e| self.call_failed(api, e)),
            Some(PythonState::Starting) => Err(Error::Unavailable(format!(
                "api `{api}`: the Python predictor is starting"
            ))),
            Some(PythonState::Failed(traceback)) => Err(Error::FailedPrecondition(format!(
                "api `{api}` is not ready: its predictor failed to start:\n{traceback}"
            ))),
            None => Err(Error::Unavailable(format!(
                "api `{api}`: the Python predictor has not started yet"
            ))),
        }
    }
}

impl Worker {
    /// A predictor's exception as its caller sees it: the exception's line
    /// and a request id; the traceback goes to the log under that id (to
    /// the caller too with `python_tracebacks`).
    fn call_failed(&self, api: &str, e: CallError) -> Error {
        let (lookup, traceback) = match e {
            CallError::Raised(traceback) => (false, traceback),
            CallError::Lookup(traceback) => (true, traceback),
            other => return other.into(),
        };
        let request: String = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        tracing::warn!(api, request_id = %request, traceback = %traceback, "the predictor raised");
        let message = if self.python_tracebacks {
            format!("api `{api}` (request {request}): {traceback}")
        } else {
            format!(
                "api `{api}`: {} (request {request}; the traceback is in the worker's log)",
                traceback.summary()
            )
        };
        Error::PredictorRaised { lookup, message }
    }
}

/// `get_model` for one API: names and versions resolved against the
/// catalog, files fetched into the worker's disk cache.
struct ApiModels {
    worker: std::sync::Weak<Worker>,
    api: String,
    /// disk_cache_size: versions kept in the disk cache (0: no limit).
    disk_limit: usize,
    /// Cached folders, least recently asked for first.
    on_disk: Mutex<Vec<(VersionKey, std::path::PathBuf)>>,
}

impl ApiModels {
    /// Records a fetched folder as the most recently used and returns the
    /// folders beyond the limit, to delete. A process loads from a folder
    /// right after it is handed out, so the least recently used ones are
    /// never being read.
    fn touch(&self, key: VersionKey, dir: std::path::PathBuf) -> Vec<std::path::PathBuf> {
        let mut on_disk = lock(&self.on_disk);
        on_disk.retain(|(k, d)| *k != key && *d != dir);
        on_disk.push((key, dir));
        let excess = if self.disk_limit == 0 {
            0
        } else {
            on_disk.len().saturating_sub(self.disk_limit)
        };
        on_disk.drain(..excess).map(|(_, d)| d).collect()
    }
}

#[async_trait::async_trait]
impl ModelResolver for ApiModels {
    async fn resolve(
        &self,
        model: Option<String>,
        version: String,
        below: Option<u64>,
    ) -> ModelAnswer {
        let Some(worker) = self.worker.upgrade() else {
            return ModelAnswer::Missing {
                message: "the worker is stopping".to_owned(),
                lookup: false,
            };
        };
        let lookup = |message: String| ModelAnswer::Missing {
            message,
            lookup: true,
        };
        let catalog = worker.catalog();
        let m = match catalog.model_ref(&self.api, model.as_deref().unwrap_or("")) {
            Ok(m) => m,
            Err(e) => return lookup(e.to_string()),
        };
        let target = if is_latest(&version) {
            match catalog
                .versions(&m.api, &m.model)
                .into_iter()
                .rev()
                // After a failed load, a version outside the policy is
                // better than none: the model keeps a version.
                .find(|v| match below {
                    None => Catalog::valid(v),
                    Some(b) => (Catalog::valid(v) || Catalog::excluded(v)) && v.version < b,
                }) {
                Some(v) => v.clone(),
                None if below.is_some() => {
                    return lookup(format!(
                        "model `{}` has no valid version that loads",
                        m.model
                    ));
                }
                None => return lookup(format!("model `{}` has no valid version", m.model)),
            }
        } else {
            match catalog.numbered(&m, &version) {
                Ok(v) if Catalog::valid(v) => v.clone(),
                Ok(v) => {
                    return lookup(format!(
                        "version {} of `{}` is invalid: {}",
                        v.version, m.model, v.reason
                    ));
                }
                Err(e) => return lookup(e.to_string()),
            }
        };
        match worker.fetch(&target).await {
            Ok(dir) => {
                for old in self.touch(VersionKey::of(&target), dir.clone()) {
                    worker.cache.remove(&old).await;
                }
                ModelAnswer::Found {
                    model: m.model,
                    version: target.version,
                    content_hash: target.content_hash,
                    path: dir.display().to_string(),
                }
            }
            Err(e) => ModelAnswer::Missing {
                message: report(&e),
                lookup: false,
            },
        }
    }

    async fn run_model(
        &self,
        model: Option<String>,
        version: String,
        input: serde_json::Value,
    ) -> RunAnswer {
        let loaded = match self.loaded(model, &version).await {
            Ok(l) => l,
            Err(answer) => return answer,
        };
        let Some(worker) = self.worker.upgrade() else {
            return run_failed(Error::ShuttingDown);
        };
        let inputs = match crate::tensor::json::inputs(loaded.model.signature(), &input) {
            Ok(inputs) => inputs,
            Err(e) => return run_failed(e),
        };
        let outputs = match worker.infer(&loaded, inputs, Vec::new()).await {
            Ok(outputs) => outputs,
            Err(e) => return run_failed(e),
        };
        let converted = outputs
            .iter()
            .map(|t| {
                Ok((
                    TensorInfo {
                        name: t.name.clone(),
                        dtype: numpy_type(t.dtype()).to_owned(),
                        shape: t.shape.clone(),
                    },
                    crate::tensor::json::to_json(t)?,
                ))
            })
            .collect::<Result<Vec<_>, Error>>();
        match converted {
            Ok(outputs) => RunAnswer::Outputs { outputs },
            Err(e) => run_failed(e),
        }
    }

    async fn model_signature(&self, model: Option<String>, version: String) -> RunAnswer {
        match self.loaded(model, &version).await {
            Ok(loaded) => {
                let info = |specs: &[crate::signature::TensorSpec]| {
                    specs
                        .iter()
                        .map(|s| TensorInfo {
                            name: s.name.clone(),
                            dtype: numpy_type(s.dtype).to_owned(),
                            shape: s.shape.clone(),
                        })
                        .collect()
                };
                let signature = loaded.model.signature();
                RunAnswer::Signature {
                    inputs: info(&signature.inputs),
                    outputs: info(&signature.outputs),
                }
            }
            Err(answer) => answer,
        }
    }
}

impl ApiModels {
    /// The loaded model (ONNX or TensorFlow) a call names (the worker's own resolution and
    /// loading, as for Predict).
    async fn loaded(
        &self,
        model: Option<String>,
        version: &str,
    ) -> Result<Arc<crate::table::Loaded>, RunAnswer> {
        let worker = self
            .worker
            .upgrade()
            .ok_or_else(|| run_failed(Error::ShuttingDown))?;
        let m = worker
            .model_ref(&self.api, model.as_deref().unwrap_or(""))
            .map_err(run_failed)?;
        let targets = worker.resolve(&m, version).map_err(run_failed)?;
        worker.acquire(targets).await.map_err(run_failed)
    }
}

fn run_failed(e: Error) -> RunAnswer {
    RunAnswer::Failed {
        lookup: e.code() == Code::NotFound,
        invalid: e.code() == Code::InvalidArgument,
        message: e.public_message(),
    }
}

/// numpy's name for an element type.
fn numpy_type(d: crate::tensor::DataType) -> &'static str {
    use crate::tensor::DataType as D;
    match d {
        D::Bool => "bool",
        D::U8 => "uint8",
        D::U16 => "uint16",
        D::U32 => "uint32",
        D::U64 => "uint64",
        D::I8 => "int8",
        D::I16 => "int16",
        D::I32 => "int32",
        D::I64 => "int64",
        D::F16 => "float16",
        D::BF16 => "float32",
        D::F32 => "float32",
        D::F64 => "float64",
        D::Bytes => "object",
    }
}
