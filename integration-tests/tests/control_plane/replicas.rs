//! Several control planes side by side: a worker registers with every one
//! its `--control-plane` names (a list here; a name resolving to several
//! addresses works the same), any of them routes any call, and when one
//! stops under load the calls through the other keep succeeding.

use std::time::Duration;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::load::Load;
use hotswap_integration_tests::process::Hotswap;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{IRIS_INPUT, iris, iris_label, predict_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_registers_with_every_control_plane_and_one_may_stop() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/1/model.onnx", iris(2)).await;
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: '{}'}}}}}}",
        bucket.uri("iris")
    );
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let a = ControlServer::start(store.addr).await;
    let b = ControlServer::start(store.addr).await;
    let both = format!("{},{}", a.internal, b.internal);
    let _worker = Hotswap::start(
        &[
            "data-plane",
            "--model-store",
            &store.addr.to_string(),
            "--control-plane",
            &both,
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    for control in [&a, &b] {
        eventually("the worker registered and holds iris", || async {
            let w = control.workers().await;
            (w.len() == 1 && w[0].held.len() == 1).then_some(())
        })
        .await;
    }
    // Either routes a call.
    for control in [&a, &b] {
        let r = control
            .predictor()
            .await
            .predict(predict_json("iris", "", "", IRIS_INPUT))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(iris_label(&r), 2);
    }

    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(b.predictor().await);
    }
    let load = Load::start(clients, |mut p| async move {
        let r = p
            .predict(predict_json("iris", "", "", IRIS_INPUT))
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(iris_label(&r.into_inner()), 2);
        Ok(())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.stop().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    load.stop()
        .await
        .assert_clean("calls through the surviving control plane");
    let w = b.workers().await;
    assert_eq!(w.len(), 1, "the worker stays registered with the survivor");
}
