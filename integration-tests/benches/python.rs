//! Python predictors: throughput of a trivial predictor and of a
//! numpy-heavy one with 1 and 2 processes per worker, and the per-call
//! overhead of hotswap's process host against calling the same predictor in
//! plain Python, all in one run.
//!
//! Run with `cargo bench -p hotswap-integration-tests --bench python`
//! (after `.ci/setup`, which builds the venv with numpy); `-- --quick` for a
//! smaller run. The calls go straight to the worker's process pool (no
//! gRPC), so the figures isolate the Python host.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotswap_integration_tests::pool::predict_json;
use hotswap_integration_tests::process::{python, venv};
use hotswap_python::protocol::PredictorClass;
use hotswap_python::{PythonPool, PythonPredictorSpec};
use serde_json::json;

const TRIVIAL: &str = r#"
class PythonPredictor:
    def __init__(self, config, python_client):
        pass

    def predict(self, payload):
        return payload
"#;

const NUMPY: &str = r#"
import numpy as np

class PythonPredictor:
    def __init__(self, config, python_client):
        self.w = np.random.default_rng(0).random((256, 256))

    def predict(self, payload):
        x = np.asarray(payload, dtype=np.float64)
        return float((np.tanh(self.w @ self.w) @ x).sum())
"#;

fn payload(heavy: bool) -> serde_json::Value {
    if heavy {
        json!(vec![1.0; 256])
    } else {
        json!({"x": [1, 2, 3]})
    }
}

async fn pool(source: &str, processes: usize) -> Arc<PythonPool> {
    Arc::new(
        PythonPool::start(PythonPredictorSpec {
            source: source.to_owned(),
            file: "predictor.py".to_owned(),
            config: json!({}),
            processes,
            cache_size: 0,
            class: PredictorClass::Python,
            threads: 1,
            process: python(Some(venv())),
            models: None,
            env: Default::default(),
        })
        .await
        .expect("predictor starts"),
    )
}

/// Calls per second with `clients` concurrent callers, and the mean latency
/// of one call.
async fn run(pool: &Arc<PythonPool>, heavy: bool, clients: usize, total: usize) -> (f64, Duration) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..total / clients {
                predict_json(&pool, payload(heavy), BTreeMap::new())
                    .await
                    .expect("predict");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let wall = start.elapsed();
    (
        total as f64 / wall.as_secs_f64(),
        wall * clients as u32 / total as u32,
    )
}

/// The same predictor called in a loop in plain Python: µs per call.
fn plain_python(source: &str, heavy: bool, calls: usize) -> f64 {
    let script = format!(
        "{source}\nimport json, time\np = PythonPredictor({{}}, None)\npayload = json.loads({payload:?})\n\
         for _ in range(100): p.predict(payload)\nt = time.perf_counter()\n\
         for _ in range({calls}): p.predict(payload)\nprint((time.perf_counter() - t) / {calls} * 1e6)\n",
        payload = payload(heavy).to_string()
    );
    // The same numeric-library threads a single hotswap process gets.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string();
    let out = std::process::Command::new(venv().join("bin/python"))
        .args(["-c", &script])
        .env("OMP_NUM_THREADS", &threads)
        .env("OPENBLAS_NUM_THREADS", &threads)
        .env("MKL_NUM_THREADS", &threads)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number")
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let total = if quick { 400 } else { 4_000 };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        println!();
        println!("| predictor | processes | concurrent callers | calls/s | vs 1 process |");
        println!("|---|---|---|---|---|");
        let mut latency = Vec::new();
        for (name, source, heavy) in [("trivial", TRIVIAL, false), ("numpy 256x256", NUMPY, true)] {
            let mut one = 0.0;
            for processes in [1, 2] {
                let pool = pool(source, processes).await;
                run(&pool, heavy, 4, total / 10).await; // warm-up
                let (per_second, _) = run(&pool, heavy, 4, total).await;
                if processes == 1 {
                    one = per_second;
                    let (_, mean) = run(&pool, heavy, 1, total / 2).await;
                    latency.push((name, source, heavy, mean));
                }
                println!("| {name} | {processes} | 4 | {per_second:.0} | {:.2} |", per_second / one);
            }
        }
        println!();
        println!("| predictor | hotswap µs/call (1 process, 1 caller) | plain Python µs/call | overhead µs |");
        println!("|---|---|---|---|");
        for (name, source, heavy, mean) in latency {
            let plain = plain_python(source, heavy, total);
            let ours = mean.as_secs_f64() * 1e6;
            println!("| {name} | {ours:.1} | {plain:.1} | {:.1} |", ours - plain);
        }
    });
}
