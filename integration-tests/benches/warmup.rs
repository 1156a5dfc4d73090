//! The first call to a new version, with and without the warm-up inference
//! a worker runs before publishing it (data-plane/src/backend/warmup.rs),
//! against the steady median of the same process. `hotswap up` (release)
//! serves the iris-like model as an ONNX model and as a TensorFlow
//! SavedModel; versions 2 and 3 are written into the bucket one after the
//! other, and as soon as the worker has published one, a Predict naming it
//! is timed, then 50 more. Processes with and without `--no-warmup`
//! alternate, `ROUNDS` each, in one run.
//!
//! Run with `cargo build --release --features tensorflow --bin hotswap &&
//! cargo bench -p hotswap-integration-tests --features tensorflow --bench
//! warmup` (after `.ci/setup`).

use std::path::Path;
use std::time::{Duration, Instant};

use hotswap_integration_tests::compose::copy_readable;
use hotswap_integration_tests::process::{Hotswap, workspace_root};
use hotswap_integration_tests::wait::Wait;
use hotswap_integration_tests::worker::{IRIS_INPUT, predict_json};
use hotswap_proto::v1::predictor_client::PredictorClient;
use tonic::transport::Channel;

const ROUNDS: usize = 3;
const STEADY_CALLS: usize = 50;
const WAIT: Duration = Duration::from_secs(120);

/// The APIs served: name, example folder.
const MODELS: [(&str, &str); 2] = [("onnx", "iris-onnx"), ("tf", "iris-tensorflow")];

#[derive(Default)]
struct Samples {
    /// First call to each new version, µs.
    first: Vec<f64>,
    /// Median of the calls after it, µs.
    steady: Vec<f64>,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn copy_version(api: &str, example: &str, version: u64, bucket: &Path) {
    let from = workspace_root().join(format!("examples/{example}/models/iris/{version}"));
    let to = bucket.join(format!("models/{api}/{version}"));
    // Written under a hidden name and renamed, as an uploader would.
    let staging = bucket.join(format!("models/{api}/.{version}"));
    std::fs::create_dir_all(&staging).unwrap();
    copy_readable(&from, &staging);
    std::fs::rename(&staging, &to).unwrap();
}

async fn timed(p: &mut PredictorClient<Channel>, api: &str, version: u64) -> f64 {
    let started = Instant::now();
    let answer = p
        .predict(predict_json(api, "", &version.to_string(), IRIS_INPUT))
        .await
        .unwrap_or_else(|e| panic!("{api} version {version}: {e}"))
        .into_inner();
    let micros = started.elapsed().as_secs_f64() * 1e6;
    assert_eq!(answer.version, version);
    micros
}

/// One process: versions 2 and 3 of each API swapped in, each first call
/// and the steady median after it.
async fn round(warmup: bool, samples: &mut [Samples; 2]) {
    let bucket = tempfile::tempdir().unwrap();
    let mut config = String::new();
    for (api, example) in MODELS {
        copy_version(api, example, 1, bucket.path());
        config.push_str(&format!(
            "- {{name: {api}, predictor: {{type: {}, models: {{path: models/{api}/}}}}}}\n",
            if api == "tf" { "tensorflow" } else { "onnx" }
        ));
    }
    let config_file = bucket.path().join("hotswap.yaml");
    std::fs::write(&config_file, config).unwrap();
    let binary = release_binary();
    let mut args = vec![
        "up",
        config_file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    if !warmup {
        args.push("--no-warmup");
    }
    let up = Hotswap::start_binary(&binary, &args, &[]);
    let front = up.addr_of("control-plane");
    let mut p = PredictorClient::new(
        Channel::from_shared(format!("http://{front}"))
            .unwrap()
            .connect_lazy(),
    );
    for (api, _) in MODELS {
        Wait::new(format!("{api} version 1 served"))
            .within(WAIT)
            .until(|| {
                let mut p = p.clone();
                async move { p.predict(predict_json(api, "", "1", IRIS_INPUT)).await.ok() }
            })
            .await;
    }
    for version in [2, 3] {
        for (i, (api, example)) in MODELS.into_iter().enumerate() {
            copy_version(api, example, version, bucket.path());
            let published = format!("version={api}/{api} version {version} ");
            // Looked for often: the first call is timed from here.
            up.wait(format!("{api} {version} loaded"))
                .within(WAIT)
                .every(Duration::from_millis(5))
                .until(|| {
                    let loaded = up.log().iter().any(|l| {
                        l.contains("version loaded and published") && l.contains(&published)
                    });
                    std::future::ready(loaded.then_some(()))
                })
                .await;
            samples[i].first.push(timed(&mut p, api, version).await);
            let mut steady = Vec::with_capacity(STEADY_CALLS);
            for _ in 0..STEADY_CALLS {
                steady.push(timed(&mut p, api, version).await);
            }
            samples[i].steady.push(median(&mut steady));
        }
    }
}

/// target/release/hotswap beside this bench's own target folder.
fn release_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("hotswap");
    assert!(
        binary.exists(),
        "{} is missing: cargo build --release --features tensorflow --bin hotswap",
        binary.display()
    );
    binary
}

#[tokio::main]
async fn main() {
    let mut with: [Samples; 2] = Default::default();
    let mut without: [Samples; 2] = Default::default();
    for r in 0..ROUNDS {
        eprintln!("round {} of {ROUNDS}", r + 1);
        round(true, &mut with).await;
        round(false, &mut without).await;
    }
    println!(
        "first call to a new version vs the steady median after it ({ROUNDS} processes each, 2 swaps per model per process; medians, µs)"
    );
    println!("| model | warm-up | first call | steady p50 | first / steady |");
    println!("|---|---|---|---|---|");
    for (i, (api, _)) in MODELS.iter().enumerate() {
        for (label, s) in [("on", &mut with[i]), ("off", &mut without[i])] {
            let first = median(&mut s.first);
            let steady = median(&mut s.steady);
            println!(
                "| {api} | {label} | {first:.0} | {steady:.0} | {:.1}× |",
                first / steady
            );
        }
    }
}
