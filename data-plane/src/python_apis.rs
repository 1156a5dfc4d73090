//! Python-predictor APIs on this worker: one pool of Python processes per
//! API, started when the API appears (or its file, config or process count
//! changes) and stopped when it goes. A predictor that fails to start is
//! reported with its exception's line and its calls fail with it. A
//! predictor's traceback goes to the log; callers get the exception's line
//! (and a request id naming the log line), unless the worker is told to
//! return tracebacks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use hotswap_common::catalog::{ApiKind, Catalog};
use hotswap_common::lock;
use hotswap_proto::error::{Report, report};
use hotswap_proto::v1::{Api, PredictorType};
use hotswap_python::protocol::{Output, PredictorClass, Request};
use hotswap_python::{
    CallError, ModelResolver, ProcessConfig, PythonPool, PythonPredictorSpec, StartError,
};
use sha2::{Digest, Sha256};

use crate::Error;
use crate::inference::Inference;
use crate::models::Models;

mod models;

use models::ApiModels;

/// Where a Python API's pool of processes stands.
#[derive(Clone)]
pub enum PythonState {
    /// The processes are starting; calls are answered UNAVAILABLE.
    Starting,
    /// The pool is up and takes calls.
    Ready(Arc<PythonPool>),
    /// Why the predictor did not start, as callers are told.
    Failed(String),
}

/// One Python-predictor API on this worker.
pub struct PythonApi {
    /// What the running pool was started from.
    fingerprint: String,
    /// Its pool's state.
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

/// The Python-predictor APIs of one worker.
pub struct PythonApis {
    apis: Arc<Mutex<HashMap<String, PythonApi>>>,
    /// What starting a pool needs; shared with the tasks that start them.
    starter: Arc<Starter>,
}

impl PythonApis {
    /// No APIs yet; [`PythonApis::reconcile`] starts them.
    pub fn new(
        process: ProcessConfig,
        tracebacks: bool,
        models: &Arc<Models>,
        inference: &Arc<Inference>,
    ) -> PythonApis {
        PythonApis {
            apis: Arc::default(),
            starter: Arc::new(Starter {
                process,
                tracebacks,
                models: Arc::downgrade(models),
                inference: Arc::downgrade(inference),
            }),
        }
    }

    /// Starts, restarts and stops Python pools to match the catalog.
    pub fn reconcile(&self, catalog: &Catalog) {
        let mut apis = lock(&self.apis);
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
            let (apis, starter) = (self.apis.clone(), self.starter.clone());
            let api = api.clone();
            tokio::spawn(async move {
                let state = match starter.start(&api).await {
                    Ok(pool) => {
                        tracing::info!(api = %api.name, "Python predictor ready");
                        PythonState::Ready(Arc::new(pool))
                    }
                    Err(e) => {
                        tracing::error!(api = %api.name, error = %Report(&e), "Python predictor failed to start");
                        PythonState::Failed(match &e {
                            NotStarted::Start(StartError::Predictor(traceback))
                                if !starter.tracebacks =>
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
                if let Some(entry) = lock(&apis).get_mut(&api.name)
                    && entry.fingerprint == wanted
                {
                    entry.state = state;
                }
            });
        }
    }
}

/// What a pool's start needs (weak handles: a start keeps no worker alive).
struct Starter {
    /// How Python predictor processes are started.
    process: ProcessConfig,
    /// Whether callers get a predictor's whole Python traceback.
    tracebacks: bool,
    /// What `get_model` and the predictors' model clients use.
    models: Weak<Models>,
    inference: Weak<Inference>,
}

impl Starter {
    async fn start(&self, api: &Api) -> Result<PythonPool, NotStarted> {
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
            Arc::new(ApiModels::new(
                self.models.clone(),
                self.inference.clone(),
                api,
            )) as Arc<dyn ModelResolver>
        });
        PythonPool::start(PythonPredictorSpec {
            source: api.predictor_source.clone(),
            file,
            config,
            processes: api.processes_per_replica.max(1) as usize,
            cache_size: api.cache_size,
            class,
            threads: api.threads_per_process.max(1),
            process: self.process.clone(),
            models,
            env: api.env.clone().into_iter().collect(),
        })
        .await
        .map_err(NotStarted::from)
    }
}

impl PythonApis {
    /// The state of a Python API's predictor on this worker.
    pub fn state(&self, api: &str) -> Option<PythonState> {
        lock(&self.apis).get(api).map(|p| p.state.clone())
    }

    /// Whether a predictor class is still starting here.
    pub fn starting(&self) -> bool {
        lock(&self.apis)
            .values()
            .any(|p| matches!(p.state, PythonState::Starting))
    }

    /// Python APIs whose predictor is ready here.
    pub fn ready(&self) -> Vec<String> {
        lock(&self.apis)
            .iter()
            .filter(|(_, p)| matches!(p.state, PythonState::Ready(_)))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Calls a Python API's predictor.
    pub async fn predict(&self, api: &str, request: Request) -> Result<Output, Error> {
        match self.state(api) {
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

impl PythonApis {
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
        let message = if self.starter.tracebacks {
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
