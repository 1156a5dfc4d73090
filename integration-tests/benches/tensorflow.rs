//! TensorFlow serving cost: ModelInfer on the iris-like SavedModel through
//! the control plane and a worker, next to `TensorFlowModel::infer` called
//! in process (the `tensorflow` crate over TensorFlow's C API) on the same
//! SavedModel, in one run, at concurrency 1, 4 and 16: p50, p99,
//! throughput, and the ratios. The same model as ONNX through the same
//! path (another API on the same worker) tells the serving path's own cost
//! from TensorFlow's.
//!
//! Run with `cargo bench -p hotswap-integration-tests --features tensorflow
//! --bench tensorflow` (after `.ci/setup`); `-- --quick` for a smaller run.
//! Model-store, control plane, worker and client share this process and the
//! machine's cores, so the absolute figures include the client's cost.

use std::sync::Arc;

use hotswap_data_plane::backend::LoadSpec;
use hotswap_data_plane::backend::tensorflow::TensorFlowModel;
use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::latency::{Stats, Until, concurrent, in_process, micros};
use hotswap_integration_tests::saved_model;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::worker::{WorkerOptions, WorkerServer, answer, iris_infer};
use hotswap_proto::v1::PredictorType;

const CONFIG: &str = "
- {name: iris, predictor: {type: tensorflow, models: {path: '{root}iris'}}}
- {name: iris-onnx, predictor: {type: onnx, models: {path: '{root}iris-onnx'}}}";

/// `total` ModelInfer calls to `api` from `concurrency` clients of the
/// control plane.
async fn through_control_plane(
    control: &ControlServer,
    api: &'static str,
    concurrency: usize,
    total: usize,
) -> Stats {
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        clients.push(control.inference().await);
    }
    concurrent(clients, Until::Calls(total), move |mut c| async move {
        c.model_infer(iris_infer(api, ""))
            .await
            .expect("ModelInfer");
    })
    .await
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let total = if quick { 800 } else { 8_000 };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let bucket = TestBucket::new(Backend::Local).await;
        saved_model::put(&bucket, "iris/1", &saved_model::iris(0)).await;
        bucket
            .put(
                "iris-onnx/1/model.onnx",
                hotswap_integration_tests::worker::iris(0),
            )
            .await;
        let config = CONFIG.replace("{root}", &bucket.uri(""));
        let store = StoreServer::start(&bucket, &config, |_| {}).await;
        let control = ControlServer::start(store.addr).await;
        let options = WorkerOptions {
            control_plane: Some(control.internal.to_string()),
            ..Default::default()
        };
        let worker = WorkerServer::start_with(store.addr, &bucket, options).await;
        control.wait_for_workers(1).await;
        for api in ["iris", "iris-onnx"] {
            answer(&control.predictor().await, api, "model served", |_| true).await;
        }

        let spec = LoadSpec {
            predictor: PredictorType::Tensorflow,
            signature_key: String::new(),
            inferentia: 0,
            warmup: true,
        };
        let model = Arc::new(
            TensorFlowModel::load(
                &saved_model::iris(0),
                &spec,
                "iris",
                &hotswap_integration_tests::process::runtimes(),
            )
            .expect("load in process"),
        );
        // Warm both paths up.
        through_control_plane(&control, "iris", 4, 400).await;
        through_control_plane(&control, "iris-onnx", 4, 400).await;
        in_process(&model, 4, 400);

        println!();
        println!(
            "| concurrency | path | p50 µs | p99 µs | calls/s | p50 / in-process | calls/s / in-process |"
        );
        println!("|---|---|---|---|---|---|---|");
        for concurrency in [1, 4, 16] {
            let base = in_process(&model, concurrency, total);
            let routed = through_control_plane(&control, "iris", concurrency, total).await;
            let onnx = through_control_plane(&control, "iris-onnx", concurrency, total).await;
            for (name, s) in [
                ("in-process tensorflow", &base),
                ("ModelInfer via control plane", &routed),
                ("same path, the ONNX model", &onnx),
            ] {
                println!(
                    "| {concurrency} | {name} | {:.0} | {:.0} | {:.0} | {:.1} | {:.2} |",
                    micros(s.p50),
                    micros(s.p99),
                    s.per_second,
                    micros(s.p50) / micros(base.p50),
                    s.per_second / base.per_second,
                );
            }
        }
        worker.stop().await;
        control.stop().await;
        store.stop().await;
    });
}
