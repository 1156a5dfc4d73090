//! Peak memory a large request costs the processes that serve it, on every
//! way in: gRPC ModelInfer with raw contents, gRPC Predict with JSON, the
//! Open Inference Protocol's REST binding with JSON tensors and with the
//! binary extension, Cortex's `POST /{api}` with JSON, and forms
//! (multipart, urlencoded) to a Python predictor (`calls.rs` has each
//! path's payload and call). A model-store, a control plane and a worker
//! run as separate `hotswap` processes; the model (`fixtures/onnx/total`)
//! answers one number, and the Python predictor the size of its form, so
//! the request, not the answer, is what is measured. Eight calls of about
//! 16 MB at once, straight to the worker and through the control plane.
//! For each serving process: how much its peak resident memory (VmHWM,
//! reset just before the calls) rose above its resident memory at that
//! moment, as a multiple of the bytes the calls sent.
//!
//! Every row starts fresh processes, so memory an earlier row left with the
//! allocator does not hide what a row costs.
//!
//! Run with `cargo build --release --bin hotswap && cargo bench -p
//! hotswap-integration-tests --bench memory` (after `.ci/setup`);
//! `-- --binary PATH` measures another build of `hotswap` (an older commit)
//! with the same client, `-- --calls N` changes the calls at once (8),
//! `-- --only TEXT` keeps the paths whose label holds TEXT, and `--
//! --hostile` measures instead requests of many tiny items (refused before
//! they are decoded since issue 25; unbounded before).

#[path = "memory/calls.rs"]
mod calls;

use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::time::Duration;

use calls::{Path, Payload};
use hotswap_integration_tests::process::{
    Hotswap, hotswap_binary, model_store_args, workspace_root,
};

const READY_WITHIN: Duration = Duration::from_secs(90);

/// The Python predictor the form paths call: it answers how many bytes of
/// text and files its form held.
const FORM_PREDICTOR: &str = r#"
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        n = 0
        for value in payload.values():
            n += len(value) if isinstance(value, str) else len(value.read())
        return {"bytes": n}
"#;

/// (VmRSS, VmHWM) of a process, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .expect("field in /proc/pid/status")
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak (VmHWM) to the current resident size.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("clear_refs");
}

/// The child processes of `pid` (a worker's Python predictor processes).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

struct Row {
    path: Path,
    called: &'static str,
    process: &'static str,
    added: u64,
    sent: u64,
    failed: Option<String>,
}

async fn measure(
    binary: &FsPath,
    store: SocketAddr,
    through_control_plane: bool,
    concurrent: usize,
    payload: &Payload,
) -> Vec<Row> {
    let store_addr = store.to_string();
    let control = through_control_plane.then(|| {
        Hotswap::start_binary(
            binary,
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
        )
    });
    let control_addr = control
        .as_ref()
        .map(|c| c.addr_of("control-plane-internal").to_string());
    let mut args = vec![
        "data-plane",
        "--model-store",
        &store_addr,
        "--listen",
        "127.0.0.1:0",
    ];
    if let Some(addr) = &control_addr {
        args.extend(["--control-plane", addr]);
    }
    let worker = Hotswap::start_binary(binary, &args, &[]);
    let front = control.as_ref().map_or(worker.addr, |c| c.addr);

    // Ready and warm: the model loaded (or the Python predictor started)
    // and a small call of the same path served.
    let small = Payload::new(payload.path, true);
    let small = &small;
    worker
        .wait(format!("a small call of {}", payload.path.label()))
        .within(READY_WITHIN)
        .every(Duration::from_millis(200))
        .until(|| async move { small.call(front).await.ok() })
        .await;

    let mut measured = vec![("worker", worker.process.pid())];
    if let Some(c) = &control {
        measured.push(("control plane", c.process.pid()));
    }
    if payload.path.python() {
        for child in children(worker.process.pid()) {
            measured.push(("Python child", child));
        }
    }
    let before: Vec<u64> = measured
        .iter()
        .map(|&(_, pid)| {
            reset_peak(pid);
            memory(pid).0
        })
        .collect();
    let calls = (0..concurrent).map(|_| payload.call(front));
    let failed = futures::future::join_all(calls)
        .await
        .into_iter()
        .find_map(Result::err);
    measured
        .iter()
        .zip(before)
        .map(|(&(process, pid), before)| Row {
            path: payload.path,
            called: if through_control_plane {
                "control plane"
            } else {
                "worker"
            },
            process,
            added: memory(pid).1.saturating_sub(before),
            sent: (concurrent * payload.bytes.len()) as u64,
            failed: failed.clone(),
        })
        .collect()
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .map(|i| args.get(i + 1).map(String::as_str).expect("a value"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let binary = flag(&args, "--binary")
        .map(PathBuf::from)
        .unwrap_or_else(hotswap_binary);
    let concurrent: usize = flag(&args, "--calls").map_or(8, |n| n.parse().expect("--calls N"));
    let only = flag(&args, "--only");
    let paths: &[Path] = if args.iter().any(|a| a == "--hostile") {
        &Path::HOSTILE
    } else {
        &Path::ALL
    };
    let bucket = tempfile::tempdir().expect("temp dir");
    let model = bucket.path().join("models/total/1/model.onnx");
    std::fs::create_dir_all(model.parent().unwrap()).unwrap();
    std::fs::copy(
        workspace_root().join("integration-tests/fixtures/onnx/total/model.onnx"),
        &model,
    )
    .expect("fixture");
    std::fs::write(bucket.path().join("form.py"), FORM_PREDICTOR).unwrap();
    let config = bucket.path().join("hotswap.yaml");
    std::fs::write(
        &config,
        "- {name: total, predictor: {type: onnx, models: {path: models/total/}}}\n\
         - {name: form, predictor: {type: python, path: form.py}}\n",
    )
    .unwrap();

    let store = Hotswap::start_binary(&binary, &model_store_args(&config, &[]), &[]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut rows = Vec::new();
    for &path in paths {
        if only.is_some_and(|o| !path.label().contains(o)) {
            continue;
        }
        let payload = Payload::new(path, false);
        println!(
            "{}: {:.1} MB a call",
            path.label(),
            payload.bytes.len() as f64 / 1e6
        );
        for through_control_plane in [false, true] {
            rows.extend(runtime.block_on(measure(
                &binary,
                store.addr,
                through_control_plane,
                concurrent,
                &payload,
            )));
        }
    }
    drop(store);

    println!("binary: {}", binary.display());
    println!("calls at once: {concurrent}");
    println!("| path | called | process | peak added, MB | peak added / bytes sent |");
    println!("|---|---|---|---|---|");
    for r in rows {
        let failed = r
            .failed
            .map(|e| {
                format!(
                    " (calls failed: {})",
                    e.chars().take(120).collect::<String>()
                )
            })
            .unwrap_or_default();
        println!(
            "| {} | {} | {} | {:.0} | {:.2}{failed} |",
            r.path.label(),
            r.called,
            r.process,
            r.added as f64 / 1e6,
            r.added as f64 / r.sent as f64
        );
    }
}
