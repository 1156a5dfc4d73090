//! The control plane's rules, checked in process: routing (holders first,
//! power of two choices, placement and its stickiness, which failures retry),
//! the registry (sessions, expiry of silent workers) and `latest`. Workers
//! are in-process services behind the same [`WorkerApi`] the gRPC client
//! implements; time is tokio's paused clock where a rule depends on it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hotswap_common::catalog::{Catalog, ModelRef, VersionKey};
use hotswap_common::lock;
use hotswap_proto::error::{Code, ServiceError};
use hotswap_proto::inference as pb;
use hotswap_proto::service::{InferenceService, PredictorService};
use hotswap_proto::v1::{
    Api, HeldVersion, ModelSource, ModelVersion, PredictRequest, PredictResponse, PredictorType,
    VersionState, WorkerReport,
};

use crate::Error;
use crate::front::{FrontDoor, resolve};
use crate::registry::{PLACEMENT_GRACE, Registry, RegistryLimits, Route, SILENCE_LIMIT};
use crate::router::Router;
use crate::worker::local::{LocalConnector, LocalWorker};
use crate::worker::{BoxError, WorkerApi, WorkerError};

/// What a scripted worker answers.
#[derive(Debug, Clone)]
enum Answer {
    Ok,
    Fail { code: Code, no_retry: bool },
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct ScriptedError {
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
struct Scripted {
    name: String,
    calls: AtomicUsize,
    answer: Mutex<Answer>,
}

impl Scripted {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn answer(&self, answer: Answer) {
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
struct Gone {
    calls: AtomicUsize,
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

fn key(version: u64) -> VersionKey {
    VersionKey {
        api: "a".into(),
        model: "m".into(),
        version,
    }
}

fn version_route(version: u64) -> Route {
    Route::Version(key(version))
}

/// A registry whose workers are in process, and a router over it.
struct Cluster {
    connector: Arc<LocalConnector>,
    registry: Arc<Registry>,
    router: Router,
}

impl Cluster {
    fn new() -> Cluster {
        let connector = Arc::new(LocalConnector::default());
        let registry = Arc::new(Registry::new(connector.clone()));
        Cluster {
            router: Router::new(registry.clone()),
            connector,
            registry,
        }
    }

    /// Registers a scripted worker `id` (at address `id`) serving `routes`.
    fn worker(&self, id: &str, routes: &[Route]) -> Arc<Scripted> {
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
    fn gone(&self, id: &str, routes: &[Route]) -> Arc<Gone> {
        let gone = Arc::new(Gone {
            calls: AtomicUsize::new(0),
        });
        self.connector.add(id, gone.clone());
        self.report(self.registry.session(), id, id, routes);
        gone
    }

    fn report(&self, session: u64, id: &str, address: &str, routes: &[Route]) {
        self.registry
            .report(session, &report(id, address, routes))
            .expect("a well-formed report");
    }

    fn busy(&self, id: &str, calls: usize) {
        self.registry
            .get(id)
            .expect("registered")
            .outstanding
            .store(calls, Ordering::Relaxed);
    }

    fn chosen(&self, route: &Route) -> String {
        self.router
            .choose(route, None)
            .expect("a worker")
            .id
            .clone()
    }

    async fn predict(&self, route: &Route) -> Result<PredictResponse, Error> {
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

fn report(id: &str, address: &str, routes: &[Route]) -> WorkerReport {
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

fn fail(code: Code) -> Answer {
    Answer::Fail {
        code,
        no_retry: false,
    }
}

#[tokio::test]
async fn calls_go_to_a_worker_that_holds_the_version() {
    let c = Cluster::new();
    c.worker("w1", &[version_route(1)]);
    c.worker("w2", &[version_route(2)]);
    for _ in 0..20 {
        assert_eq!(c.chosen(&version_route(1)), "w1");
        assert_eq!(c.chosen(&version_route(2)), "w2");
    }
}

#[tokio::test]
async fn of_two_holders_the_less_busy_one_is_chosen() {
    let c = Cluster::new();
    for id in ["w1", "w2", "w3"] {
        c.worker(id, &[version_route(1)]);
    }
    // Power of two choices: the busiest of three is never the less busy of
    // the two picked, and the other two both get picked.
    c.busy("w1", 50);
    c.busy("w2", 5);
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..200 {
        *seen.entry(c.chosen(&version_route(1))).or_insert(0) += 1;
    }
    assert!(!seen.contains_key("w1"), "{seen:?}");
    assert!(
        seen.contains_key("w2") && seen.contains_key("w3"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_version_nobody_holds_goes_to_the_worker_with_fewest_models() {
    let c = Cluster::new();
    c.worker("full", &[version_route(1), version_route(2)]);
    c.worker("empty", &[]);
    // Loading it where other models are may evict one of them (cache
    // limits): fewer models wins over fewer calls.
    c.busy("empty", 100);
    assert_eq!(c.chosen(&version_route(9)), "empty");
}

#[tokio::test(start_paused = true)]
async fn a_placement_never_reported_expires() {
    let c = Cluster::new();
    c.worker("w1", &[]);
    c.worker("w2", &[]);
    let first = c.chosen(&version_route(9));
    let other = if first == "w1" { "w2" } else { "w1" };
    c.busy(&first, 10);
    tokio::time::advance(PLACEMENT_GRACE - Duration::from_secs(1)).await;
    assert_eq!(c.chosen(&version_route(9)), first, "still within the grace");
    tokio::time::advance(Duration::from_secs(2)).await;
    // The worker never reported the version: it is placed anew, on the
    // less busy worker.
    assert_eq!(c.chosen(&version_route(9)), other);
}

#[tokio::test]
async fn a_call_is_retried_once_on_another_worker_when_the_first_is_unreachable() {
    let c = Cluster::new();
    let gone = c.gone("gone", &[version_route(1)]);
    let good = c.worker("good", &[version_route(1)]);
    // The unreachable worker looks idle, so it is tried first.
    c.busy("good", 50);
    let answer = c.predict(&version_route(1)).await.expect("retried");
    assert_eq!(answer.model, "good");
    assert_eq!((gone.calls.load(Ordering::SeqCst), good.calls()), (1, 1));
}

#[tokio::test]
async fn unavailable_answers_are_retried_but_only_once() {
    let c = Cluster::new();
    let w1 = c.worker("w1", &[version_route(1)]);
    let w2 = c.worker("w2", &[version_route(1)]);
    w1.answer(fail(Code::Unavailable));
    w2.answer(fail(Code::Unavailable));
    let err = c.predict(&version_route(1)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Worker {
                code: Code::Unavailable,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(w1.calls() + w2.calls(), 2);
    assert_eq!((w1.calls(), w2.calls()), (1, 1));
}

#[tokio::test]
async fn a_call_that_may_have_killed_a_process_is_not_retried() {
    let c = Cluster::new();
    let w1 = c.worker("w1", &[version_route(1)]);
    let w2 = c.worker("w2", &[version_route(1)]);
    c.busy("w2", 50);
    w1.answer(Answer::Fail {
        code: Code::Unavailable,
        no_retry: true,
    });
    let err = c.predict(&version_route(1)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!((w1.calls(), w2.calls()), (1, 0));
}

#[tokio::test]
async fn answers_about_the_request_are_passed_on_as_they_came() {
    let c = Cluster::new();
    let w1 = c.worker("w1", &[version_route(1)]);
    let w2 = c.worker("w2", &[version_route(1)]);
    c.busy("w2", 50);
    for code in [
        Code::InvalidArgument,
        Code::NotFound,
        Code::FailedPrecondition,
        Code::Internal,
    ] {
        w1.answer(fail(code));
        let err = c.predict(&version_route(1)).await.unwrap_err();
        assert_eq!(err.code(), code);
        assert_eq!(err.public_message(), format!("w1 says {code:?}"));
    }
    assert_eq!(w2.calls(), 0, "no request error is retried");
}

#[tokio::test]
async fn transport_trouble_reads_as_unavailable_without_its_detail() {
    let c = Cluster::new();
    c.gone("gone", &[version_route(1)]);
    let err = c.predict(&version_route(1)).await.unwrap_err();
    assert!(matches!(err, Error::WorkerUnavailable(_)), "{err:?}");
    assert_eq!(err.code(), Code::Unavailable);
    assert!(!err.public_message().contains("refused"), "{err}");
}

#[tokio::test]
async fn a_timed_out_call_is_deadline_exceeded_and_not_retried() {
    struct Slow(AtomicUsize);
    #[async_trait]
    impl WorkerApi for Slow {
        async fn predict(&self, _: Arc<PredictRequest>) -> Result<PredictResponse, WorkerError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(WorkerError::TimedOut)
        }
        async fn model_infer(
            &self,
            _: Arc<pb::ModelInferRequest>,
        ) -> Result<pb::ModelInferResponse, WorkerError> {
            Err(WorkerError::TimedOut)
        }
        async fn model_metadata(
            &self,
            _: pb::ModelMetadataRequest,
        ) -> Result<pb::ModelMetadataResponse, WorkerError> {
            Err(WorkerError::TimedOut)
        }
        async fn model_config(
            &self,
            _: pb::ModelConfigRequest,
        ) -> Result<pb::ModelConfigResponse, WorkerError> {
            Err(WorkerError::TimedOut)
        }
        async fn model_statistics(
            &self,
            _: pb::ModelStatisticsRequest,
        ) -> Result<pb::ModelStatisticsResponse, WorkerError> {
            Err(WorkerError::TimedOut)
        }
    }
    let c = Cluster::new();
    let slow = Arc::new(Slow(AtomicUsize::new(0)));
    c.connector.add("slow", slow.clone());
    c.report(c.registry.session(), "slow", "slow", &[version_route(1)]);
    let other = c.worker("other", &[version_route(1)]);
    c.busy("other", 50);
    let err = c.predict(&version_route(1)).await.unwrap_err();
    assert!(matches!(err, Error::DeadlineExceeded), "{err:?}");
    assert_eq!((slow.0.load(Ordering::SeqCst), other.calls()), (1, 0));
}

#[tokio::test]
async fn without_workers_a_call_is_unavailable() {
    let c = Cluster::new();
    let err = c.predict(&version_route(1)).await.unwrap_err();
    assert!(matches!(err, Error::NoWorkers(_)), "{err:?}");
    assert_eq!(err.code(), Code::Unavailable);
}

#[tokio::test]
async fn a_worker_id_belongs_to_its_stream_until_that_stream_ends() {
    let c = Cluster::new();
    c.worker("a1", &[]);
    c.worker("rogue", &[]);
    let owner = c.registry.session();
    let thief = c.registry.session();
    c.report(owner, "w", "a1", &[version_route(1)]);
    // Another stream naming the id, later or earlier, is refused: no
    // takeover, and the owner's entry is untouched.
    let refused = c
        .registry
        .report(thief, &report("w", "rogue", &[version_route(1)]))
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused}");
    let entry = c.registry.get("w").unwrap();
    assert_eq!(entry.address, "a1");
    c.registry.end(thief, "w");
    assert!(
        c.registry.get("w").is_some(),
        "the thief's end removed the owner"
    );
    for _ in 0..5 {
        assert_eq!(c.chosen(&version_route(1)), "w");
    }
    // Once the owner's stream ends, the id is free again.
    c.registry.end(owner, "w");
    assert!(c.registry.get("w").is_none());
    c.report(thief, "w", "a1", &[]);
    assert!(c.registry.get("w").is_some());
}

#[tokio::test]
async fn registrations_past_the_caps_are_refused() {
    let connector = Arc::new(LocalConnector::default());
    let registry = Registry::with_limits(
        connector.clone(),
        RegistryLimits {
            max_workers: 2,
            max_routes: 3,
        },
    );
    for id in ["a", "b", "c"] {
        connector.add(
            id,
            Arc::new(Gone {
                calls: AtomicUsize::new(0),
            }),
        );
    }
    let (a, b) = (registry.session(), registry.session());
    registry.report(a, &report("a", "a", &[])).unwrap();
    registry.report(b, &report("b", "b", &[])).unwrap();
    let full = registry
        .report(registry.session(), &report("c", "c", &[]))
        .unwrap_err();
    assert_eq!(full.code(), Code::ResourceExhausted, "{full}");
    let routes: Vec<Route> = (1..=4).map(version_route).collect();
    let too_many = registry.report(a, &report("a", "a", &routes)).unwrap_err();
    assert_eq!(too_many.code(), Code::ResourceExhausted, "{too_many}");
    // The registered workers report on; one leaving makes room.
    registry.report(a, &report("a", "a", &routes[..3])).unwrap();
    registry.end(b, "b");
    registry
        .report(registry.session(), &report("c", "c", &[]))
        .unwrap();
    assert_eq!(registry.all().len(), 2);
}

#[tokio::test]
async fn statistics_summed_from_workers_saturate() {
    let c = Cluster::new();
    c.worker("w1", &[version_route(1)]);
    c.worker("w2", &[version_route(1)]);
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(catalog(&[(1, true)], &[onnx_api("a")])));
    let front = FrontDoor {
        catalog: rx,
        registry: c.registry.clone(),
        router: Arc::new(Router::new(c.registry.clone())),
    };
    let stats = InferenceService::model_statistics(&front, pb::ModelStatisticsRequest::default())
        .await
        .expect("statistics");
    let s = &stats.model_stats[0];
    assert_eq!(s.inference_count, u64::MAX);
    assert_eq!(s.execution_count, u64::MAX);
    let success = s
        .inference_stats
        .as_ref()
        .unwrap()
        .success
        .as_ref()
        .unwrap();
    assert_eq!((success.count, success.ns), (u64::MAX, u64::MAX));
}

#[tokio::test(start_paused = true)]
async fn a_silent_worker_is_dropped_and_a_reporting_one_kept() {
    let c = Cluster::new();
    let session = c.registry.session();
    c.connector.add(
        "w",
        Arc::new(LocalWorker(Arc::new(Scripted {
            name: "w".into(),
            calls: AtomicUsize::new(0),
            answer: Mutex::new(Answer::Ok),
        }))),
    );
    c.report(session, "w", "w", &[]);
    tokio::time::advance(SILENCE_LIMIT - Duration::from_millis(500)).await;
    c.registry.sweep();
    assert!(c.registry.get("w").is_some(), "not silent long enough");
    c.report(session, "w", "w", &[]);
    tokio::time::advance(SILENCE_LIMIT - Duration::from_millis(500)).await;
    c.registry.sweep();
    assert!(c.registry.get("w").is_some(), "its report reset the clock");
    tokio::time::advance(Duration::from_secs(1)).await;
    c.registry.sweep();
    assert!(c.registry.get("w").is_none(), "silent for too long");
}

#[tokio::test]
async fn reports_without_an_id_or_address_are_refused() {
    let c = Cluster::new();
    c.worker("a", &[]);
    for (id, address) in [("", "a"), ("w", "")] {
        let err = c
            .registry
            .report(c.registry.session(), &report(id, address, &[]))
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.to_string().contains("worker_id and address"), "{err}");
    }
    let unknown = c
        .registry
        .report(c.registry.session(), &report("w", "nowhere", &[]))
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert_eq!(c.registry.all().len(), 1, "only the well-formed worker");
}

fn catalog(versions: &[(u64, bool)], apis: &[Api]) -> Catalog {
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

fn onnx_api(name: &str) -> Api {
    Api {
        name: name.into(),
        predictor_type: PredictorType::Onnx as i32,
        ..Default::default()
    }
}

fn model() -> ModelRef {
    ModelRef {
        api: "a".into(),
        model: "m".into(),
    }
}

#[tokio::test]
async fn latest_is_the_highest_version_a_worker_holds() {
    let c = Cluster::new();
    let catalog = catalog(&[(1, true), (2, true), (3, true)], &[onnx_api("a")]);
    c.worker("w", &[version_route(2)]);
    // Version 3 is newer, but no worker has loaded it yet: no call waits.
    assert_eq!(
        resolve(&catalog, &c.registry, &model(), "").unwrap(),
        key(2)
    );
    assert_eq!(
        resolve(&catalog, &c.registry, &model(), "latest").unwrap(),
        key(2)
    );
    c.worker("w2", &[version_route(3)]);
    assert_eq!(
        resolve(&catalog, &c.registry, &model(), "").unwrap(),
        key(3)
    );
}

#[tokio::test]
async fn latest_held_nowhere_is_the_highest_valid_version() {
    let c = Cluster::new();
    let catalog = catalog(&[(1, true), (2, true), (3, false)], &[onnx_api("a")]);
    assert_eq!(
        resolve(&catalog, &c.registry, &model(), "").unwrap(),
        key(2)
    );
}

#[tokio::test]
async fn latest_without_a_valid_version_says_why() {
    let c = Cluster::new();
    let invalid = catalog(&[(1, false)], &[onnx_api("a")]);
    let err = resolve(&invalid, &c.registry, &model(), "").unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.to_string().contains("broken"), "{err}");
    let empty = catalog(&[], &[onnx_api("a")]);
    let err = resolve(&empty, &c.registry, &model(), "").unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn a_numbered_version_must_exist_and_need_not_be_held() {
    let c = Cluster::new();
    let catalog = catalog(&[(1, true), (2, true)], &[onnx_api("a")]);
    assert_eq!(
        resolve(&catalog, &c.registry, &model(), "1").unwrap(),
        key(1)
    );
    let err = resolve(&catalog, &c.registry, &model(), "7").unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.to_string().contains("versions: 1, 2"), "{err}");
}

#[tokio::test]
async fn a_label_names_its_version_and_a_dangling_label_says_which() {
    let c = Cluster::new();
    let api = Api {
        sources: vec![ModelSource {
            name: "m".into(),
            version_labels: [("stable".to_owned(), 1), ("canary".to_owned(), 9)].into(),
            ..Default::default()
        }],
        ..onnx_api("a")
    };
    let catalog = catalog(&[(1, true), (2, true)], &[api]);
    assert_eq!(
        resolve(&catalog, &c.registry, &model(), "stable").unwrap(),
        key(1)
    );
    let err = resolve(&catalog, &c.registry, &model(), "canary").unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.to_string()
            .contains("label `canary` of `a/m` names version 9, which is not in the model index"),
        "{err}"
    );
    let err = resolve(&catalog, &c.registry, &model(), "beta").unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.to_string().contains("labels: canary (9), stable (1)"),
        "{err}"
    );
}

#[test]
fn traffic_splits_calls_naming_no_version_by_weight() {
    let api = |canary: u64| Api {
        sources: vec![ModelSource {
            name: "m".into(),
            version_labels: [("stable".to_owned(), 1), ("canary".to_owned(), canary)].into(),
            traffic: [("stable".to_owned(), 90), ("canary".to_owned(), 10)].into(),
            ..Default::default()
        }],
        ..onnx_api("a")
    };
    let split = catalog(&[(1, true), (2, true), (3, false)], &[api(2)]);
    // 20,000 draws: the canary's share is 0.1 with a standard deviation of
    // 0.002; 0.02 either side is ten of them.
    let draws = 20_000;
    let canary = (0..draws)
        .filter(|_| split.pick_by_traffic(&model(), "").as_deref() == Some("2"))
        .count();
    let share = canary as f64 / draws as f64;
    assert!((0.08..0.12).contains(&share), "canary share {share}");
    // Only calls naming no version are split.
    for named in ["latest", "1", "stable"] {
        assert_eq!(split.pick_by_traffic(&model(), named), None);
    }
    // A label whose version is invalid (3) or absent (9) is not picked:
    // those draws are left to `latest`.
    for missing in [3, 9] {
        let split = catalog(&[(1, true), (2, true), (3, false)], &[api(missing)]);
        let picks: std::collections::HashSet<Option<String>> = (0..2_000)
            .map(|_| split.pick_by_traffic(&model(), ""))
            .collect();
        assert_eq!(
            picks,
            [Some("1".to_owned()), None].into(),
            "canary -> {missing}"
        );
    }
}

#[tokio::test]
async fn predictor_apis_are_routed_by_api_to_a_worker_running_the_predictor() {
    let c = Cluster::new();
    let python = Api {
        name: "py".into(),
        predictor_type: PredictorType::Python as i32,
        predictor_source: "class PythonPredictor: ...".into(),
        ..Default::default()
    };
    c.worker("models", &[version_route(1)]);
    let runs = c.worker("runs", &[Route::Predictor("py".into())]);
    // The worker running the predictor looks busier: it still gets the
    // calls, being the only one that serves the API.
    c.busy("runs", 50);
    let (_tx, rx) =
        tokio::sync::watch::channel(Arc::new(catalog(&[(1, true)], &[onnx_api("a"), python])));
    let front = FrontDoor {
        catalog: rx,
        registry: c.registry.clone(),
        router: Arc::new(Router::new(c.registry.clone())),
    };
    for _ in 0..5 {
        let answer = PredictorService::predict(
            &front,
            PredictRequest {
                api: "py".into(),
                ..Default::default()
            },
        )
        .await
        .expect("routed");
        assert_eq!(answer.model, "runs");
    }
    assert_eq!(runs.calls(), 5);
    let status = c.registry.get("runs").unwrap().status();
    assert_eq!(status.predictors, vec!["py".to_owned()]);
    assert!(status.held.is_empty());
}
