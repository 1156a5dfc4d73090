//! A Python predictor that never returns costs its own call, not the calls
//! after it: each call has a time limit, a process past it is killed and
//! replaced, calls wait for a free Python thread in the worker (not inside
//! a process that may hang), and the wait is bounded: a full queue answers
//! RESOURCE_EXHAUSTED. Before, round robin kept feeding the stuck process
//! and half of the later calls hung with it.

use std::collections::BTreeMap;
use std::time::Duration;

use hotswap_data_plane::Error;
use hotswap_integration_tests::pool::predict_json;
use hotswap_integration_tests::process::python;
use hotswap_integration_tests::wait::eventually;
use hotswap_proto::error::to_status;
use hotswap_python::{PythonPool, PythonPredictorSpec};
use serde_json::json;
use tonic::Code;

const PREDICTOR: &str = r#"
import os, time

class PythonPredictor:
    def __init__(self, config, python_client):
        pass

    def predict(self, payload):
        if payload == "hang":
            time.sleep(3600)
        return {"pid": os.getpid()}
"#;

/// `post_predict` runs after the answer is sent, on the call's Python
/// thread: one that hangs holds that thread.
const POST_PREDICT_HANGS: &str = r#"
import os, time

class PythonPredictor:
    def __init__(self, config, python_client):
        pass

    def predict(self, payload):
        return {"pid": os.getpid()}

    def post_predict(self, payload, response):
        if payload == "hang after":
            time.sleep(3600)
"#;

fn spec(processes: usize, max_queued: usize) -> PythonPredictorSpec {
    spec_of(PREDICTOR, processes, max_queued)
}

fn spec_of(source: &str, processes: usize, max_queued: usize) -> PythonPredictorSpec {
    let mut process = python(None);
    process.call_timeout = Duration::from_secs(2);
    process.max_queued = max_queued;
    PythonPredictorSpec {
        source: source.to_owned(),
        file: "predictor.py".to_owned(),
        config: json!({}),
        processes,
        cache_size: 0,
        class: hotswap_python::protocol::PredictorClass::Python,
        threads: 1,
        process,
        models: None,
        env: Default::default(),
    }
}

/// A bound on each call the test makes: well past the predictor's limit.
const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_call_costs_only_itself() {
    let pool = std::sync::Arc::new(PythonPool::start(spec(2, 64)).await.expect("starts"));
    let before = pool.pids();
    let hung = tokio::spawn({
        let pool = pool.clone();
        async move { predict_json(&pool, json!("hang"), BTreeMap::new()).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut calls = Vec::new();
    for _ in 0..10 {
        let pool = pool.clone();
        calls.push(tokio::spawn(async move {
            tokio::time::timeout(PATIENCE, predict_json(&pool, json!([1]), BTreeMap::new())).await
        }));
    }
    let mut failed = Vec::new();
    for c in calls {
        match c.await.unwrap() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => failed.push(e.to_string()),
            Err(_) => failed.push("no answer".to_owned()),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 10 calls failed: {failed:?}",
        failed.len()
    );

    let status = to_status(&Error::from(
        tokio::time::timeout(PATIENCE, hung)
            .await
            .expect("the hung call ends")
            .unwrap()
            .unwrap_err(),
    ));
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let pool = &pool;
    let before = &before;
    eventually("the stuck process replaced", || async move {
        let now = pool.pids();
        (now.len() == 2 && now != *before).then_some(())
    })
    .await;
    for _ in 0..10 {
        tokio::time::timeout(PATIENCE, predict_json(pool, json!([1]), BTreeMap::new()))
            .await
            .expect("answered")
            .expect("served after the replacement");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_call_whose_caller_gave_up_still_ends_its_process() {
    let pool = std::sync::Arc::new(PythonPool::start(spec(1, 64)).await.expect("starts"));
    let before = pool.pids();
    // The caller's deadline is far shorter than the predictor's limit: it
    // gives up, and the call goes on hanging in the process.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        predict_json(&pool, json!("hang"), BTreeMap::new()),
    )
    .await;
    assert!(gave_up.is_err(), "the hung call answered: {gave_up:?}");
    let pool = &pool;
    let before = &before;
    eventually(
        "the stuck process replaced without another call",
        || async move {
            let now = pool.pids();
            (now.len() == 1 && now != *before).then_some(())
        },
    )
    .await;
    for _ in 0..5 {
        tokio::time::timeout(PATIENCE, predict_json(pool, json!([1]), BTreeMap::new()))
            .await
            .expect("answered")
            .expect("served by the new process");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_rather_than_waits() {
    let pool = std::sync::Arc::new(PythonPool::start(spec(1, 2)).await.expect("starts"));
    let hung = tokio::spawn({
        let pool = pool.clone();
        async move { predict_json(&pool, json!("hang"), BTreeMap::new()).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut queued = Vec::new();
    for _ in 0..2 {
        let pool = pool.clone();
        queued.push(tokio::spawn(async move {
            tokio::time::timeout(PATIENCE, predict_json(&pool, json!([1]), BTreeMap::new())).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = tokio::time::timeout(PATIENCE, predict_json(&pool, json!([1]), BTreeMap::new()))
        .await
        .expect("refused at once")
        .unwrap_err();
    assert_eq!(
        to_status(&Error::from(refused)).code(),
        Code::ResourceExhausted
    );
    // The queued calls run once the stuck process is replaced.
    for q in queued {
        q.await.unwrap().expect("answered").expect("served");
    }
    assert!(hung.await.unwrap().is_err());
}

/// A `post_predict` that hangs after its call was answered costs no later
/// call: the thread stays claimed until `post_predict` ends, within the call
/// time limit, and past it the process is replaced. Before, the thread was
/// given back with the answer, and the next call waited behind the hung
/// `post_predict` inside the process until its own limit failed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_post_predict_costs_no_later_call() {
    let pool = PythonPool::start(spec_of(POST_PREDICT_HANGS, 1, 64))
        .await
        .expect("starts");
    let before = pool.pids();
    tokio::time::timeout(
        PATIENCE,
        predict_json(&pool, json!("hang after"), BTreeMap::new()),
    )
    .await
    .expect("answered")
    .expect("the call itself succeeds");
    for _ in 0..3 {
        tokio::time::timeout(PATIENCE, predict_json(&pool, json!([1]), BTreeMap::new()))
            .await
            .expect("answered")
            .expect("a later call is served");
    }
    assert_ne!(
        pool.pids(),
        before,
        "the process with the hung post_predict replaced"
    );
}
