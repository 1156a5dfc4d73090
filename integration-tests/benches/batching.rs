//! Dynamic batching, measured with perf_analyzer through `hotswap up`'s
//! front door: the deep model (64 MatMul + Relu layers over 1024 floats,
//! about 1.8 ms per call in ONNX Runtime here, which the model script
//! prints; `scripts/make_bench_models.py`) served twice from one folder, once as it is and once with
//! `server_side_batching: {max_batch_size: 16, batch_interval: 2ms}`, at
//! concurrency 1, 4 and 16, the two runs of each level back to back. Ratios
//! are batched over unbatched; the mean batch is ModelStatistics'
//! inferences over executions of the batched API.
//!
//! Run with `make bench-perf` set up once (the model script's `onnx`, a
//! release build), then `cargo bench -p hotswap-integration-tests --bench
//! batching`. `-- --quick` measures shorter windows.

use std::time::Duration;

use hotswap_integration_tests::perf::{make_bench_models, perf_analyzer, ready};
use hotswap_integration_tests::process::Hotswap;
use hotswap_proto::inference::ModelStatisticsRequest;
use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;

const CONCURRENCY: [usize; 3] = [1, 4, 16];

/// The batched API's (inferences, executions) so far.
async fn counts(addr: std::net::SocketAddr) -> (u64, u64) {
    let mut client = GrpcInferenceServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let stats = client
        .model_statistics(ModelStatisticsRequest {
            name: "batched".into(),
            version: String::new(),
        })
        .await
        .expect("ModelStatistics")
        .into_inner();
    stats.model_stats.iter().fold((0, 0), |(i, e), s| {
        (i + s.inference_count, e + s.execution_count)
    })
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let window_ms = if quick { 1000 } else { 3000 };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let made = tempfile::tempdir().unwrap();
        make_bench_models(made.path());
        let bucket = tempfile::tempdir().unwrap();
        let version = bucket.path().join("deep/1");
        std::fs::create_dir_all(&version).unwrap();
        std::fs::copy(made.path().join("deep.onnx"), version.join("model.onnx")).unwrap();
        let config = bucket.path().join("hotswap.yaml");
        std::fs::write(
            &config,
            "- {name: unbatched, predictor: {type: onnx, models: {path: deep/}}}\n\
             - {name: batched, predictor: {type: onnx, models: {path: deep/}, \
                server_side_batching: {max_batch_size: 16, batch_interval: 2ms}}}\n",
        )
        .unwrap();
        let up = Hotswap::start(
            &["up", config.to_str().unwrap(), "--listen", "127.0.0.1:0"],
            &[],
        );
        let front = up.addr_of("control-plane");
        for api in ["unbatched", "batched"] {
            ready(front, api).await;
        }

        println!();
        println!("| concurrency | batching | infer/s | p50 µs | p99 µs | mean batch | infer/s batched / unbatched | p50 batched / unbatched |");
        println!("|---|---|---|---|---|---|---|---|");
        for concurrency in CONCURRENCY {
            let plain = tokio::task::block_in_place(|| {
                perf_analyzer(&front.to_string(), "unbatched", "input:1,1024", concurrency, window_ms)
            });
            let before = counts(front).await;
            // Batched, perf_analyzer reads max_batch_size from ModelConfig
            // and shapes without the batch dimension; it sends batches of 1.
            let batched = tokio::task::block_in_place(|| {
                perf_analyzer(&front.to_string(), "batched", "input:1024", concurrency, window_ms)
            });
            let after = counts(front).await;
            let mean = (after.0 - before.0) as f64 / (after.1 - before.1).max(1) as f64;
            match (plain, batched) {
                (Ok(p), Ok(b)) => {
                    println!(
                        "| {concurrency} | off | {:.0} | {:.0} | {:.0} | 1 | | |",
                        p.per_second, p.p50_us, p.p99_us
                    );
                    println!(
                        "| {concurrency} | 16 rows, 2 ms | {:.0} | {:.0} | {:.0} | {mean:.1} | {:.2} | {:.2} |",
                        b.per_second,
                        b.p50_us,
                        b.p99_us,
                        b.per_second / p.per_second,
                        b.p50_us / p.p50_us,
                    );
                }
                (p, b) => println!(
                    "| {concurrency} | failed | unbatched: {:?} | batched: {:?} | | | | |",
                    p.err(),
                    b.err()
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        drop(up);
    });
}
