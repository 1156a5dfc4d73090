//! Routing: holders first, power of two choices, placement and its
//! expiry, and which failures are retried once elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use hotswap_proto::error::{Code, ServiceError};
use hotswap_proto::inference as pb;
use hotswap_proto::v1::{PredictRequest, PredictResponse};

use crate::Error;
use crate::registry::PLACEMENT_GRACE;
use crate::testing::{Answer, Cluster, fail, version_route};
use crate::worker::{WorkerApi, WorkerError};

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
