//! What the control plane's unit tests share: in-process workers behind
//! the same [`WorkerApi`] the gRPC client implements (one scripted, one
//! whose connection is gone), a registry and router over them, and
//! catalogs to resolve against.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hotswap_common::catalog::{Catalog, ModelRef, VersionKey};
use hotswap_common::lock;
use hotswap_proto::error::{Code, ServiceError};
use hotswap_proto::inference as pb;
use hotswap_proto::service::{InferenceService, PredictorService};
use hotswap_proto::v1::{
    Api, HeldVersion, ModelVersion, PredictRequest, PredictResponse, PredictorType, VersionState,
    WorkerReport,
};

use crate::Error;
use crate::registry::{Registry, Route};
use crate::router::Router;
use crate::worker::local::{LocalConnector, LocalWorker};
use crate::worker::{BoxError, WorkerApi, WorkerError};

/// What a scripted worker answers.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    Ok,
    Fail { code: Code, no_retry: bool },
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ScriptedError {
    code: Code,
    message: String,
    no_retry: bool,
}

impl ServiceError for ScriptedError {
    fn code(&self) -> Code {
        self.code
    }

    fn no_retry(&self) -> bool {
        self.no_retry
    }
}

/// An in-process worker that counts its calls and answers as scripted.
pub(crate) struct Scripted {
    pub(crate) name: String,
    pub(crate) calls: AtomicUsize,
    pub(crate) answer: Mutex<Answer>,
}

impl Scripted {
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub(crate) fn answer(&self, answer: Answer) {
        *lock(&self.answer) = answer;
    }

    fn reply<T>(&self, ok: T) -> Result<T, ScriptedError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match lock(&self.answer).clone() {
            Answer::Ok => Ok(ok),
            Answer::Fail { code, no_retry } => Err(ScriptedError {
                code,
                message: format!("{} says {code:?}", self.name),
                no_retry,
            }),
        }
    }
}

#[async_trait]
impl PredictorService for Scripted {
    type Error = ScriptedError;

    async fn predict(&self, r: PredictRequest) -> Result<PredictResponse, ScriptedError> {
        self.reply(PredictResponse {
            api: r.api,
            // Says who answered.
            model: self.name.clone(),
            ..Default::default()
        })
    }
}

#[async_trait]
impl InferenceService for Scripted {
    type Error = ScriptedError;

    async fn server_live(&self) -> Result<pb::ServerLiveResponse, ScriptedError> {
        self.reply(pb::ServerLiveResponse { live: true })
    }
    async fn server_ready(&self) -> Result<pb::ServerReadyResponse, ScriptedError> {
        self.reply(pb::ServerReadyResponse { ready: true })
    }
    async fn model_ready(
        &self,
        _: pb::ModelReadyRequest,
    ) -> Result<pb::ModelReadyResponse, ScriptedError> {
        self.reply(pb::ModelReadyResponse { ready: true })
    }
    async fn server_metadata(&self) -> Result<pb::ServerMetadataResponse, ScriptedError> {
        self.reply(pb::ServerMetadataResponse::default())
    }
    async fn model_metadata(
        &self,
        _: pb::ModelMetadataRequest,
    ) -> Result<pb::ModelMetadataResponse, ScriptedError> {
        self.reply(pb::ModelMetadataResponse::default())
    }
    async fn model_infer(
        &self,
        _: pb::ModelInferRequest,
    ) -> Result<pb::ModelInferResponse, ScriptedError> {
        self.reply(pb::ModelInferResponse {
            model_name: self.name.clone(),
            ..Default::default()
        })
    }
    async fn model_config(
        &self,
        _: pb::ModelConfigRequest,
    ) -> Result<pb::ModelConfigResponse, ScriptedError> {
        self.reply(pb::ModelConfigResponse::default())
    }
    /// Counters near their limit, as a worker that lies might send.
    async fn model_statistics(
        &self,
        _: pb::ModelStatisticsRequest,
    ) -> Result<pb::ModelStatisticsResponse, ScriptedError> {
        let huge = pb::StatisticDuration {
            count: u64::MAX - 1,
            ns: u64::MAX - 1,
        };
        self.reply(pb::ModelStatisticsResponse {
            model_stats: vec![pb::ModelStatistics {
                name: "a".into(),
                version: "1".into(),
                inference_count: u64::MAX - 1,
                execution_count: u64::MAX - 1,
                inference_stats: Some(pb::InferStatistics {
                    success: Some(huge),
                    ..Default::default()
                }),
                ..Default::default()
            }],
        })
    }
    async fn repository_index(
        &self,
        _: pb::RepositoryIndexRequest,
    ) -> Result<pb::RepositoryIndexResponse, ScriptedError> {
        self.reply(pb::RepositoryIndexResponse::default())
    }
}

/// A worker whose connection is gone: every call fails in transport.
pub(crate) struct Gone {
    pub(crate) calls: AtomicUsize,
}

impl Gone {
    fn fail<T>(&self) -> Result<T, WorkerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let cause: BoxError = "connection refused".into();
        Err(WorkerError::Unreachable(cause))
    }
}

#[async_trait]
impl WorkerApi for Gone {
    async fn predict(&self, _: Arc<PredictRequest>) -> Result<PredictResponse, WorkerError> {
        self.fail()
    }
    async fn model_infer(
        &self,
        _: Arc<pb::ModelInferRequest>,
    ) -> Result<pb::ModelInferResponse, WorkerError> {
        self.fail()
    }
    async fn model_metadata(
        &self,
        _: pb::ModelMetadataRequest,
    ) -> Result<pb::ModelMetadataResponse, WorkerError> {
        self.fail()
    }
    async fn model_config(
        &self,
        _: pb::ModelConfigRequest,
    ) -> Result<pb::ModelConfigResponse, WorkerError> {
        self.fail()
    }
    async fn model_statistics(
        &self,
        _: pb::ModelStatisticsRequest,
    ) -> Result<pb::ModelStatisticsResponse, WorkerError> {
        self.fail()
    }
}

pub(crate) fn key(version: u64) -> VersionKey {
    VersionKey {
        api: "a".into(),
        model: "m".into(),
        version,
    }
}

pub(crate) fn version_route(version: u64) -> Route {
    Route::Version(key(version))
}

/// A registry whose workers are in process, and a router over it.
pub(crate) struct Cluster {
    pub(crate) connector: Arc<LocalConnector>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) router: Router,
}

impl Cluster {
    pub(crate) fn new() -> Cluster {
        let connector = Arc::new(LocalConnector::default());
        let registry = Arc::new(Registry::new(connector.clone()));
        Cluster {
            router: Router::new(registry.clone()),
            connector,
            registry,
        }
    }

    /// Registers a scripted worker `id` (at address `id`) serving `routes`.
    pub(crate) fn worker(&self, id: &str, routes: &[Route]) -> Arc<Scripted> {
        let scripted = Arc::new(Scripted {
            name: id.to_owned(),
            calls: AtomicUsize::new(0),
            answer: Mutex::new(Answer::Ok),
        });
        self.connector
            .add(id, Arc::new(LocalWorker(scripted.clone())));
        self.report(self.registry.session(), id, id, routes);
        scripted
    }

    /// Registers a worker whose connection is gone.
    pub(crate) fn gone(&self, id: &str, routes: &[Route]) -> Arc<Gone> {
        let gone = Arc::new(Gone {
            calls: AtomicUsize::new(0),
        });
        self.connector.add(id, gone.clone());
        self.report(self.registry.session(), id, id, routes);
        gone
    }

    pub(crate) fn report(&self, session: u64, id: &str, address: &str, routes: &[Route]) {
        self.registry
            .report(session, &report(id, address, routes))
            .expect("a well-formed report");
    }

    pub(crate) fn busy(&self, id: &str, calls: usize) {
        self.registry
            .get(id)
            .expect("registered")
            .outstanding
            .store(calls, Ordering::Relaxed);
    }

    pub(crate) fn chosen(&self, route: &Route) -> String {
        self.router
            .choose(route, None)
            .expect("a worker")
            .id
            .clone()
    }

    pub(crate) async fn predict(&self, route: &Route) -> Result<PredictResponse, Error> {
        self.router
            .call(route, |w| async move {
                w.predict(Arc::new(PredictRequest {
                    api: "a".into(),
                    ..Default::default()
                }))
                .await
            })
            .await
    }
}

pub(crate) fn report(id: &str, address: &str, routes: &[Route]) -> WorkerReport {
    let mut report = WorkerReport {
        worker_id: id.into(),
        address: address.into(),
        ..Default::default()
    };
    for route in routes {
        match route {
            Route::Version(k) => report.held.push(HeldVersion {
                api: k.api.clone(),
                model: k.model.clone(),
                version: k.version,
            }),
            Route::Predictor(api) => report.predictors.push(api.clone()),
        }
    }
    report
}

pub(crate) fn fail(code: Code) -> Answer {
    Answer::Fail {
        code,
        no_retry: false,
    }
}

pub(crate) fn catalog(versions: &[(u64, bool)], apis: &[Api]) -> Catalog {
    Catalog {
        complete: true,
        apis: apis.iter().map(|a| (a.name.clone(), a.clone())).collect(),
        versions: versions
            .iter()
            .map(|&(n, valid)| {
                let v = ModelVersion {
                    api: "a".into(),
                    model: "m".into(),
                    version: n,
                    state: if valid {
                        VersionState::Valid
                    } else {
                        VersionState::Invalid
                    } as i32,
                    reason: if valid { "" } else { "broken" }.into(),
                    ..Default::default()
                };
                (VersionKey::of(&v), v)
            })
            .collect(),
        ..Default::default()
    }
}

pub(crate) fn onnx_api(name: &str) -> Api {
    Api {
        name: name.into(),
        predictor_type: PredictorType::Onnx as i32,
        ..Default::default()
    }
}

pub(crate) fn model() -> ModelRef {
    ModelRef {
        api: "a".into(),
        model: "m".into(),
    }
}
