//! The model-store's gRPC surface beyond Watch: health before and after the
//! first index, and reflection as grpcurl uses it.

use std::process::Command;
use std::time::Duration;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::process::venv;
use hotswap_integration_tests::store::{StoreServer, Watcher};
use hotswap_integration_tests::wait::WAIT;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn health_is_not_serving_until_the_first_full_index() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/1/model.onnx", "v1").await;
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: \"{}\"}}}}}}",
        bucket.uri("iris")
    );
    // The first index completes one settle interval after the first listing.
    let server =
        StoreServer::start(&bucket, &config, |c| c.poll.settle = Duration::from_secs(5)).await;
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "hotswap.v1.ModelStore"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::NotServing as i32, "{service:?}");
    }
    // Watch waits for the first index rather than send an empty snapshot.
    let watcher = Watcher::synced(&server).await;
    assert!(watcher.has("iris", "iris", 1));
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    server.stop().await;
}

#[tokio::test]
async fn grpcurl_lists_and_calls_the_services_through_reflection() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/3/model.onnx", "v3").await;
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: \"{}\"}}}}}}",
        bucket.uri("iris")
    );
    let server = StoreServer::start(&bucket, &config, |_| {}).await;
    Watcher::synced(&server).await;
    let addr = server.addr.to_string();
    let grpcurl = |args: Vec<&str>| {
        let addr = addr.clone();
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(venv().join("bin/grpcurl"));
            command.arg("-plaintext").arg("-max-time").arg("20");
            command
                .args(&args[..args.len() - 1])
                .arg(&addr)
                .arg(&args[args.len() - 1]);
            let out = command.output().expect("run grpcurl");
            assert!(
                out.status.success(),
                "grpcurl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        })
    };
    let services = tokio::time::timeout(WAIT, grpcurl(vec!["list"]))
        .await
        .unwrap()
        .unwrap();
    for service in ["hotswap.v1.ModelStore", "grpc.health.v1.Health"] {
        assert!(
            services.lines().any(|l| l == service),
            "{service} missing from:\n{services}"
        );
    }
    // Workers serve inference; the model-store does not claim it.
    assert!(!services.contains("inference."), "{services}");
    let model = tokio::time::timeout(
        WAIT,
        grpcurl(vec![
            "-d",
            r#"{"api": "iris"}"#,
            "hotswap.v1.ModelStore/GetModel",
        ]),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(model.contains(r#""latest": "3""#), "{model}");
    server.stop().await;
}
