//! An unmodified Open Inference Protocol client (PyPI `tritonclient`, gRPC
//! and HTTP) through the control plane, all three services as real
//! processes; answers checked against ONNX Runtime's Python API on the same
//! file.

use hotswap_integration_tests::process::{
    Hotswap, model_store_args, triton_check, triton_http_check, workspace_root,
};

#[test]
fn tritonclient_through_the_control_plane() {
    let example = workspace_root().join("examples/iris-onnx");
    let config = example.join("hotswap.yaml");
    let store = Hotswap::start(
        &model_store_args(&config, &["--poll-interval", "200ms"]),
        &[],
    );
    let store_addr = store.addr.to_string();
    let control = Hotswap::start(
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
    );
    let control_addr = control.addr.to_string();
    let internal_addr = control.addr_of("control-plane-internal").to_string();
    let _worker = Hotswap::start(
        &[
            "data-plane",
            "--model-store",
            &store_addr,
            "--control-plane",
            &internal_addr,
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let model = example.join("models/iris/3/model.onnx");
    if let Err(output) = triton_check(&control_addr, "iris", "3", &model) {
        panic!(
            "tritonclient check through the control plane failed:\n{output}\ncontrol plane log:\n{}",
            control.log().join("\n")
        );
    }
    // Cortex's endpoint on the same port: the version from the query
    // string, the answering one in a header; errors with their HTTP status.
    let curl = |args: &str| {
        let output = std::process::Command::new("bash")
            .args(["-c", &format!("curl -s -i {args}")])
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let input = r#"-H 'Content-Type: application/json' -d '[[5.1, 3.5, 1.4, 0.2]]'"#;
    for version in ["1", "3"] {
        let answer = curl(&format!(
            "-X POST 'http://{control_addr}/iris?version={version}' {input}"
        ));
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.contains(&format!("hotswap-model-version: {version}")),
            "{answer}"
        );
        assert!(answer.contains(r#""label":["#), "{answer}");
    }
    let unknown = curl(&format!("-X POST http://{control_addr}/nope {input}"));
    assert!(
        unknown.starts_with("HTTP/1.1 404") && unknown.contains("nope"),
        "{unknown}"
    );
    let missing = curl(&format!(
        "-X POST 'http://{control_addr}/iris?version=9' {input}"
    ));
    assert!(
        missing.starts_with("HTTP/1.1 404") && missing.contains('9'),
        "{missing}"
    );
    let bad = curl(&format!(
        "-X POST http://{control_addr}/iris -H 'Content-Type: application/json' -d '[[1, 2]]'"
    ));
    assert!(
        bad.starts_with("HTTP/1.1 400") && bad.contains("input"),
        "{bad}"
    );

    if let Err(output) = triton_http_check(&control_addr, "iris", "3", &model, &[]) {
        panic!(
            "tritonclient.http check through the control plane failed:\n{output}\ncontrol plane log:\n{}",
            control.log().join("\n")
        );
    }
}
