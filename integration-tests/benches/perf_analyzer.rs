//! The front door at wire speed, measured with the field's own tool:
//! NVIDIA's perf_analyzer (gRPC, unmodified) at concurrency 1, 4 and 16,
//! straight to a worker and through the control plane in front of it, for
//! a tiny model (the iris-like one: 4 floats in) and one that computes for
//! about a millisecond per call (`scripts/make_bench_models.py`), next to
//! ONNX Runtime called in-process through the worker's own backend code.
//! Then the worker's resident memory for one more loaded version of a
//! model holding 54.8 MB of weights. One table of ratios; the issue-14
//! targets checked beneath it.
//!
//! Run with `make bench-perf` (set-up, the model script's `onnx`, a
//! release build, then this). `-- --quick` measures shorter windows;
//! `-- --binary PATH` serves with another build of `hotswap` (an older
//! commit, for a before/after in one sitting); `-- --metrics` has every
//! process keep and serve Prometheus metrics (`--metrics-listen`), to
//! measure what they cost.
//! hotswap runs as release processes; perf_analyzer and the in-process
//! runs share the machine's two cores with them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hotswap_data_plane::backend::onnx::OnnxModel;
use hotswap_data_plane::tensor::{Tensor, TensorData};
use hotswap_integration_tests::latency::{Stats, in_process_with, micros};
use hotswap_integration_tests::perf::{Measured, make_bench_models, perf_analyzer, ready};
use hotswap_integration_tests::process::{Hotswap, hotswap_binary, model_store_args, runtimes};
use hotswap_integration_tests::worker::iris;

/// A model the benchmark serves.
struct Bench {
    name: &'static str,
    /// perf_analyzer's `--shape`.
    shape: &'static str,
    width: usize,
}

const MODELS: [Bench; 2] = [
    Bench {
        name: "tiny",
        shape: "input:1,4",
        width: 4,
    },
    Bench {
        name: "heavy",
        shape: "input:1,1024",
        width: 1024,
    },
];

const CONCURRENCY: [usize; 3] = [1, 4, 16];

/// One served row, kept for the targets.
struct Check {
    model: &'static str,
    concurrency: usize,
    path: &'static str,
    measured: Measured,
    direct_p50_us: f64,
    in_process_per_second: f64,
}

/// The process's resident set, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// Writes a file the way an uploader would: a temporary name, then a rename.
fn publish(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let part = to.with_extension("part");
    std::fs::copy(from, &part).unwrap();
    std::fs::rename(&part, to).unwrap();
}

fn in_process(model_file: &Path, bench: &Bench, concurrency: usize, total: usize) -> Stats {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(model_file, dir.path().join("model.onnx")).unwrap();
    let model = Arc::new(OnnxModel::load(dir.path(), &runtimes()).expect("load in process"));
    let width = bench.width;
    let input = move || {
        Tensor::new(
            "input",
            vec![1, width as i64],
            TensorData::F32(vec![0.5; width]),
        )
        .unwrap()
    };
    // Warm up first, as the served paths are before they are measured.
    in_process_with(&model, concurrency, (total / 10).max(concurrency), input);
    in_process_with(&model, concurrency, total, input)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let window_ms = if quick { 1000 } else { 3000 };
    let args: Vec<String> = std::env::args().collect();
    let binary = args
        .iter()
        .position(|a| a == "--binary")
        .and_then(|i| args.get(i + 1))
        .map_or_else(hotswap_binary, PathBuf::from);
    let metrics: &[&str] = if args.iter().any(|a| a == "--metrics") {
        &["--metrics-listen", "127.0.0.1:0"]
    } else {
        &[]
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        // The models: iris as it is, the other two made by the script.
        let made = tempfile::tempdir().unwrap();
        make_bench_models(made.path());
        let files: [(&str, PathBuf); 2] = [
            ("tiny", {
                let p = made.path().join("tiny.onnx");
                std::fs::write(&p, iris(0)).unwrap();
                p
            }),
            ("heavy", made.path().join("heavy.onnx")),
        ];
        let big = made.path().join("big.onnx");

        let bucket = tempfile::tempdir().unwrap();
        for (name, file) in &files {
            publish(file, &bucket.path().join(format!("{name}/1/model.onnx")));
        }
        std::fs::create_dir_all(bucket.path().join("big")).unwrap();
        let config = bucket.path().join("hotswap.yaml");
        let apis: String = ["tiny", "heavy", "big"]
            .iter()
            .map(|n| format!("- {{name: {n}, predictor: {{type: onnx, models: {{path: {n}/}}}}}}\n"))
            .collect();
        std::fs::write(&config, apis).unwrap();

        let store = Hotswap::start_binary(
            &binary,
            &model_store_args(&config, &[&["--poll-interval", "200ms"], metrics].concat()),
            &[],
        );
        let store_addr = store.addr.to_string();
        let control = Hotswap::start_binary(
            &binary,
            &[&["control-plane", "--model-store", &store_addr, "--listen", "127.0.0.1:0", "--internal-listen", "127.0.0.1:0"], metrics].concat(),
            &[],
        );
        let internal = control.addr_of("control-plane-internal").to_string();
        let worker = Hotswap::start_binary(
            &binary,
            &[&["data-plane", "--model-store", &store_addr, "--control-plane", &internal, "--listen", "127.0.0.1:0"], metrics].concat(),
            &[],
        );
        for bench in &MODELS {
            ready(worker.addr, bench.name).await;
            ready(control.addr, bench.name).await;
        }

        println!();
        println!("| model | concurrency | path | infer/s | p50 µs | p99 µs | p99 / p50 | p50 / worker direct | infer/s / in-process |");
        println!("|---|---|---|---|---|---|---|---|---|");
        let mut checks = Vec::new();
        for (bench, (_, file)) in MODELS.iter().zip(&files) {
            for concurrency in CONCURRENCY {
                let calls = if bench.name == "tiny" { 40_000 } else { 4_000 };
                let local = tokio::task::block_in_place(|| in_process(file, bench, concurrency, calls));
                let local_per_second = local.per_second;
                println!(
                    "| {} | {concurrency} | in-process ort | {:.0} | {:.0} | {:.0} | {:.1} | | 1.00 |",
                    bench.name,
                    local.per_second,
                    micros(local.p50),
                    micros(local.p99),
                    micros(local.p99) / micros(local.p50),
                );
                let mut direct_p50 = None;
                for (path, addr) in [("worker direct", worker.addr), ("front door", control.addr)] {
                    let measured = tokio::task::block_in_place(|| {
                        perf_analyzer(&addr.to_string(), bench.name, bench.shape, concurrency, window_ms)
                    });
                    match measured {
                        Ok(m) => {
                            let direct = *direct_p50.get_or_insert(m.p50_us);
                            println!(
                                "| {} | {concurrency} | {path} | {:.0} | {:.0} | {:.0} | {:.1} | {:.2} | {:.2} |",
                                bench.name,
                                m.per_second,
                                m.p50_us,
                                m.p99_us,
                                m.p99_us / m.p50_us,
                                m.p50_us / direct,
                                m.per_second / local_per_second,
                            );
                            checks.push(Check {
                                model: bench.name,
                                concurrency,
                                path,
                                measured: m,
                                direct_p50_us: direct,
                                in_process_per_second: local_per_second,
                            });
                        }
                        Err(e) => println!("| {} | {concurrency} | {path} | failed: {e} | | | | | |", bench.name),
                    }
                }
            }
        }

        // Memory: one more loaded version of a model with 54.8 MB of weights.
        let before = rss_bytes(worker.process.pid());
        publish(&big, &bucket.path().join("big/1/model.onnx"));
        ready(worker.addr, "big").await;
        // Let the loader's transient buffers go.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_bytes(worker.process.pid());
        let weights = std::fs::metadata(&big).unwrap().len();
        let grown = after.saturating_sub(before);
        println!();
        println!(
            "Memory: the worker's RSS grew by {:.1} MB loading `big` ({:.1} MB of weights): {:.2}× its weights.",
            grown as f64 / 1e6,
            weights as f64 / 1e6,
            grown as f64 / weights as f64,
        );

        println!();
        println!("Targets (issue 14):");
        for c in &checks {
            let (m, model, concurrency, path) = (&c.measured, c.model, c.concurrency, c.path);
            let ratio = m.p99_us / m.p50_us;
            println!(
                "- {model} c={concurrency} {path}: p99 {ratio:.1}× p50 ({})",
                if ratio <= 5.0 { "met, ≤ 5×" } else { "NOT met, > 5×" }
            );
            if model == "heavy" && concurrency == 16 {
                let share = m.per_second / c.in_process_per_second;
                println!(
                    "- heavy c=16 {path}: {share:.2} of in-process throughput ({})",
                    if share >= 0.9 { "met, ≥ 0.90" } else { "NOT met, < 0.90" }
                );
            }
            if model == "tiny" && path == "front door" && concurrency == 1 {
                let ratio = m.p50_us / c.direct_p50_us;
                println!(
                    "- tiny c=1 front door p50: {ratio:.2}× worker direct ({})",
                    if ratio <= 1.3 { "met, ≤ 1.3×" } else { "NOT met, > 1.3×" }
                );
            }
            if model == "tiny" && concurrency == 16 {
                let goal = if path == "front door" { 10_000.0 } else { 16_000.0 };
                println!(
                    "- tiny c=16 {path}: {:.0} infer/s ({})",
                    m.per_second,
                    if m.per_second >= goal {
                        format!("met, ≥ {goal:.0}")
                    } else {
                        format!("NOT met, < {goal:.0}")
                    }
                );
            }
        }
        let ratio = grown as f64 / weights as f64;
        println!("- memory per loaded ONNX version: {ratio:.2}× its weights ({})", if ratio <= 1.2 { "met, ≤ 1.2×" } else { "NOT met, > 1.2×" });
        drop(worker);
        drop(control);
        drop(store);
    });
}
