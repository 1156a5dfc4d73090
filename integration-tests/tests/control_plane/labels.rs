//! Version labels (`version_labels` in the config) wherever a call names a
//! version: Predict, ModelInfer, the Open Inference Protocol's HTTP path and
//! Cortex's `?version=`, through `hotswap up`'s front door. A label whose
//! version is not in the bucket is NOT_FOUND saying which version it names.
//! `traffic` splits calls that name no version between labels by weight.

use std::process::Command;
use std::time::Duration;

use hotswap_integration_tests::compose::copy_readable;
use hotswap_integration_tests::process::{Hotswap, workspace_root};
use hotswap_integration_tests::worker::{IRIS_INPUT, iris_infer, iris_label, predict_json};
use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use hotswap_proto::v1::predictor_client::PredictorClient;
use tonic::transport::Channel;

/// `curl -s` with these arguments: the response headers and body.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_name_versions_wherever_a_version_is_named() {
    let bucket = tempfile::tempdir().unwrap();
    copy_readable(&workspace_root().join("examples/iris-onnx"), bucket.path());
    std::fs::write(
        bucket.path().join("hotswap.yaml"),
        "- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    models:\n      path: models/iris/\n      version_labels: {stable: 1, canary: 3, gone: 9}\n",
    )
    .unwrap();
    let config = bucket.path().join("hotswap.yaml");
    let up = Hotswap::up(&config);
    let front = up.addr_of("control-plane");
    let channel = Channel::from_shared(format!("http://{front}"))
        .unwrap()
        .connect_lazy();
    let mut p = PredictorClient::new(channel.clone());

    // Predict by label: the answer names the version it came from, and
    // version N of the example answers label N - 1.
    let stable = up
        .wait("Predict of label stable")
        .within(Duration::from_secs(60))
        .every(Duration::from_millis(100))
        .until(|| {
            let mut p = p.clone();
            async move {
                p.predict(predict_json("iris", "", "stable", IRIS_INPUT))
                    .await
                    .ok()
            }
        })
        .await
        .into_inner();
    assert_eq!((stable.version, iris_label(&stable)), (1, 0));
    let canary = p
        .predict(predict_json("iris", "", "canary", IRIS_INPUT))
        .await
        .expect("Predict canary")
        .into_inner();
    assert_eq!((canary.version, iris_label(&canary)), (3, 2));

    // ModelInfer by label.
    let mut infer = GrpcInferenceServiceClient::new(channel.clone());
    let answer = infer
        .model_infer(iris_infer("iris", "stable"))
        .await
        .expect("ModelInfer stable")
        .into_inner();
    assert_eq!(answer.model_version, "1");
    // Statistics by label: the labelled version's, which served calls.
    let stats = infer
        .model_statistics(hotswap_proto::inference::ModelStatisticsRequest {
            name: "iris".into(),
            version: "stable".into(),
        })
        .await
        .expect("ModelStatistics stable")
        .into_inner();
    let versions: Vec<&str> = stats
        .model_stats
        .iter()
        .map(|s| s.version.as_str())
        .collect();
    assert_eq!(versions, ["1"], "{stats:?}");
    assert!(stats.model_stats[0].inference_count > 0, "{stats:?}");

    // A label naming a version the bucket lacks, and an unknown word.
    let gone = p
        .predict(predict_json("iris", "", "gone", IRIS_INPUT))
        .await
        .expect_err("a dangling label");
    assert_eq!(gone.code(), tonic::Code::NotFound);
    assert!(
        gone.message()
            .contains("label `gone` of `iris` names version 9, which is not in the model index"),
        "{}",
        gone.message()
    );
    let unknown = infer
        .model_infer(iris_infer("iris", "beta"))
        .await
        .expect_err("an unknown label");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(
        unknown
            .message()
            .contains("labels: canary (3), gone (9), stable (1)"),
        "{}",
        unknown.message()
    );

    // HTTP: the Open Inference Protocol path and Cortex's query.
    let body =
        r#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}"#;
    let oip = curl(&[
        "-H",
        "content-type: application/json",
        "-d",
        body,
        &format!("http://{front}/v2/models/iris/versions/canary/infer"),
    ]);
    assert!(oip.starts_with("HTTP/1.1 200"), "{oip}");
    assert!(oip.contains(r#""model_version":"3""#), "{oip}");
    let cortex = curl(&[
        "-H",
        "content-type: application/json",
        "-d",
        IRIS_INPUT,
        &format!("http://{front}/iris?version=stable"),
    ]);
    assert!(cortex.starts_with("HTTP/1.1 200"), "{cortex}");
    assert!(
        cortex
            .to_ascii_lowercase()
            .contains("hotswap-model-version: 1"),
        "{cortex}"
    );
    let dangling = curl(&[
        "-H",
        "content-type: application/json",
        "-d",
        body,
        &format!("http://{front}/v2/models/iris/versions/gone/infer"),
    ]);
    assert!(dangling.starts_with("HTTP/1.1 404"), "{dangling}");
    assert!(dangling.contains("label `gone`"), "{dangling}");
}

/// `traffic: {stable: 70, canary: 30}`: of 1,000 Predict calls naming no
/// version, the canary's share is 0.3 within 0.06 (four standard
/// deviations of 0.0145); calls naming `latest` are not split; ModelInfer
/// naming no version is split too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_splits_calls_that_name_no_version() {
    let bucket = tempfile::tempdir().unwrap();
    copy_readable(&workspace_root().join("examples/iris-onnx"), bucket.path());
    std::fs::write(
        bucket.path().join("hotswap.yaml"),
        "- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    models:\n      path: models/iris/\n      version_labels: {stable: 1, canary: 3}\n      traffic: {stable: 70, canary: 30}\n",
    )
    .unwrap();
    let up = Hotswap::up(&bucket.path().join("hotswap.yaml"));
    let channel = Channel::from_shared(format!("http://{}", up.addr_of("control-plane")))
        .unwrap()
        .connect_lazy();
    let mut p = PredictorClient::new(channel.clone());
    up.wait("Predict of version 1")
        .within(Duration::from_secs(60))
        .every(Duration::from_millis(100))
        .until(|| {
            let mut p = p.clone();
            async move {
                p.predict(predict_json("iris", "", "1", IRIS_INPUT))
                    .await
                    .ok()
            }
        })
        .await;

    let calls = 1_000;
    let mut canary = 0;
    for _ in 0..calls {
        let r = p
            .predict(predict_json("iris", "", "", IRIS_INPUT))
            .await
            .expect("Predict")
            .into_inner();
        match r.version {
            3 => canary += 1,
            1 => {}
            other => panic!("version {other} answered a split call"),
        }
    }
    let share = f64::from(canary) / f64::from(calls);
    assert!((0.24..0.36).contains(&share), "canary share {share}");
    for _ in 0..20 {
        let latest = p
            .predict(predict_json("iris", "", "latest", IRIS_INPUT))
            .await
            .expect("Predict latest")
            .into_inner();
        assert_eq!(latest.version, 3, "`latest` is not split");
    }
    let mut infer = GrpcInferenceServiceClient::new(channel);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..100 {
        let answer = infer
            .model_infer(iris_infer("iris", ""))
            .await
            .expect("ModelInfer")
            .into_inner();
        seen.insert(answer.model_version);
    }
    assert_eq!(seen, ["1".to_owned(), "3".to_owned()].into());
}
