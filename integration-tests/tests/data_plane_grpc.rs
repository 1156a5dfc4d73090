//! A worker's gRPC surface beyond inference: health and readiness before the
//! model index arrives and after, and reflection as grpcurl uses it.

use std::process::Command;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::process::venv;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerOptions, WorkerServer, iris, predict_json,
};
use hotswap_proto::inference::ServerReadyRequest;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const CONFIG: &str = "- {name: iris, predictor: {type: onnx, models: {path: '{root}iris'}}}";

#[tokio::test]
async fn not_ready_until_the_index_arrives_then_listed_by_reflection() {
    let bucket = TestBucket::new(Backend::Local).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    // Reserve an address for the model-store, which starts later.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let store_addr = reserved.local_addr().unwrap();
    drop(reserved);
    let worker = WorkerServer::start_with(store_addr, &bucket, WorkerOptions::default()).await;

    let mut health = HealthClient::new(worker.channel().await);
    for service in ["", "hotswap.v1.Predictor", "inference.GRPCInferenceService"] {
        assert_eq!(
            status(&mut health, service).await,
            ServingStatus::NotServing as i32,
            "{service:?}"
        );
    }
    let mut inference = worker.inference().await;
    assert!(
        !inference
            .server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let early = worker
        .predictor()
        .await
        .predict(predict_json("iris", "", "", IRIS_INPUT))
        .await
        .unwrap_err();
    assert_eq!(early.code(), tonic::Code::Unavailable);
    assert!(early.message().contains("not ready"), "{}", early.message());

    let config = CONFIG.replace("{root}", &bucket.uri(""));
    let store = StoreServer::start_on(&store_addr.to_string(), &bucket, &config, |_| {}).await;
    eventually("health SERVING", || {
        let mut h = health.clone();
        async move { (status(&mut h, "").await == ServingStatus::Serving as i32).then_some(()) }
    })
    .await;
    assert!(
        inference
            .server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );

    let addr = worker.addr.to_string();
    let listed = tokio::task::spawn_blocking(move || {
        let out = Command::new(venv().join("bin/grpcurl"))
            .args(["-plaintext", "-max-time", "20", &addr, "list"])
            .output()
            .expect("run grpcurl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    })
    .await
    .unwrap();
    let services: Vec<&str> = listed.lines().collect();
    for s in [
        "hotswap.v1.Predictor",
        "inference.GRPCInferenceService",
        "grpc.health.v1.Health",
    ] {
        assert!(services.contains(&s), "{s} not in {services:?}");
    }
    assert!(
        !services.contains(&"hotswap.v1.ModelStore"),
        "a worker does not serve the model-store: {services:?}"
    );
    worker.stop().await;
    store.stop().await;
}

async fn status(health: &mut HealthClient<tonic::transport::Channel>, service: &str) -> i32 {
    health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}
