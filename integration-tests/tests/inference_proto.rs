//! hotswap's Open Inference Protocol definitions match the ones an
//! unmodified standard client (PyPI `tritonclient[grpc]`) was built from:
//! same names, numbers, types and streaming for every method and field.
//! A mismatch here means such a client would silently misread messages.

use std::process::Command;

use hotswap_integration_tests::process::{venv, workspace_root};

#[test]
fn inference_protos_match_the_standard_client() {
    let work = tempfile::tempdir().unwrap();
    let root = workspace_root();
    let output = Command::new(venv().join("bin/python"))
        .arg(root.join("integration-tests/scripts/compare_inference_proto.py"))
        .arg(root.join("proto"))
        .arg(work.path())
        .output()
        .expect("run the venv's python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "protocol differences:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(", 0 differences"), "{stdout}");
}
