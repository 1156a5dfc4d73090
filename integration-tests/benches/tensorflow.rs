//! TensorFlow serving cost: ModelInfer on the iris-like SavedModel through
//! the control plane and a worker, next to `TensorFlowModel::infer` called
//! in process (the `tensorflow` crate over TensorFlow's C API) on the same
//! SavedModel, in one run, at concurrency 1, 4 and 16: p50, p99,
//! throughput, and the ratios.
//!
//! Run with `cargo bench -p hotswap-integration-tests --features tensorflow
//! --bench tensorflow` (after `.ci/setup`); `-- --quick` for a smaller run.
//! Model-store, control plane, worker and client share this process and the
//! machine's cores, so the absolute figures include the client's cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotswap_data_plane::backend::tensorflow::TensorFlowModel;
use hotswap_data_plane::backend::{LoadSpec, Model};
use hotswap_data_plane::tensor::{Tensor, TensorData};
use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::saved_model;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::worker::{WorkerOptions, WorkerServer, answer, iris_infer};
use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use hotswap_proto::v1::PredictorType;

const CONFIG: &str = "- {name: iris, predictor: {type: tensorflow, models: {path: '{root}iris'}}}";

struct Stats {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

fn summarize(mut latencies: Vec<Duration>, wall: Duration) -> Stats {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        per_second: latencies.len() as f64 / wall.as_secs_f64(),
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// `total` ModelInfer calls spread over `concurrency` client tasks.
async fn through_control_plane(control: &ControlServer, concurrency: usize, total: usize) -> Stats {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut client: GrpcInferenceServiceClient<_> = control.inference().await;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(total / concurrency);
            for _ in 0..total / concurrency {
                let t = Instant::now();
                client
                    .model_infer(iris_infer("iris", ""))
                    .await
                    .expect("ModelInfer");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    summarize(all, start.elapsed())
}

/// The same number of calls straight into the backend, from threads.
fn in_process(model: &Arc<TensorFlowModel>, concurrency: usize, total: usize) -> Stats {
    let per_thread = total / concurrency;
    let start = Instant::now();
    let threads: Vec<_> = (0..concurrency)
        .map(|_| {
            let model = model.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::with_capacity(per_thread);
                for _ in 0..per_thread {
                    let t = Instant::now();
                    let input = Tensor::new(
                        "input",
                        vec![1, 4],
                        TensorData::F32(vec![5.1, 3.5, 1.4, 0.2]),
                    )
                    .unwrap();
                    model.infer(vec![input], &[]).expect("infer");
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let all = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    summarize(all, start.elapsed())
}

fn main() {
    // SAFETY: no other thread exists yet.
    unsafe { hotswap_data_plane::backend::prepare_env() };
    let quick = std::env::args().any(|a| a == "--quick");
    let total = if quick { 800 } else { 8_000 };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let bucket = TestBucket::new(Backend::Local).await;
        saved_model::put(&bucket, "iris/1", &saved_model::iris(0)).await;
        let config = CONFIG.replace("{root}", &bucket.uri(""));
        let store = StoreServer::start(&bucket, &config, |_| {}).await;
        let control = ControlServer::start(store.addr).await;
        let options = WorkerOptions {
            control_plane: Some(control.addr.to_string()),
            ..Default::default()
        };
        let worker = WorkerServer::start_with(store.addr, &bucket, options).await;
        control.wait_for_workers(1).await;
        answer(&control.predictor().await, "iris", "model served", |_| true).await;

        let spec = LoadSpec {
            predictor: PredictorType::Tensorflow,
            signature_key: String::new(),
            inferentia: 0,
        };
        let model = Arc::new(
            TensorFlowModel::load(&saved_model::iris(0), &spec, "iris").expect("load in process"),
        );
        // Warm both paths up.
        through_control_plane(&control, 4, 400).await;
        in_process(&model, 4, 400);

        println!();
        println!(
            "| concurrency | path | p50 µs | p99 µs | calls/s | p50 / in-process | calls/s / in-process |"
        );
        println!("|---|---|---|---|---|---|---|");
        for concurrency in [1, 4, 16] {
            let base = in_process(&model, concurrency, total);
            let routed = through_control_plane(&control, concurrency, total).await;
            for (name, s) in [
                ("in-process tensorflow", &base),
                ("ModelInfer via control plane", &routed),
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
