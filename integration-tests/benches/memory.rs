//! Peak memory a large JSON Predict costs the processes that serve it: a
//! model-store, a control plane and a worker as separate `hotswap`
//! processes, a 16 MB JSON list of numbers sent to a model whose answer is
//! one number (so the request, not the response, is what is measured), 1
//! and 8 such calls at once, straight to the worker and through the control
//! plane. For each serving process: how much its peak resident memory
//! (VmHWM, reset just before the calls) rose above its resident memory at
//! that moment, as a multiple of the bytes the calls sent.
//!
//! Every row starts fresh processes, so memory an earlier row left with the
//! allocator does not hide what a row costs.
//!
//! Run with `cargo build --release --bin hotswap && cargo bench -p
//! hotswap-integration-tests --bench memory` (after `.ci/setup`);
//! `-- --binary PATH` measures another build of `hotswap` (an older commit)
//! with the same client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hotswap_integration_tests::process::{
    Hotswap, hotswap_binary, model_store_args, workspace_root,
};
use hotswap_integration_tests::wait::Wait;
use hotswap_integration_tests::worker::request;
use hotswap_proto::v1::predict_response;
use hotswap_proto::v1::predictor_client::PredictorClient;
use tonic::transport::{Channel, Endpoint};

/// Under the default 16 MiB request limit.
const REQUEST_BYTES: usize = 16_000_000;
const READY_WITHIN: Duration = Duration::from_secs(60);

/// How the numbers of a payload are written: the same byte count holds
/// 1.7 million six-decimal floats or 6.4 million one-digit numbers, and
/// what a request costs in memory depends on how many numbers it holds.
#[derive(Clone, Copy)]
enum Numbers {
    Decimals,
    Digits,
}

impl Numbers {
    fn label(self) -> &'static str {
        match self {
            Numbers::Decimals => "0.xxxxxx",
            Numbers::Digits => "one digit",
        }
    }
}

/// A JSON list of rows of 4 numbers, about `bytes` long, and their sum.
fn rows(bytes: usize, numbers: Numbers) -> (String, f64) {
    let mut text = String::with_capacity(bytes + 64);
    let mut sum = 0.0;
    text.push('[');
    let mut i: u64 = 0;
    while text.len() < bytes - 40 {
        if i > 0 {
            text.push(',');
        }
        text.push('[');
        for j in 0..4 {
            let n = (i * 4 + j) * 7919;
            if j > 0 {
                text.push(',');
            }
            let v = match numbers {
                Numbers::Decimals => {
                    let v = (n % 1_000_000) as f64 / 1e6;
                    text.push_str(&format!("{v:.6}"));
                    v
                }
                Numbers::Digits => {
                    let v = n % 10;
                    text.push(char::from(b'0' + v as u8));
                    v as f64
                }
            };
            sum += v;
        }
        text.push(']');
        i += 1;
    }
    text.push(']');
    (text, sum)
}

async fn predict(addr: SocketAddr, json: &str) -> Result<f64, tonic::Status> {
    let channel: Channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("address")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(120))
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let response = PredictorClient::new(channel)
        .max_encoding_message_size(usize::MAX)
        .predict(request("total", json, &[]))
        .await?
        .into_inner();
    match response.output {
        Some(predict_response::Output::Json(text)) => {
            let answer: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            Ok(answer["total"]
                .as_f64()
                .unwrap_or_else(|| panic!("answer {text}")))
        }
        other => panic!("unexpected output {other:?}"),
    }
}

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

struct Row {
    numbers: Numbers,
    path: &'static str,
    concurrent: usize,
    process: &'static str,
    added: u64,
    sent: u64,
}

async fn measure(
    binary: &Path,
    store: SocketAddr,
    through_control_plane: bool,
    concurrent: usize,
    numbers: Numbers,
    payload: &(String, f64),
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

    // Ready and warm: the model loaded and a call served.
    Wait::new("the worker ready")
        .within(READY_WITHIN)
        .every(Duration::from_millis(200))
        .until(|| async {
            match predict(front, "[[1, 2, 3, 4]]").await {
                Ok(10.0) => Some(()),
                Ok(other) => panic!("[[1, 2, 3, 4]] summed to {other}"),
                Err(_) => None,
            }
        })
        .await;

    let mut measured = vec![("worker", worker.process.pid())];
    if let Some(c) = &control {
        measured.push(("control plane", c.process.pid()));
    }
    let before: Vec<u64> = measured
        .iter()
        .map(|&(_, pid)| {
            reset_peak(pid);
            memory(pid).0
        })
        .collect();
    let (json, sum) = payload;
    let calls = (0..concurrent).map(|_| predict(front, json));
    for answer in futures::future::join_all(calls).await {
        let got = answer.expect("large call");
        assert!(
            (got - sum).abs() <= sum * 1e-2,
            "the large call summed to {got}, not {sum}"
        );
    }
    measured
        .iter()
        .zip(before)
        .map(|(&(process, pid), before)| Row {
            numbers,
            path: if through_control_plane {
                "control plane"
            } else {
                "worker"
            },
            concurrent,
            process,
            added: memory(pid).1.saturating_sub(before),
            sent: (concurrent * json.len()) as u64,
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let binary = args
        .iter()
        .position(|a| a == "--binary")
        .map(|i| PathBuf::from(args.get(i + 1).expect("--binary PATH")))
        .unwrap_or_else(hotswap_binary);
    let bucket = tempfile::tempdir().expect("temp dir");
    let model = bucket.path().join("models/total/1/model.onnx");
    std::fs::create_dir_all(model.parent().unwrap()).unwrap();
    std::fs::copy(
        workspace_root().join("integration-tests/fixtures/onnx/total/model.onnx"),
        &model,
    )
    .expect("fixture");
    let config = bucket.path().join("hotswap.yaml");
    std::fs::write(
        &config,
        "- {name: total, predictor: {type: onnx, models: {path: models/total/}}}\n",
    )
    .unwrap();

    let store = Hotswap::start_binary(&binary, &model_store_args(&config, &[]), &[]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut rows = Vec::new();
    for numbers in [Numbers::Decimals, Numbers::Digits] {
        let payload = self::rows(REQUEST_BYTES, numbers);
        println!(
            "request of {} numbers: {:.1} MB of JSON, {} numbers",
            numbers.label(),
            payload.0.len() as f64 / 1e6,
            payload.0.matches(',').count() + 1
        );
        for through_control_plane in [false, true] {
            for concurrent in [1, 8] {
                rows.extend(runtime.block_on(measure(
                    &binary,
                    store.addr,
                    through_control_plane,
                    concurrent,
                    numbers,
                    &payload,
                )));
            }
        }
    }
    drop(store);

    println!("binary: {}", binary.display());
    println!(
        "| numbers | called | calls at once | process | peak added, MB | peak added / bytes sent |"
    );
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.2} |",
            r.numbers.label(),
            r.path,
            r.concurrent,
            r.process,
            r.added as f64 / 1e6,
            r.added as f64 / r.sent as f64
        );
    }
}
