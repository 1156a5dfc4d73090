//! Readiness means loaded: a worker whose model is still downloading says
//! NOT_SERVING (gRPC health, ServerReady) although its model index has
//! arrived, and SERVING once the model is loaded; a control plane in front
//! of it is ready only then. Before, both said ready as soon as the index
//! arrived, and an orchestrator sent traffic to a worker holding nothing.

use std::time::Duration;

use hotswap_data_plane::DownloadLimits;
use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::proxy::Proxy;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{WorkerOptions, WorkerServer, index_entry, iris};
use hotswap_proto::inference::ServerReadyRequest;
use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn serving(channel: Channel, service: &str) -> bool {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .map(|r| r.into_inner().status == ServingStatus::Serving as i32)
        .unwrap_or(false)
}

async fn server_ready(channel: Channel) -> bool {
    GrpcInferenceServiceClient::new(channel)
        .server_ready(ServerReadyRequest {})
        .await
        .map(|r| r.into_inner().ready)
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_is_ready_once_its_models_are_loaded() {
    let bucket = TestBucket::new(Backend::S3).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: '{}'}}}}}}",
        bucket.uri("iris")
    );
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let control = ControlServer::start(store.addr).await;
    // The worker's downloads go through a proxy that holds the model's
    // bytes until told.
    let proxy = Proxy::start(bucket.emulator_addr()).await;
    proxy.stall("iris/1/");
    let mut storage = bucket.storage_options();
    storage.s3.endpoint = Some(format!("http://{}", proxy.addr));
    let worker = WorkerServer::start_with(
        store.addr,
        &bucket,
        WorkerOptions {
            storage: Some(storage),
            control_plane: Some(control.internal.to_string()),
            // A stalled attempt gives up after a second and the download is
            // tried again: once the proxy lets go, an attempt succeeds.
            downloads: Some(DownloadLimits {
                first_byte: Duration::from_secs(1),
                stall: Duration::from_secs(1),
                attempts: 8,
                ..DownloadLimits::default()
            }),
            ..Default::default()
        },
    )
    .await;
    eventually("the index arrived and iris is downloading", || async {
        index_entry(worker.addr, "iris", "1")
            .await
            .filter(|m| m.state == "LOADING")
    })
    .await;
    let worker_channel = worker.channel().await;
    for service in ["", "inference.GRPCInferenceService", "hotswap.v1.Predictor"] {
        assert!(
            !serving(worker_channel.clone(), service).await,
            "worker health {service:?} while its model downloads"
        );
    }
    assert!(
        !server_ready(worker_channel.clone()).await,
        "worker ServerReady"
    );
    let control_channel = control.channel().await;
    assert!(
        !server_ready(control_channel.clone()).await,
        "control plane ServerReady with no ready worker"
    );

    proxy.unstall();
    eventually("the worker SERVING once iris is loaded", || {
        let c = worker_channel.clone();
        async move { serving(c, "").await.then_some(()) }
    })
    .await;
    assert!(server_ready(worker_channel.clone()).await);
    eventually("the control plane ready with a ready worker", || {
        let c = control_channel.clone();
        async move { server_ready(c).await.then_some(()) }
    })
    .await;
    eventually("the control plane's health SERVING", || {
        let c = control_channel.clone();
        async move {
            serving(c, "inference.GRPCInferenceService")
                .await
                .then_some(())
        }
    })
    .await;
}
