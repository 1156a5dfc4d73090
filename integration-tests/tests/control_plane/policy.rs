//! Version policies (`version_policy` in the config) through `hotswap up`:
//! versions outside a model's policy are not loaded, calls naming them are
//! NOT_FOUND saying why, the repository index shows them unavailable with
//! the reason, ModelConfig reports the policy; and a newer version that
//! fails to load never leaves a `latest: 1` model without a version.

use std::time::Duration;

use hotswap_integration_tests::compose::copy_readable;
use hotswap_integration_tests::process::{Hotswap, workspace_root};
use hotswap_integration_tests::worker::{
    IRIS_INPUT, index_entry, iris_infer, iris_label, model_config, predict_json,
};
use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use hotswap_proto::inference::model_version_policy::{Latest, PolicyChoice, Specific};
use hotswap_proto::v1::predictor_client::PredictorClient;
use tonic::transport::Channel;

const CONFIG: &str = "- name: iris
  kind: RealtimeAPI
  predictor:
    type: onnx
    models:
      paths:
        - {name: newest, path: models/newest/, version_policy: {latest: 1}}
        - {name: chosen, path: models/chosen/, version_policy: {specific: [1, 3]}}
";

/// A metric of `hotswap up` (0 before it has a series).
fn metric(metrics: std::net::SocketAddr, name: &str, with: &str) -> f64 {
    hotswap_integration_tests::process::metric(metrics, name, with).unwrap_or(0.0)
}

/// (state, reason) of a version in the front door's repository index.
async fn indexed(front: std::net::SocketAddr, name: &str, version: &str) -> (String, String) {
    let m = index_entry(front, name, version)
        .await
        .unwrap_or_else(|| panic!("{name} version {version} is not in the index"));
    (m.state, m.reason)
}

/// Polls `check` every 100 ms for up to 60 s; the log goes in the panic.
async fn wait_for<F, Fut>(up: &Hotswap, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    up.wait(what)
        .within(Duration::from_secs(60))
        .every(Duration::from_millis(100))
        .until(|| {
            let done = check();
            async move { done.await.then_some(()) }
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_outside_the_policy_are_not_loaded_and_not_found() {
    let bucket = tempfile::tempdir().unwrap();
    let example = workspace_root().join("examples/iris-onnx/models/iris");
    copy_readable(&example, &bucket.path().join("models/newest"));
    copy_readable(&example, &bucket.path().join("models/chosen"));
    let config = bucket.path().join("hotswap.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let up = Hotswap::up(&config);
    let front = up.addr_of("control-plane");
    let metrics = up.addr_of("metrics");
    let channel = Channel::from_shared(format!("http://{front}"))
        .unwrap()
        .connect_lazy();
    let mut p = PredictorClient::new(channel.clone());
    let mut infer = GrpcInferenceServiceClient::new(channel.clone());

    // `latest` of each model: its highest version within the policy (the
    // example's version N answers label N - 1).
    wait_for(&up, "both models to serve", || {
        let mut p = p.clone();
        async move {
            for model in ["newest", "chosen"] {
                match p.predict(predict_json("iris", model, "", IRIS_INPUT)).await {
                    Ok(r) if r.get_ref().version == 3 => {}
                    _ => return false,
                }
            }
            true
        }
    })
    .await;
    // Only what the policies take in was loaded: newest 3, chosen 1 and 3.
    wait_for(&up, "three versions in memory", || async {
        metric(metrics, "hotswap_models_in_memory", "") == 3.0
    })
    .await;
    let loads = metric(metrics, "hotswap_model_loads_total", "");
    assert_eq!(loads, 3.0, "{}", up.log().join("\n"));

    // Named versions outside the policy: NOT_FOUND with the reason, over
    // Predict and ModelInfer; those within it are served.
    let old = p
        .predict(predict_json("iris", "newest", "2", IRIS_INPUT))
        .await
        .expect_err("version 2 of newest is outside latest: 1");
    assert_eq!(old.code(), tonic::Code::NotFound);
    assert!(
        old.message().contains(
            "version 2 of `iris/newest` is not served: outside version_policy latest: 1 \
             (the versions served: 3)"
        ),
        "{}",
        old.message()
    );
    let skipped = infer
        .model_infer(iris_infer("iris/chosen", "2"))
        .await
        .expect_err("version 2 of chosen is outside specific: [1, 3]");
    assert_eq!(skipped.code(), tonic::Code::NotFound);
    assert!(
        skipped
            .message()
            .contains("outside version_policy specific: [1, 3]"),
        "{}",
        skipped.message()
    );
    let first = p
        .predict(predict_json("iris", "chosen", "1", IRIS_INPUT))
        .await
        .expect("version 1 of chosen")
        .into_inner();
    assert_eq!((first.version, iris_label(&first)), (1, 0));

    // The repository index: unavailable, with the reason.
    let (state, reason) = indexed(front, "iris/newest", "1").await;
    assert_eq!(state, "UNAVAILABLE");
    assert!(
        reason.starts_with("outside version_policy latest: 1"),
        "{reason}"
    );
    let (state, reason) = indexed(front, "iris/chosen", "2").await;
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("UNAVAILABLE", "outside version_policy specific: [1, 3]")
    );
    assert_eq!(indexed(front, "iris/chosen", "1").await.0, "READY");

    // ModelConfig reports each policy in Triton's terms.
    let policy = async |name: &str| {
        model_config(&infer, name)
            .await
            .version_policy
            .and_then(|p| p.policy_choice)
    };
    assert_eq!(
        policy("iris/newest").await,
        Some(PolicyChoice::Latest(Latest { num_versions: 1 }))
    );
    assert_eq!(
        policy("iris/chosen").await,
        Some(PolicyChoice::Specific(Specific {
            versions: vec![1, 3]
        }))
    );

    // And over HTTP, in Triton's JSON.
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .arg(format!("http://{front}/v2/models/iris%2Fnewest/config"))
        .output()
        .expect("run curl");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(
        json["version_policy"],
        serde_json::json!({"latest": {"num_versions": 1}}),
        "{json}"
    );

    // A version 4 that is a model by its files but fails to load: the index
    // moves version 3 out of the policy, and the worker keeps serving it.
    let four = bucket.path().join("models/newest/4");
    std::fs::create_dir_all(&four).unwrap();
    std::fs::write(four.join("model.onnx"), b"not an onnx graph").unwrap();
    wait_for(&up, "version 4 to fail to load", || async {
        up.log()
            .iter()
            .any(|l| l.contains("version failed to load") && l.contains("iris/newest version 4"))
    })
    .await;
    let (state, reason) = indexed(front, "iris/newest", "3").await;
    assert_eq!(state, "UNAVAILABLE");
    assert!(reason.contains("(the versions served: 4)"), "{reason}");
    for _ in 0..50 {
        let r = p
            .predict(predict_json("iris", "newest", "", IRIS_INPUT))
            .await
            .unwrap_or_else(|e| panic!("latest while version 4 fails: {e}"))
            .into_inner();
        assert_eq!((r.version, iris_label(&r)), (3, 2));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Version 4 repaired: it loads, serves `latest`, and version 3 is
    // unloaded for the policy.
    std::fs::write(
        four.join("model.onnx"),
        std::fs::read(example.join("1/model.onnx")).unwrap(),
    )
    .unwrap();
    wait_for(&up, "version 4 to serve latest", || {
        let mut p = p.clone();
        async move {
            p.predict(predict_json("iris", "newest", "", IRIS_INPUT))
                .await
                .is_ok_and(|r| r.get_ref().version == 4 && iris_label(r.get_ref()) == 0)
        }
    })
    .await;
    wait_for(&up, "version 3 unloaded for the policy", || async {
        metric(metrics, "hotswap_model_unloads_total", "reason=\"policy\"") == 1.0
    })
    .await;
    assert_eq!(metric(metrics, "hotswap_models_in_memory", ""), 3.0);
}
