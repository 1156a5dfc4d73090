//! Routing by model and version: calls reach a worker that holds the
//! version, `latest` resolves, unknown names are NOT_FOUND from the control
//! plane itself, and with one model per worker's cache each model stays on
//! the worker that loaded it.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerOptions, WorkerServer, answer, iris, iris_infer, iris_label, predict_json,
};
use tonic::Code;

async fn workers(
    n: usize,
    store: &StoreServer,
    bucket: &TestBucket,
    control: &ControlServer,
) -> Vec<WorkerServer> {
    let mut workers = Vec::new();
    for _ in 0..n {
        let options = WorkerOptions {
            control_plane: Some(control.internal.to_string()),
            ..Default::default()
        };
        workers.push(WorkerServer::start_with(store.addr, bucket, options).await);
    }
    control.wait_for_workers(n).await;
    workers
}

fn total_routed(workers: &[hotswap_proto::v1::WorkerStatus]) -> u64 {
    workers.iter().map(|w| w.routed).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_reach_a_worker_holding_the_version() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    bucket.put("iris/2/model.onnx", iris(1)).await;
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: '{}'}}}}}}",
        bucket.uri("iris")
    );
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let control = ControlServer::start(store.addr).await;
    let workers = workers(3, &store, &bucket, &control).await;
    // Eager loading: every worker reports both versions.
    eventually("every worker holds both versions", || async {
        let w = control.workers().await;
        w.iter().all(|w| w.held.len() == 2).then_some(())
    })
    .await;
    let mut p = control.predictor().await;
    let mut inf = control.inference().await;

    for _ in 0..12 {
        let r = p
            .predict(predict_json("iris", "", "latest", IRIS_INPUT))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.version, iris_label(&r)), (2, 1));
        let r = p
            .predict(predict_json("iris", "iris", "1", IRIS_INPUT))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.version, iris_label(&r)), (1, 0));
        let r = inf
            .model_infer(iris_infer("iris", ""))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (r.model_name.as_str(), r.model_version.as_str()),
            ("iris", "2")
        );
    }
    // Calls spread over the workers.
    let status = control.workers().await;
    assert_eq!(total_routed(&status), 36);
    assert!(
        status.iter().filter(|w| w.routed > 0).count() >= 2,
        "{status:?}"
    );

    // Unknown names never reach a worker.
    let before = total_routed(&control.workers().await);
    let e = p
        .predict(predict_json("irises", "", "", IRIS_INPUT))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("apis: iris"), "{}", e.message());
    let e = p
        .predict(predict_json("iris", "", "7", IRIS_INPUT))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("versions: 1, 2"), "{}", e.message());
    let e = inf.model_infer(iris_infer("nope", "")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(total_routed(&control.workers().await), before);

    // A new version becomes latest once a worker holds it.
    bucket.put("iris/3/model.onnx", iris(2)).await;
    answer(&p, "iris", "version 3 is latest", |r| {
        r.version == 3 && iris_label(r) == 2
    })
    .await;
    for w in workers {
        w.stop().await;
    }
    control.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_model_stays_on_the_worker_that_loaded_it() {
    let bucket = TestBucket::new(Backend::Local).await;
    for (i, m) in ["m1", "m2", "m3"].iter().enumerate() {
        bucket
            .put(&format!("models/{m}/1/model.onnx"), iris(i))
            .await;
    }
    let config = format!(
        "- {{name: multi, predictor: {{type: onnx, models: {{dir: '{}', cache_size: 1, disk_cache_size: 1}}}}}}",
        bucket.uri("models")
    );
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let control = ControlServer::start(store.addr).await;
    let workers = workers(3, &store, &bucket, &control).await;
    let mut p = control.predictor().await;
    for round in 0..10 {
        for (i, m) in ["m1", "m2", "m3"].iter().enumerate() {
            let r = p
                .predict(predict_json("multi", m, "", IRIS_INPUT))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                (r.model.as_str(), iris_label(&r)),
                (*m, i as i64),
                "round {round}"
            );
        }
    }
    let loads: Vec<u64> = workers
        .iter()
        .map(|w| w.worker.table_stats().loads)
        .collect();
    assert_eq!(loads, vec![1, 1, 1], "one model per worker, no load thrash");
    // Each worker reports the one model it holds (reports follow within
    // a moment).
    eventually("each worker reports its model", || async {
        let status = control.workers().await;
        let mut held: Vec<String> = status
            .iter()
            .flat_map(|w| w.held.iter().map(|h| h.model.clone()))
            .collect();
        held.sort();
        (held == ["m1", "m2", "m3"] && status.iter().all(|w| w.held.len() == 1)).then_some(())
    })
    .await;
    for w in workers {
        w.stop().await;
    }
    control.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_moves_on_for_models_loaded_on_demand() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: '{}', cache_size: 2, disk_cache_size: 2}}}}}}",
        bucket.uri("iris")
    );
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let control = ControlServer::start(store.addr).await;
    let workers = workers(2, &store, &bucket, &control).await;
    let mut p = control.predictor().await;
    let r = p
        .predict(predict_json("iris", "", "", IRIS_INPUT))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.version, 1);
    // Held: v1 only. A new version must still become latest (the worker
    // holding v1 loads it in the background) without a failed call.
    bucket.put("iris/2/model.onnx", iris(1)).await;
    eventually("version 2 is latest", || {
        let mut p = p.clone();
        async move {
            let r = p
                .predict(predict_json("iris", "", "", IRIS_INPUT))
                .await
                .unwrap()
                .into_inner();
            (r.version == 2 && iris_label(&r) == 1).then_some(())
        }
    })
    .await;
    for w in workers {
        w.stop().await;
    }
    control.stop().await;
    store.stop().await;
}
