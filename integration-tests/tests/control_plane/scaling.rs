//! Workers come and go under load: a new worker process registers and takes
//! traffic; a worker process killed outright (SIGKILL) is dropped, another
//! stopped with SIGTERM leaves before it stops taking calls, and no client
//! call fails meanwhile (a killed worker's calls are retried elsewhere).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::process::Hotswap;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{IRIS_INPUT, iris, iris_label, predict_json};

const CLIENTS: usize = 4;

fn worker_process(store: &StoreServer, control: &ControlServer) -> Hotswap {
    Hotswap::start(
        &[
            "data-plane",
            "--model-store",
            &store.addr.to_string(),
            "--control-plane",
            &control.internal.to_string(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_join_and_die_under_load_without_failed_calls() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/1/model.onnx", iris(2)).await;
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: '{}'}}}}}}",
        bucket.uri("iris")
    );
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let control = ControlServer::start(store.addr).await;
    let mut processes: Vec<Hotswap> = (0..3).map(|_| worker_process(&store, &control)).collect();
    eventually("three workers hold the model", || async {
        let w = control.workers().await;
        (w.len() == 3 && w.iter().all(|w| w.held.len() == 1)).then_some(())
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut p = control.predictor().await;
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let (mut ok, mut failures) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match p.predict(predict_json("iris", "", "", IRIS_INPUT)).await {
                    Ok(r) => {
                        assert_eq!(iris_label(&r.into_inner()), 2);
                        ok += 1;
                    }
                    Err(status) => failures.push(status),
                }
            }
            (ok, failures)
        }));
    }

    // Scale out: a fourth worker registers and receives traffic.
    let fourth = worker_process(&store, &control);
    let fourth_addr = fourth.addr.to_string();
    processes.push(fourth);
    eventually("the new worker takes calls", || async {
        let w = control.workers().await;
        w.iter()
            .find(|w| w.address == fourth_addr && w.routed > 0)
            .map(|_| ())
    })
    .await;

    // Scale in: kill one worker process (not the new one) under load.
    let mut victim = processes.remove(0);
    let victim_addr = victim.addr.to_string();
    victim.process.child.kill().expect("SIGKILL the worker");
    let _ = victim.process.child.wait();
    eventually("the dead worker is dropped", || async {
        let w = control.workers().await;
        (w.len() == 3 && w.iter().all(|w| w.address != victim_addr)).then_some(())
    })
    .await;
    // Scale in gracefully too: SIGTERM, as an operator or compose does.
    let mut leaving = processes.remove(0);
    let leaving_addr = leaving.addr.to_string();
    assert!(
        leaving
            .process
            .terminate(std::time::Duration::from_secs(30))
            .await
            .success()
    );
    eventually("the stopped worker is dropped", || async {
        let w = control.workers().await;
        (w.len() == 2 && w.iter().all(|w| w.address != leaving_addr)).then_some(())
    })
    .await;
    // Keep the load on the remaining workers a moment longer.
    let before: u64 = control.workers().await.iter().map(|w| w.routed).sum();
    eventually("calls keep flowing", || async {
        let now: u64 = control.workers().await.iter().map(|w| w.routed).sum();
        (now >= before + 50).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);

    let mut total = 0;
    for c in clients {
        let (ok, failures) = c.await.unwrap();
        assert!(
            failures.is_empty(),
            "failed calls while scaling: {failures:?}"
        );
        total += ok;
    }
    assert!(total > 0);
    drop(processes);
    control.stop().await;
    store.stop().await;
}
