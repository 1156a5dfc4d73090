//! `hotswap up` as a process with the standard OTEL_EXPORTER_OTLP_ENDPOINT
//! pointing at a small OTLP/gRPC collector this test serves on loopback: a
//! Predict through the front door arrives as one trace with spans from the
//! control plane and the worker.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotswap_integration_tests::process::{Hotswap, workspace_root};
use hotswap_integration_tests::worker::answer;
use hotswap_proto::v1::predictor_client::PredictorClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn text(value: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> Option<String> {
    match value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn predict_spans_reach_an_otlp_collector() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let config = workspace_root().join("examples/iris-onnx/hotswap.yaml");
    let endpoint = format!("http://{collector_addr}");
    let mut up = Hotswap::start(
        &[
            "up",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
    );
    let predictor = PredictorClient::connect(format!("http://{}", up.addr))
        .await
        .unwrap();
    answer(&predictor, "iris", "a Predict answered", |_| true).await;
    // Shutdown flushes the batch exporter.
    assert!(
        up.process
            .terminate(Duration::from_secs(30))
            .await
            .success()
    );

    let requests = collector.0.lock().unwrap().clone();
    let mut predicts = Vec::new();
    for request in &requests {
        for resource in &request.resource_spans {
            let service_name = resource.resource.as_ref().and_then(|r| {
                r.attributes
                    .iter()
                    .find(|a| a.key == "service.name")
                    .and_then(|a| text(&a.value))
            });
            assert_eq!(service_name.as_deref(), Some("hotswap"));
            for scope in &resource.scope_spans {
                for span in &scope.spans {
                    if span.name == "/hotswap.v1.Predictor/Predict" {
                        let service = span
                            .attributes
                            .iter()
                            .find(|a| a.key == "service")
                            .and_then(|a| text(&a.value));
                        predicts.push((span.trace_id.clone(), service));
                    }
                }
            }
        }
    }
    let trace = predicts
        .iter()
        .find(|(_, s)| s.as_deref() == Some("data-plane"))
        .map(|(t, _)| t.clone())
        .unwrap_or_else(|| panic!("no worker Predict span exported: {predicts:?}"));
    assert!(
        predicts
            .iter()
            .any(|(t, s)| *t == trace && s.as_deref() == Some("control-plane")),
        "the worker's span shares its trace with a control-plane span: {predicts:?}"
    );
    server.abort();
}
