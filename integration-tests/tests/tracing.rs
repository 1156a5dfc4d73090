//! One request, one trace: the control plane's span and the worker's span
//! for a Predict share a trace id, carried as W3C trace context in gRPC
//! metadata. Spans go to an in-memory exporter installed by this test (its
//! own test binary, so the global subscriber touches nothing else).

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{
    IRIS_INPUT, WorkerOptions, WorkerServer, iris, predict_json,
};
use opentelemetry::trace::{SpanId, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

fn service_of(span: &SpanData) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == "service")
        .map(|kv| kv.value.as_str().into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_predict_is_one_trace_across_control_plane_and_worker() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber");

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
    let worker = WorkerServer::start_with(store.addr, &bucket, options).await;
    eventually("the worker holds the model", || async {
        control
            .workers()
            .await
            .iter()
            .any(|w| !w.held.is_empty())
            .then_some(())
    })
    .await;

    exporter.reset();
    let r = control
        .predictor()
        .await
        .predict(predict_json("iris", "", "", IRIS_INPUT))
        .await
        .unwrap();
    assert_eq!(r.into_inner().version, 1);
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let predict = |service: &str| {
        spans
            .iter()
            .find(|s| {
                s.name == "/hotswap.v1.Predictor/Predict"
                    && service_of(s).as_deref() == Some(service)
            })
            .unwrap_or_else(|| {
                panic!(
                    "no {service} Predict span in {:#?}",
                    spans
                        .iter()
                        .map(|s| (&s.name, service_of(s)))
                        .collect::<Vec<_>>()
                )
            })
    };
    let front = predict("control-plane");
    let back = predict("data-plane");
    assert_eq!(
        front.span_context.trace_id(),
        back.span_context.trace_id(),
        "one trace"
    );
    assert_ne!(
        back.parent_span_id,
        SpanId::INVALID,
        "the worker's span has a remote parent"
    );
    // Walk up from the worker's span: the control plane's span is an
    // ancestor (its request-log span may sit in between).
    let mut parent = back.parent_span_id;
    let mut steps = 0;
    while parent != front.span_context.span_id() {
        let span = spans
            .iter()
            .find(|s| s.span_context.span_id() == parent)
            .unwrap_or_else(|| panic!("parent {parent:?} of the worker's span was not exported"));
        parent = span.parent_span_id;
        steps += 1;
        assert!(
            steps < 4,
            "the control plane's span is not an ancestor of the worker's"
        );
    }

    worker.stop().await;
    control.stop().await;
    store.stop().await;
}
