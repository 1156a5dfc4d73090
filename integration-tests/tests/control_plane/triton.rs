//! An unmodified Open Inference Protocol client (PyPI `tritonclient[grpc]`)
//! through the control plane, all three services as real processes; answers
//! checked against ONNX Runtime's Python API on the same file.

use std::process::Command;

use hotswap_integration_tests::process::{Hotswap, venv, workspace_root};

#[test]
fn tritonclient_through_the_control_plane() {
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
    let control = Hotswap::start(
        &[
            "control-plane",
            "--model-store",
            &store.addr.to_string(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let _worker = Hotswap::start(
        &[
            "data-plane",
            "--model-store",
            &store.addr.to_string(),
            "--control-plane",
            &control.addr.to_string(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let mut last = String::new();
    for _ in 0..100 {
        let output = Command::new(venv().join("bin/python"))
            .arg(root.join("integration-tests/scripts/triton_client_check.py"))
            .arg(control.addr.to_string())
            .arg("iris")
            .arg("3")
            .arg(example.join("models/iris/3/model.onnx"))
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
        // Until the worker registers and loads, the client sees not-ready.
        if !last.contains("not ready") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "tritonclient check through the control plane failed:\n{last}\ncontrol plane log:\n{}",
        control.log().join("\n")
    );
}
