//! The control plane's cost: Predict through the control plane next to
//! Predict straight to the worker behind it, in the same run, at
//! concurrency 1, 4 and 16 (p50, p99, throughput, and the ratios).
//!
//! Run with `cargo bench -p hotswap-integration-tests --bench routing`
//! (after `.ci/setup`); `-- --quick` for a smaller run. Model-store, control
//! plane, worker and client share this process and the machine's cores.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::latency::{Stats, Until, concurrent, micros};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerOptions, WorkerServer, eventually, iris, predict_json,
};
use hotswap_proto::v1::predictor_client::PredictorClient;
use tonic::transport::Channel;

/// Predict calls from `concurrency` clients, each on a connection of its
/// own to `addr`.
async fn load(addr: std::net::SocketAddr, concurrency: usize, total: usize) -> Stats {
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        clients.push(
            PredictorClient::<Channel>::connect(format!("http://{addr}"))
                .await
                .unwrap(),
        );
    }
    concurrent(clients, Until::Calls(total), |mut c| async move {
        c.predict(predict_json("iris", "", "", IRIS_INPUT))
            .await
            .expect("predict");
    })
    .await
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let total = if quick { 800 } else { 8_000 };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let bucket = TestBucket::new(Backend::Local).await;
        bucket.put("iris/1/model.onnx", iris(0)).await;
        let config = format!(
            "- {{name: iris, predictor: {{type: onnx, models: {{path: '{}'}}}}}}",
            bucket.uri("iris")
        );
        let store = StoreServer::start(&bucket, &config, |_| {}).await;
        let control = ControlServer::start(store.addr).await;
        let options = WorkerOptions {
            control_plane: Some(control.internal.to_string()),
            ..Default::default()
        };
        let worker = WorkerServer::start_with(store.addr, &bucket, options).await;
        eventually("the worker holds the model", || async {
            control
                .workers()
                .await
                .iter()
                .any(|w| !w.held.is_empty())
                .then_some(())
        })
        .await;
        // Warm both paths up.
        load(worker.addr, 4, 400).await;
        load(control.addr, 4, 400).await;

        println!();
        println!(
            "| concurrency | path | p50 µs | p99 µs | calls/s | p50 / direct | calls/s / direct |"
        );
        println!("|---|---|---|---|---|---|---|");
        for concurrency in [1, 4, 16] {
            let direct = load(worker.addr, concurrency, total).await;
            let routed = load(control.addr, concurrency, total).await;
            for (name, s) in [
                ("direct to the worker", &direct),
                ("through the control plane", &routed),
            ] {
                println!(
                    "| {concurrency} | {name} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
                    micros(s.p50),
                    micros(s.p99),
                    s.per_second,
                    micros(s.p50) / micros(direct.p50),
                    s.per_second / direct.per_second,
                );
            }
        }
        worker.stop().await;
        control.stop().await;
        store.stop().await;
    });
}
