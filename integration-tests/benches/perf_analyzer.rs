//! The front door at wire speed, measured with the field's own tool:
//! NVIDIA's perf_analyzer (gRPC, unmodified) at concurrency 1, 4 and 16,
//! straight to a worker and through the control plane in front of it, for
//! a tiny model (the iris-like one: 4 floats in) and one that computes for
//! about a millisecond per call (`scripts/make_bench_models.py`), next to
//! ONNX Runtime called in-process through the worker's own backend code.
//! Beside each served row, the server CPU per call of the control plane
//! and of the worker (`cpu.rs`: /proc times over the calls the worker
//! counted). Then the worker's resident memory for one more loaded version
//! of a model holding 54.8 MB of weights. One table of ratios; the
//! issue-26 targets checked beneath it; the rows kept as CSV and drawn as
//! docs/bench-perf.svg (`chart.rs`, matplotlib).
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
use hotswap_integration_tests::chart::{self, Row};
use hotswap_integration_tests::cpu::CpuSample;
use hotswap_integration_tests::latency::{Stats, in_process_with, micros};
use hotswap_integration_tests::perf::{make_bench_models, perf_analyzer, ready};
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

/// A CPU-per-call cell: the figure, or "-" where there is none.
fn cell(us: Option<f64>) -> String {
    us.map_or_else(|| "-".to_owned(), |us| format!("{us:.1}"))
}

/// "met, GOAL" or "NOT met, GOAL" beside a measured figure.
fn verdict(met: bool, goal: &str) -> String {
    if met {
        format!("met, goal {goal}")
    } else {
        format!("NOT met, goal {goal}")
    }
}

/// Issue 26's targets, checked against the rows and the worker's memory
/// growth per loaded version (`memory`, a multiple of the weights).
fn targets(rows: &[Row], memory: f64) {
    let find = |model: &str, concurrency: usize, path: &str| {
        rows.iter()
            .find(|r| r.model == model && r.concurrency == concurrency && r.path == path)
    };
    let missing = |what: &str| println!("- {what}: NOT measured");

    match find("tiny", 16, "front door") {
        Some(r) => {
            for (plane, us) in [("control plane", r.control_us), ("worker", r.worker_us)] {
                match us {
                    Some(us) => println!(
                        "- tiny c=16 front door, {plane}: {us:.1} µs CPU per call ({})",
                        verdict(us <= 20.0, "≤ 20 µs")
                    ),
                    None => missing(&format!("tiny c=16 front door, {plane} CPU per call")),
                }
            }
        }
        None => missing("tiny c=16 front door CPU per call"),
    }
    match (
        find("tiny", 1, "front door"),
        find("tiny", 1, "worker direct"),
    ) {
        (Some(front), Some(direct)) => {
            let ratio = front.p50_us / direct.p50_us;
            println!(
                "- tiny c=1 front door p50: {ratio:.2}× worker direct ({})",
                verdict(ratio <= 2.0, "≤ 2.0×")
            );
        }
        _ => missing("tiny c=1 front door p50 against worker direct"),
    }
    match (
        find("tiny", 16, "front door"),
        find("tiny", 16, "worker direct"),
    ) {
        (Some(front), Some(direct)) => {
            let share = front.per_second / direct.per_second;
            println!(
                "- tiny c=16 front door: {:.0} infer/s, {share:.2}× worker direct ({})",
                front.per_second,
                verdict(share >= 0.65, "≥ 0.65×")
            );
        }
        _ => missing("tiny c=16 front door infer/s against worker direct"),
    }
    for r in rows.iter().filter(|r| r.path != "in-process ort") {
        let ratio = r.p99_us / r.p50_us;
        println!(
            "- {} c={} {}: p99 {ratio:.1}× p50 ({})",
            r.model,
            r.concurrency,
            r.path,
            verdict(ratio <= 5.0, "≤ 5×")
        );
    }
    for path in ["worker direct", "front door"] {
        match (find("heavy", 16, path), find("heavy", 16, "in-process ort")) {
            (Some(served), Some(local)) => {
                let share = served.per_second / local.per_second;
                println!(
                    "- heavy c=16 {path}: {share:.2} of in-process throughput ({})",
                    verdict(share >= 0.9, "≥ 0.90")
                );
            }
            _ => missing(&format!("heavy c=16 {path} against in-process")),
        }
    }
    println!(
        "- memory per loaded ONNX version: {memory:.2}× its weights ({})",
        verdict(memory <= 1.2, "≤ 1.2×")
    );
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
    // `-- --only tiny`: one model's rows, for a quicker look.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
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
        println!("| model | concurrency | path | infer/s | p50 µs | p99 µs | p99 / p50 | p50 / worker direct | infer/s / in-process | control plane µs/call | worker µs/call |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        // Sampled in this order: the control plane's figure, then the worker's.
        let pids = [control.process.pid(), worker.process.pid()];
        let mut rows = Vec::new();
        for (bench, (_, file)) in MODELS.iter().zip(&files) {
            if only.as_deref().is_some_and(|m| m != bench.name) {
                continue;
            }
            for concurrency in CONCURRENCY {
                let calls = if bench.name == "tiny" { 40_000 } else { 4_000 };
                let local = tokio::task::block_in_place(|| in_process(file, bench, concurrency, calls));
                let local_per_second = local.per_second;
                println!(
                    "| {} | {concurrency} | in-process ort | {:.0} | {:.0} | {:.0} | {:.1} | | 1.00 | | |",
                    bench.name,
                    local.per_second,
                    micros(local.p50),
                    micros(local.p99),
                    micros(local.p99) / micros(local.p50),
                );
                rows.push(Row {
                    model: bench.name,
                    concurrency,
                    path: "in-process ort",
                    per_second: local.per_second,
                    p50_us: micros(local.p50),
                    p99_us: micros(local.p99),
                    control_us: None,
                    worker_us: None,
                });
                let mut direct_p50 = None;
                for (path, addr) in [("worker direct", worker.addr), ("front door", control.addr)] {
                    let before = CpuSample::before(&pids, worker.addr, bench.name).await;
                    let measured = tokio::task::block_in_place(|| {
                        perf_analyzer(&addr.to_string(), bench.name, bench.shape, concurrency, window_ms)
                    });
                    let cpu = CpuSample::after(&pids, worker.addr, bench.name).await.per_call_since(&before);
                    let (control_us, worker_us) = match cpu.as_deref() {
                        Some(&[control_us, worker_us]) => (Some(control_us), Some(worker_us)),
                        _ => (None, None),
                    };
                    match measured {
                        Ok(m) => {
                            let direct = *direct_p50.get_or_insert(m.p50_us);
                            // The control plane idles while the worker is
                            // called directly: no per-call figure to give.
                            let control_us = control_us.filter(|_| path == "front door");
                            println!(
                                "| {} | {concurrency} | {path} | {:.0} | {:.0} | {:.0} | {:.1} | {:.2} | {:.2} | {} | {} |",
                                bench.name,
                                m.per_second,
                                m.p50_us,
                                m.p99_us,
                                m.p99_us / m.p50_us,
                                m.p50_us / direct,
                                m.per_second / local_per_second,
                                cell(control_us),
                                cell(worker_us),
                            );
                            rows.push(Row {
                                model: bench.name,
                                concurrency,
                                path,
                                per_second: m.per_second,
                                p50_us: m.p50_us,
                                p99_us: m.p99_us,
                                control_us,
                                worker_us,
                            });
                        }
                        Err(e) => println!("| {} | {concurrency} | {path} | failed: {e} | | | | | | | |", bench.name),
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
        println!("Targets (issue 26):");
        targets(&rows, grown as f64 / weights as f64);

        // The chart is a by-product: failing to draw it leaves the table.
        // One model's rows (`--only`) leave the committed chart alone.
        println!();
        let csv = chart::csv_path();
        match std::fs::write(&csv, chart::to_csv(&rows)) {
            Ok(()) if only.is_some() => println!("Rows as CSV: {} (no chart with --only)", csv.display()),
            Ok(()) => {
                println!("Rows as CSV: {}", csv.display());
                let svg = chart::svg_path();
                let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
                let title = format!("hotswap under perf_analyzer (gRPC): {window_ms} ms windows, {cores} cores shared by servers and load");
                match chart::plot(&csv, &svg, &title) {
                    Ok(()) => println!("Chart: {}", svg.display()),
                    Err(why) => println!("Chart not drawn: {why}"),
                }
            }
            Err(e) => println!("Chart not drawn: writing {}: {e}", csv.display()),
        }
        drop(worker);
        drop(control);
        drop(store);
    });
}
