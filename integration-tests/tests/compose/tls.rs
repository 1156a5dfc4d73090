//! docker-compose.tls.yml layered on: TLS everywhere.

use std::sync::Arc;

use hotswap_common::trust::ClusterCredentials;
use hotswap_integration_tests::certs::TestCa;
use hotswap_integration_tests::compose::{Compose, ComposeOptions, make_readable};
use hotswap_integration_tests::process::{triton_check_with, workspace_root};
use hotswap_integration_tests::worker::{IRIS_INPUT, predict_json};
use hotswap_proto::v1::ListWorkersRequest;
use hotswap_proto::v1::control_plane_client::ControlPlaneClient;
use hotswap_proto::v1::predictor_client::PredictorClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::{blocking, until, workers};

/// docker-compose.tls.yml over docker-compose.yml, with certificates made
/// at run time: every listener serves TLS, the planes show certificates to
/// each other, the workers (whose host names are container ids) carry the
/// shared name `data-plane`, and the unmodified tritonclient calls the
/// published front door over TLS. Plaintext is refused on the front door,
/// and the internal listener refuses a TLS client without a certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_stack_runs_over_tls() {
    let ca = TestCa::new("hotswap compose test CA");
    let tls = tempfile::tempdir().expect("TLS folder");
    for service in ["model-store", "control-plane", "data-plane"] {
        let dir = tls.path().join(service);
        std::fs::create_dir(&dir).unwrap();
        ca.issue(service).write(&dir);
    }
    make_readable(tls.path());
    let options = ComposeOptions {
        files: vec!["docker-compose.tls.yml".to_owned()],
        env: vec![("HOTSWAP_TLS".to_owned(), tls.path().display().to_string())],
    };
    let models = workspace_root().join("examples/iris-onnx");
    let compose = Arc::new(blocking(move || Compose::up_with(&models, |_| {}, options)).await);

    // The test as a member of the cluster (its certificate from the CA)
    // lists the workers on the internal listener.
    let member = ClusterCredentials {
        tls: Some(ca.tls("control-plane")),
        token: None,
    };
    let internal = hotswap_common::client::endpoint(&compose.internal.to_string(), &member)
        .unwrap()
        .connect_lazy();
    until(
        &compose,
        "one worker registered over mutual TLS",
        || async { (workers(&internal).await.len() == 1).then_some(()) },
    )
    .await;

    let ca_file = tls.path().join("control-plane/ca.crt");
    let model = workspace_root().join("examples/iris-onnx/models/iris/3/model.onnx");
    let front = compose.addr.to_string();
    let check = blocking(move || {
        triton_check_with(
            &front,
            "iris",
            "3",
            &model,
            &["--ca", ca_file.to_str().unwrap()],
        )
    })
    .await;
    if let Err(output) = check {
        panic!(
            "tritonclient over TLS through compose:\n{output}\n{}",
            compose.logs()
        );
    }

    let plaintext = Channel::from_shared(format!("http://{}", compose.addr))
        .unwrap()
        .connect_lazy();
    PredictorClient::new(plaintext)
        .predict(predict_json("iris", "", "", IRIS_INPUT))
        .await
        .expect_err("plaintext Predict on the TLS front door");
    let no_certificate = Endpoint::from_shared(format!("https://{}", compose.internal))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.pem())))
        .unwrap()
        .connect_lazy();
    ControlPlaneClient::new(no_certificate)
        .list_workers(ListWorkersRequest {})
        .await
        .expect_err("ListWorkers without a client certificate");

    drop(internal);
    let compose = Arc::try_unwrap(compose).unwrap_or_else(|_| panic!("compose still shared"));
    blocking(move || drop(compose)).await;
}
