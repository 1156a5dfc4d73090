//! NVIDIA's perf_analyzer (the PyPI wheel's, unmodified) run by the
//! benchmarks: one concurrency level against one model, its CSV report read
//! back.

use std::process::Command;
use std::time::Duration;

use hotswap_proto::inference::ModelReadyRequest;
use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;

use crate::process::{ChildGuard, venv, workspace_root};
use crate::wait::Wait;

/// What one perf_analyzer run reported.
pub struct Measured {
    /// Inferences per second.
    pub per_second: f64,
    /// The median latency, in microseconds.
    pub p50_us: f64,
    /// The 99th percentile latency, in microseconds.
    pub p99_us: f64,
}

/// perf_analyzer against `addr` for `model` (inputs shaped by `shape`, its
/// `--shape` argument) at `concurrency`, measuring windows of `window_ms`:
/// its CSV row, or why it failed.
pub fn perf_analyzer(
    addr: &str,
    model: &str,
    shape: &str,
    concurrency: usize,
    window_ms: u32,
) -> Result<Measured, String> {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("report.csv");
    let out = dir.path().join("output.txt");
    let range = format!("{concurrency}:{concurrency}");
    let mut command = Command::new(venv().join("bin/perf_analyzer"));
    command
        .args(["-i", "grpc", "-u", addr, "-m", model, "--shape", shape])
        .args([
            "--concurrency-range",
            &range,
            "-p",
            &window_ms.to_string(),
            "-f",
        ])
        .arg(&csv)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(dir.path().join("err.txt")).unwrap());
    let mut child = ChildGuard::spawn("perf_analyzer", &mut command);
    // Ten windows at most, each a few times the window with its set-up.
    let within = Duration::from_millis(u64::from(window_ms) * 40 + 30_000);
    let status = child
        .exit_within(within)
        .ok_or("did not finish in time".to_owned())?;
    let output = std::fs::read_to_string(&out).unwrap_or_default()
        + &std::fs::read_to_string(dir.path().join("err.txt")).unwrap_or_default();
    if !status.success() {
        let last = output
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!("{status}: {last}"));
    }
    let text = std::fs::read_to_string(&csv).map_err(|e| format!("no CSV: {e}"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let row: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let column = |name: &str| -> Result<f64, String> {
        let i = header
            .iter()
            .position(|h| *h == name)
            .ok_or(format!("no {name} column"))?;
        row.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or(format!("no {name} value"))
    };
    Ok(Measured {
        per_second: column("Inferences/Second")?,
        p50_us: column("p50 latency")?,
        p99_us: column("p99 latency")?,
    })
}

/// Waits (bounded) until `addr` says `model` is ready.
pub async fn ready(addr: std::net::SocketAddr, model: &str) {
    Wait::new(format!("{model} ready at {addr}"))
        .within(Duration::from_secs(60))
        .every(Duration::from_millis(100))
        .until(|| async move {
            let mut client = GrpcInferenceServiceClient::connect(format!("http://{addr}"))
                .await
                .ok()?;
            let ready = client
                .model_ready(ModelReadyRequest {
                    name: model.to_owned(),
                    version: String::new(),
                })
                .await
                .ok()?
                .into_inner()
                .ready;
            ready.then_some(())
        })
        .await
}

/// Writes the benchmark models (`heavy.onnx`, `big.onnx`) into `out` with
/// integration-tests/scripts/make_bench_models.py.
pub fn make_bench_models(out: &std::path::Path) {
    let script = workspace_root().join("integration-tests/scripts/make_bench_models.py");
    let status = Command::new(venv().join("bin/python"))
        .arg(&script)
        .arg(out)
        .status()
        .expect("run the model script");
    assert!(
        status.success(),
        "{} failed (needs `pip install onnx==1.19.1`; `make bench-perf` does it)",
        script.display()
    );
}
