//! `hotswap model-store` and `hotswap data-plane` as real processes, called
//! by an unmodified Open Inference Protocol client (PyPI
//! `tritonclient[grpc]`) whose answers are checked against ONNX Runtime's
//! own Python API on the same model file.

use std::process::Command;

use hotswap_integration_tests::process::{Hotswap, venv, workspace_root};

#[test]
fn tritonclient_talks_to_a_worker_process() {
    let root = workspace_root();
    let example = root.join("examples/iris-onnx");
    let store = Hotswap::start(
        &[
            "model-store",
            "--config",
            example.join("hotswap.yaml").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--poll-interval",
            "200ms",
        ],
        &[],
    );
    let worker = Hotswap::start(
        &[
            "data-plane",
            "--model-store",
            &store.addr.to_string(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    // The client waits for readiness itself only through its own calls:
    // retry the whole check (bounded) until the models are loaded.
    let mut last = String::new();
    for _ in 0..100 {
        let output = Command::new(venv().join("bin/python"))
            .arg(root.join("integration-tests/scripts/triton_client_check.py"))
            .arg(worker.addr.to_string())
            .arg("iris")
            .arg("2")
            .arg(example.join("models/iris/2/model.onnx"))
            .output()
            .expect("run the venv's python");
        last = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if output.status.success() && last.contains("ok") {
            return;
        }
        if !last.contains("not ready") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "tritonclient check failed:\n{last}\nworker log:\n{}",
        worker.log().join("\n")
    );
}
