//! One caller's oversized names never fail another caller's calls. A name
//! echoed whole in an error made the worker's trailer larger than the
//! control plane's HTTP/2 header limit, and the control plane dropped its
//! connection to that worker with every call on it.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::load::Load;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerOptions, WorkerServer, iris, iris_infer, predict_json,
};
use hotswap_proto::v1::PredictRequest;
use tonic::Code;

/// Longest message a refused call may carry back.
const SHORT: usize = 2048;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_names_fail_alone() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: '{}'}}}}}}",
        bucket.uri("iris")
    );
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let control = ControlServer::start(store.addr).await;
    let options = WorkerOptions {
        control_plane: Some(control.internal.to_string()),
        ..Default::default()
    };
    let _worker = WorkerServer::start_with(store.addr, &bucket, options).await;
    control.wait_for_workers(1).await;

    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(control.predictor().await);
    }
    let load = Load::start(clients, |mut p| async move {
        p.predict(predict_json("iris", "", "", IRIS_INPUT))
            .await
            .map(|_| ())
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    });

    oversized_calls(&control).await;
    // Names the front door itself resolves are cut too.
    let long = "x".repeat(100_000);
    let refused = control
        .predictor()
        .await
        .predict(predict_json(&long, "", "", IRIS_INPUT))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::NotFound,
        "{}",
        refused.message().len()
    );
    assert!(
        refused.message().len() < SHORT,
        "{} bytes",
        refused.message().len()
    );

    load.stop()
        .await
        .assert_clean("calls beside the oversized ones");
}

/// Five ModelInfer and five Predict calls to `iris` through the control
/// plane, each with a 100 KB input name: each refused INVALID_ARGUMENT with
/// the name cut.
pub async fn oversized_calls(control: &ControlServer) {
    let long = "x".repeat(100_000);
    let mut inference = control.inference().await;
    let mut predictor = control.predictor().await;
    for _ in 0..5 {
        let mut infer = iris_infer("iris", "");
        infer.inputs[0].name = long.clone();
        let refused = inference.model_infer(infer).await.unwrap_err();
        check_refused(&refused);

        let request: PredictRequest =
            predict_json("iris", "", "", &format!("{{\"{long}\": [[1, 2, 3, 4]]}}"));
        let refused = predictor.predict(request).await.unwrap_err();
        check_refused(&refused);
    }
}

fn check_refused(status: &tonic::Status) {
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{}",
        &status.message()[..status.message().len().min(300)]
    );
    assert!(
        status.message().len() < SHORT && status.message().contains('…'),
        "the message echoes the name whole ({} bytes)",
        status.message().len()
    );
}
