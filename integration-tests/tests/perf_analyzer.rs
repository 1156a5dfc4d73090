//! NVIDIA's perf_analyzer, unmodified (no `-x`), over gRPC and over HTTP
//! (`-i http`: the REST binding on the same port), against a worker process
//! and against the front door of a control plane with a worker behind it.
//! It finds the version it measures by ModelStatistics' `queue.count`
//! growing and aborts unless the compute counts agree: before the
//! statistics split a request's time as Triton does, it stopped with
//! "failed to find the requested model version".

use std::process::{Command, Stdio};
use std::time::Duration;

use hotswap_integration_tests::process::{
    ChildGuard, Hotswap, model_store_args, venv, workspace_root,
};
use hotswap_integration_tests::wait::Wait;
use hotswap_integration_tests::worker::{IRIS_INPUT, predict_json};
use hotswap_proto::v1::predictor_client::PredictorClient;

/// A hang guard on one perf_analyzer run, not a speed claim: it measures
/// 500 ms windows until three agree (at most 10).
const RUN_WITHIN: Duration = Duration::from_secs(120);

/// Runs perf_analyzer against `addr` over `protocol` (grpc or http) at
/// concurrency 2; its CSV report, or its output when it failed.
fn perf_analyzer(protocol: &str, addr: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("report.csv");
    let binary = venv().join("bin/perf_analyzer");
    assert!(
        binary.exists(),
        "{} is missing: run .ci/setup",
        binary.display()
    );
    let log = dir.path().join("output.txt");
    let mut command = Command::new(&binary);
    command
        .args([
            "-i",
            protocol,
            "-u",
            addr,
            "-m",
            "iris",
            "--shape",
            "input:1,4",
        ])
        .args(["--concurrency-range", "2:2", "-p", "500"])
        // Any three windows count as stable: the test is about the
        // protocol, and the suite's other tests load the machine.
        .args(["--stability-percentage", "1000", "--max-trials", "10", "-f"])
        .arg(&csv)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("err.txt")).unwrap(),
        ));
    let mut child = ChildGuard::spawn("perf_analyzer", &mut command);
    let status = child
        .exit_within(RUN_WITHIN)
        .unwrap_or_else(|| panic!("perf_analyzer did not finish within {RUN_WITHIN:?}"));
    let output = std::fs::read_to_string(&log).unwrap_or_default()
        + &std::fs::read_to_string(dir.path().join("err.txt")).unwrap_or_default();
    if !status.success() {
        return Err(format!("{status}\n{output}"));
    }
    std::fs::read_to_string(&csv).map_err(|e| format!("no CSV ({e})\n{output}"))
}

/// Waits (bounded) until `addr` answers a Predict for iris.
async fn serving(addr: std::net::SocketAddr) {
    Wait::new(format!("{addr} to serve iris"))
        .every(Duration::from_millis(100))
        .until(|| async move {
            let mut client = PredictorClient::connect(format!("http://{addr}"))
                .await
                .ok()?;
            client
                .predict(predict_json("iris", "", "", IRIS_INPUT))
                .await
                .ok()
                .map(drop)
        })
        .await
}

/// The CSV's one measured row: concurrency 2, some inferences per second,
/// and the server's queue and compute columns filled in.
fn check_report(csv: &str, target: &str) {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let row: Vec<&str> = lines.next().expect("a measured row").split(',').collect();
    let column = |name: &str| -> f64 {
        let i = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column in {header:?}"));
        row[i].parse().unwrap()
    };
    assert_eq!(column("Concurrency"), 2.0, "{target}: {csv}");
    assert!(column("Inferences/Second") > 0.0, "{target}: {csv}");
    assert!(column("Server Compute Infer") > 0.0, "{target}: {csv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf_analyzer_runs_unmodified_against_a_worker_and_the_front_door() {
    let config = workspace_root().join("examples/iris-onnx/hotswap.yaml");
    let store = Hotswap::start(&model_store_args(&config, &[]), &[]);
    let store_addr = store.addr.to_string();
    let alone = Hotswap::start(
        &[
            "data-plane",
            "--model-store",
            &store_addr,
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let control = Hotswap::start(
        &[
            "control-plane",
            "--model-store",
            &store_addr,
            "--listen",
            "127.0.0.1:0",
            "--internal-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let internal = control.addr_of("control-plane-internal").to_string();
    let _behind = Hotswap::start(
        &[
            "data-plane",
            "--model-store",
            &store_addr,
            "--control-plane",
            &internal,
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    for (target, addr) in [("a worker", alone.addr), ("the front door", control.addr)] {
        serving(addr).await;
        // gRPC and HTTP answer on the same port.
        for protocol in ["grpc", "http"] {
            let report =
                tokio::task::spawn_blocking(move || perf_analyzer(protocol, &addr.to_string()))
                    .await
                    .unwrap();
            match report {
                Ok(csv) => check_report(&csv, target),
                Err(output) => {
                    panic!("perf_analyzer -i {protocol} against {target} failed: {output}")
                }
            }
        }
    }
}
