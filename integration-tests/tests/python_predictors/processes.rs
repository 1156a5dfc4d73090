//! Several calls at once: two processes, one killed from outside, and
//! two threads in one process.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{output_json, request};
use tonic::Code;

use crate::{first_answer, serve};

const PAIR: &str = r#"
import os, time

class PythonPredictor:
    def __init__(self, config, python_client):
        self.dir = config["dir"]

    def predict(self, payload):
        if isinstance(payload, str):
            return {"pid": os.getpid()}
        # Each call leaves a marker, then waits (bounded) until it sees the
        # other call's: only two processes working at once can both see two.
        open(os.path.join(self.dir, str(os.getpid()) + "-" + str(payload)), "w").close()
        deadline = time.time() + 20
        while len(os.listdir(self.dir)) < 2 and time.time() < deadline:
            time.sleep(0.01)
        return {"pid": os.getpid(), "together": len(os.listdir(self.dir)) >= 2}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_serve_at_once_and_survive_a_kill() {
    let markers = tempfile::tempdir().unwrap();
    let bucket = TestBucket::new(Backend::Local).await;
    let config = format!(
        "- {{name: pair, predictor: {{type: python, path: pair.py, processes_per_replica: 2, config: {{dir: '{}'}}}}}}",
        markers.path().display()
    );
    let (store, worker) = serve(&bucket, &config, PAIR).await;
    let w = &worker;
    let pool = eventually("the predictor is running", || async move {
        match w.worker.python_state("pair") {
            Some(hotswap_data_plane::worker::PythonState::Ready(pool)) => Some(pool),
            _ => None,
        }
    })
    .await;
    let mut calls = Vec::new();
    for i in 0..2 {
        let mut p = worker.predictor().await;
        calls.push(tokio::spawn(async move {
            p.predict(request("pair", &i.to_string(), &[("version", "")]))
                .await
        }));
    }
    let mut pids = std::collections::HashSet::new();
    for c in calls {
        let out = output_json(&c.await.unwrap().unwrap().into_inner());
        assert_eq!(out["together"], true, "both calls ran at the same time");
        pids.insert(out["pid"].as_u64().unwrap());
    }
    assert_eq!(pids.len(), 2);

    // Kill one process from outside: calls keep succeeding (on the other,
    // then on its replacement).
    let victim = pool.pids()[0];
    // SAFETY: kill(2) on a child process of this test's worker.
    unsafe {
        libc::kill(victim as i32, libc::SIGKILL);
    }
    let mut p = worker.predictor().await;
    let mut ok = 0;
    for i in 0..10 {
        // A call that was routed to the dying process fails UNAVAILABLE.
        match p
            .predict(request("pair", &format!("\"k{i}\""), &[("version", "")]))
            .await
        {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), Code::Unavailable, "{e:?}"),
        }
    }
    assert!(ok >= 5, "the surviving process kept serving ({ok} of 10)");
    eventually("the killed process replaced", || async {
        let now = pool.pids();
        (now.len() == 2 && !now.contains(&victim)).then_some(())
    })
    .await;
    worker.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_per_process_runs_calls_at_once_in_one_process() {
    let markers = tempfile::tempdir().unwrap();
    let bucket = TestBucket::new(Backend::Local).await;
    let config = format!(
        "- {{name: pair, predictor: {{type: python, path: pair.py, processes_per_replica: 1, threads_per_process: 2, config: {{dir: '{}'}}}}}}",
        markers.path().display()
    );
    let (store, worker) = serve(&bucket, &config, PAIR).await;
    first_answer(&worker, request("pair", "\"warm-up\"", &[("version", "")])).await;
    let mut calls = Vec::new();
    for i in 0..2 {
        let mut p = worker.predictor().await;
        calls.push(tokio::spawn(async move {
            p.predict(request("pair", &i.to_string(), &[("version", "")]))
                .await
        }));
    }
    let mut pids = std::collections::HashSet::new();
    for c in calls {
        let out = output_json(&c.await.unwrap().unwrap().into_inner());
        // The predictor sleeps while it waits, which releases the GIL.
        assert_eq!(out["together"], true, "both calls ran at the same time");
        pids.insert(out["pid"].as_u64().unwrap());
    }
    assert_eq!(pids.len(), 1, "in one process");
    worker.stop().await;
    store.stop().await;
}
