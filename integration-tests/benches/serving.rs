//! Serving speed of a worker on loopback next to in-process ONNX Runtime on
//! the same iris-like model, measured in one run:
//! - Predict (JSON) and ModelInfer (raw FP32) latency p50/p99 and throughput
//!   at concurrency 1, 4 and 16, against `OnnxModel::infer` called directly
//!   from as many threads (the ratio is what we track);
//! - Predict p99 while the served version is rewritten continuously, against
//!   the steady p99 at the same concurrency.
//!
//! Run with `cargo bench -p hotswap-integration-tests --bench serving`
//! (after `.ci/setup`); `-- --quick` for a smaller run. Client and server
//! share the machine (and this process), so the absolute figures include
//! the client's cost; the ratios compare like with like.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hotswap_data_plane::backend::onnx::OnnxModel;
use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::latency::{Stats, Until, concurrent, in_process, micros};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerServer, answer, iris, iris_infer, predict_json,
};

const CONFIG: &str = "- {name: iris, predictor: {type: onnx, models: {path: '{root}iris'}}}";

/// Predict (JSON) or ModelInfer (raw) calls from `concurrency` clients of
/// the worker.
async fn grpc_load(worker: &WorkerServer, concurrency: usize, until: Until, infer: bool) -> Stats {
    if infer {
        let mut clients = Vec::new();
        for _ in 0..concurrency {
            clients.push(worker.inference().await);
        }
        concurrent(clients, until, |mut c| async move {
            c.model_infer(iris_infer("iris", "")).await.expect("infer");
        })
        .await
    } else {
        let mut clients = Vec::new();
        for _ in 0..concurrency {
            clients.push(worker.predictor().await);
        }
        concurrent(clients, until, |mut c| async move {
            c.predict(predict_json("iris", "", "", IRIS_INPUT))
                .await
                .expect("predict");
        })
        .await
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let total = if quick { 800 } else { 8_000 };
    let swap_time = Duration::from_secs(if quick { 2 } else { 10 });
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let bucket = TestBucket::new(Backend::Local).await;
        bucket.put("iris/1/model.onnx", iris(0)).await;
        let store = StoreServer::start(&bucket, &CONFIG.replace("{root}", &bucket.uri("")), |_| {}).await;
        let worker = WorkerServer::start(&store, &bucket).await;
        let p = worker.predictor().await;
        answer(&p, "iris", "model served", |_| true).await;

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.onnx"), iris(0)).unwrap();
        let model = Arc::new(
            OnnxModel::load(dir.path(), &hotswap_integration_tests::process::runtimes())
                .expect("load in process"),
        );
        // Warm both paths up.
        grpc_load(&worker, 4, Until::Calls(400), false).await;
        in_process(&model, 4, 400);

        println!();
        println!("| concurrency | path | p50 µs | p99 µs | calls/s | p50 / in-process | calls/s / in-process |");
        println!("|---|---|---|---|---|---|---|");
        let mut steady_p99_at_4 = Duration::ZERO;
        for concurrency in [1, 4, 16] {
            let base = in_process(&model, concurrency, total);
            let predict = grpc_load(&worker, concurrency, Until::Calls(total), false).await;
            let infer = grpc_load(&worker, concurrency, Until::Calls(total), true).await;
            if concurrency == 4 {
                steady_p99_at_4 = predict.p99;
            }
            for (name, s) in [("in-process ort", &base), ("Predict (JSON)", &predict), ("ModelInfer (raw)", &infer)] {
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

        // Continuous swaps: rewrite the served version every 500 ms (longer than the
        // model-store's settle time, so each rewrite is published) while
        // four clients call Predict.
        let swapping = Arc::new(AtomicBool::new(true));
        let writer = {
            let swapping = swapping.clone();
            let path = match &bucket {
                TestBucket::Local { root } => root.path().join("iris/1/model.onnx"),
                _ => unreachable!("local bucket"),
            };
            tokio::spawn(async move {
                let mut label = 0;
                let mut rewrites = 0;
                while swapping.load(Ordering::Relaxed) {
                    label = (label + 1) % 3;
                    let tmp = path.with_extension("part~");
                    tokio::fs::write(&tmp, iris(label)).await.unwrap();
                    tokio::fs::rename(&tmp, &path).await.unwrap();
                    rewrites += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                rewrites
            })
        };
        let loads_before = worker.worker.table_stats().loads;
        let during = grpc_load(&worker, 4, Until::Elapsed(swap_time), false).await;
        swapping.store(false, Ordering::Relaxed);
        let rewrites = writer.await.unwrap();
        let swaps = worker.worker.table_stats().loads - loads_before;
        println!();
        println!("| Predict at concurrency 4 | p99 µs | p99 / steady p99 |");
        println!("|---|---|---|");
        println!("| steady | {:.0} | 1.0 |", micros(steady_p99_at_4));
        println!(
            "| during swaps ({swaps} versions loaded and swapped in, {rewrites} rewrites) | {:.0} | {:.2} |",
            micros(during.p99),
            micros(during.p99) / micros(steady_p99_at_4)
        );
        worker.stop().await;
        store.stop().await;
    });
}
