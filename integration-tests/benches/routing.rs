//! The control plane's cost: Predict through the control plane next to
//! Predict straight to the worker behind it, in the same run, at
//! concurrency 1, 4 and 16 (p50, p99, throughput, and the ratios); and the
//! same two paths on a second stack with TLS on every listener (mutual
//! between the planes, certificates made at run time), next to plaintext.
//!
//! Run with `cargo bench -p hotswap-integration-tests --bench routing`
//! (after `.ci/setup`); `-- --quick` for a smaller run. Model-stores,
//! control planes, workers and clients share this process and the
//! machine's cores.

use hotswap_common::client::endpoint;
use hotswap_common::trust::ClusterCredentials;
use hotswap_control_plane::ControlPlaneConfig;
use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::certs::TestCa;
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::latency::{Stats, Until, concurrent, micros};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerOptions, WorkerServer, iris, predict_json,
};
use hotswap_proto::v1::predictor_client::PredictorClient;

/// Predict calls from `concurrency` clients, each on a connection of its
/// own to `addr` (over TLS, showing a certificate, when `client` has TLS).
async fn load(
    addr: std::net::SocketAddr,
    client: &ClusterCredentials,
    concurrency: usize,
    total: usize,
) -> Stats {
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        let channel = endpoint(&addr.to_string(), client)
            .unwrap()
            .connect()
            .await
            .unwrap();
        clients.push(PredictorClient::new(channel));
    }
    concurrent(clients, Until::Calls(total), |mut c| async move {
        c.predict(predict_json("iris", "", "", IRIS_INPUT))
            .await
            .expect("predict");
    })
    .await
}

/// A model-store, a control plane and one worker on `bucket`, with the
/// cluster's TLS from `ca` (on every listener) or plaintext; and what a
/// client of it holds.
struct Stack {
    store: StoreServer,
    control: ControlServer,
    worker: WorkerServer,
    client: ClusterCredentials,
}

impl Stack {
    async fn start(bucket: &TestBucket, config: &str, ca: Option<&TestCa>) -> Stack {
        let member = |name: &str| ClusterCredentials {
            tls: ca.map(|ca| ca.tls(name)),
            token: None,
        };
        let store_cluster = member("model-store");
        let store = StoreServer::start(bucket, config, |c| c.cluster = store_cluster).await;
        let control_cluster = member("control-plane");
        let control = ControlServer::start_with(ControlPlaneConfig {
            model_store: store.addr.to_string(),
            clients: control_cluster.client_facing(None),
            cluster: control_cluster,
            ..ControlPlaneConfig::default()
        })
        .await;
        let options = WorkerOptions {
            control_plane: Some(control.internal.to_string()),
            cluster: member("worker"),
            ..Default::default()
        };
        let worker = WorkerServer::start_with(store.addr, bucket, options).await;
        eventually("the worker holds the model", || async {
            control
                .workers()
                .await
                .iter()
                .any(|w| !w.held.is_empty())
                .then_some(())
        })
        .await;
        // The worker behind the control plane takes calls from the cluster
        // only: the benchmark's client shows a certificate of the CA.
        let client = member("client");
        Stack {
            store,
            control,
            worker,
            client,
        }
    }

    async fn stop(self) {
        self.worker.stop().await;
        self.control.stop().await;
        self.store.stop().await;
    }
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
        let ca = TestCa::new("routing benchmark CA");
        let plain = Stack::start(&bucket, &config, None).await;
        let tls = Stack::start(&bucket, &config, Some(&ca)).await;
        // Warm every path up.
        for stack in [&plain, &tls] {
            load(stack.worker.addr, &stack.client, 4, 400).await;
            load(stack.control.addr, &stack.client, 4, 400).await;
        }

        println!();
        println!(
            "| concurrency | path | p50 µs | p99 µs | calls/s | p50 / direct | calls/s / direct |"
        );
        println!("|---|---|---|---|---|---|---|");
        let mut tls_rows = Vec::new();
        for concurrency in [1, 4, 16] {
            let mut measured = Vec::new();
            for (label, stack) in [("plaintext", &plain), ("TLS", &tls)] {
                let direct = load(stack.worker.addr, &stack.client, concurrency, total).await;
                let routed = load(stack.control.addr, &stack.client, concurrency, total).await;
                for (name, s) in [
                    ("direct to the worker", &direct),
                    ("through the control plane", &routed),
                ] {
                    println!(
                        "| {concurrency} | {name}, {label} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
                        micros(s.p50),
                        micros(s.p99),
                        s.per_second,
                        micros(s.p50) / micros(direct.p50),
                        s.per_second / direct.per_second,
                    );
                }
                measured.push((direct, routed));
            }
            tls_rows.push((concurrency, measured));
        }

        println!();
        println!("| concurrency | path | p50 TLS / plaintext | p99 TLS / plaintext | calls/s TLS / plaintext |");
        println!("|---|---|---|---|---|");
        for (concurrency, measured) in &tls_rows {
            let [(plain_direct, plain_routed), (tls_direct, tls_routed)] = measured.as_slice()
            else {
                unreachable!("two stacks measured")
            };
            for (name, p, t) in [
                ("direct to the worker", plain_direct, tls_direct),
                ("through the control plane", plain_routed, tls_routed),
            ] {
                println!(
                    "| {concurrency} | {name} | {:.2} | {:.2} | {:.2} |",
                    micros(t.p50) / micros(p.p50),
                    micros(t.p99) / micros(p.p99),
                    t.per_second / p.per_second,
                );
            }
        }
        tls.stop().await;
        plain.stop().await;
    });
}
