//! `hotswap model-store` and `hotswap data-plane` as real processes, called
//! by an unmodified Open Inference Protocol client (PyPI `tritonclient`,
//! gRPC and HTTP on the worker's one port) whose answers are checked against
//! ONNX Runtime's own Python API on the same model file.

use hotswap_integration_tests::process::{
    Hotswap, model_store_args, triton_check, triton_http_check, workspace_root,
};

#[test]
fn tritonclient_talks_to_a_worker_process() {
    let example = workspace_root().join("examples/iris-onnx");
    let config = example.join("hotswap.yaml");
    let store = Hotswap::start(
        &model_store_args(&config, &["--poll-interval", "200ms"]),
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
    let model = example.join("models/iris/2/model.onnx");
    if let Err(output) = triton_check(&worker.addr.to_string(), "iris", "2", &model) {
        panic!(
            "tritonclient check failed:\n{output}\nworker log:\n{}",
            worker.log().join("\n")
        );
    }
    if let Err(output) = triton_http_check(&worker.addr.to_string(), "iris", "2", &model, &[]) {
        panic!(
            "tritonclient.http check failed:\n{output}\nworker log:\n{}",
            worker.log().join("\n")
        );
    }
}
