//! Mutual TLS between the planes, with certificates made at run time: a
//! worker whose certificate another CA signed can neither subscribe to the
//! model-store nor register with the control plane, a client without a
//! certificate is refused by the internal listeners, and a worker from the
//! cluster CA serves end to end (Predict, ModelInfer and a swap, the front
//! door over TLS).

use hotswap_integration_tests::worker::iris_bucket;
use std::time::Duration;

use hotswap_common::trust::ClusterCredentials;
use hotswap_control_plane::ControlPlaneConfig;
use hotswap_integration_tests::certs::TestCa;
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::serving::cluster_channel;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{IRIS_INPUT, iris, iris_infer, iris_label, predict_json};
use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use hotswap_proto::v1::control_plane_client::ControlPlaneClient;
use hotswap_proto::v1::model_store_client::ModelStoreClient;
use hotswap_proto::v1::predictor_client::PredictorClient;
use hotswap_proto::v1::{ListWorkersRequest, WatchRequest};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// How long a refused worker is watched for not getting in.
const REFUSED_FOR: Duration = Duration::from_secs(3);

/// What a call refused during the handshake looks like: the connection is
/// closed (with TLS 1.3 the client may only find out once it sends).
fn refused_by_tls(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    )
}

fn tls_only(tls: std::sync::Arc<hotswap_common::trust::Tls>) -> ClusterCredentials {
    ClusterCredentials {
        tls: Some(tls),
        token: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_planes_with_a_cluster_certificate_get_in() {
    let (bucket, config) = iris_bucket(2).await;
    let cluster_ca = TestCa::new("hotswap test cluster");
    let other_ca = TestCa::new("someone else");
    let store_tls = tls_only(cluster_ca.tls("model-store"));
    let store = StoreServer::start(&bucket, &config, |c| c.cluster = store_tls).await;
    let control_tls = tls_only(cluster_ca.tls("control-plane"));
    let control = ControlServer::start_with(ControlPlaneConfig {
        model_store: store.addr.to_string(),
        cluster: control_tls.clone(),
        clients: control_tls.client_facing(None),
        ..ControlPlaneConfig::default()
    })
    .await;

    // A worker from another CA: the model-store and the control plane do
    // not accept its certificate (nor it theirs).
    let outsider = crate::registered_worker(
        store.addr,
        &bucket,
        control.internal,
        tls_only(other_ca.tls("outsider")),
    )
    .await;
    tokio::time::sleep(REFUSED_FOR).await;
    assert!(
        !outsider.worker.catalog().complete,
        "a worker with another CA's certificate got the model index"
    );
    assert!(
        control.workers().await.is_empty(),
        "a worker with another CA's certificate registered"
    );
    drop(outsider);

    // TLS that trusts the cluster CA but shows no client certificate.
    let no_certificate = |addr: std::net::SocketAddr| {
        Endpoint::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(cluster_ca.pem())),
            )
            .unwrap()
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy()
    };
    let refused = ModelStoreClient::new(no_certificate(store.addr))
        .watch(WatchRequest::default())
        .await
        .expect_err("Watch without a client certificate");
    assert!(refused_by_tls(&refused), "{refused}");
    let refused = ControlPlaneClient::new(no_certificate(control.internal))
        .list_workers(ListWorkersRequest {})
        .await
        .expect_err("ListWorkers without a client certificate");
    assert!(refused_by_tls(&refused), "{refused}");
    // Plaintext does not get through either.
    let plaintext = Endpoint::from_shared(format!("http://{}", store.addr))
        .unwrap()
        .connect_lazy();
    ModelStoreClient::new(plaintext)
        .watch(WatchRequest::default())
        .await
        .expect_err("plaintext Watch on a TLS listener");

    // A worker with the cluster CA's certificate gets in and serves; the
    // client calls the front door over TLS without a certificate of its own.
    let _member = crate::registered_worker(
        store.addr,
        &bucket,
        control.internal,
        tls_only(cluster_ca.tls("worker")),
    )
    .await;
    control.wait_for_workers(1).await;
    let front = PredictorClient::new(no_certificate(control.addr));
    assert_eq!(iris_label(&crate::first_answer(&front).await), 2);
    let infer = GrpcInferenceServiceClient::new(no_certificate(control.addr))
        .model_infer(iris_infer("iris", "1"))
        .await
        .expect("ModelInfer over TLS")
        .into_inner();
    assert_eq!(infer.model_version, "1");
    // A new version swaps in over the same connections.
    bucket.put("iris/2/model.onnx", iris(0)).await;
    eventually("version 2 served as latest over TLS", || {
        let mut front = front.clone();
        async move {
            let r = front
                .predict(predict_json("iris", "", "", IRIS_INPUT))
                .await
                .ok()?
                .into_inner();
            (r.version == 2 && iris_label(&r) == 0).then_some(())
        }
    })
    .await;

    // And the front door does not answer plaintext.
    let plaintext = Endpoint::from_shared(format!("http://{}", control.addr))
        .unwrap()
        .connect_lazy();
    PredictorClient::new(plaintext)
        .predict(predict_json("iris", "", "1", IRIS_INPUT))
        .await
        .expect_err("plaintext Predict on a TLS front door");
    // The control plane's own client (cluster certificate) lists the worker.
    let listed = ControlPlaneClient::new(cluster_channel(control.internal, &control_tls).await)
        .list_workers(ListWorkersRequest {})
        .await
        .expect("ListWorkers with the cluster certificate")
        .into_inner();
    assert_eq!(listed.workers.len(), 1);
}
