//! Trace context across services: every server call runs in a span whose
//! parent comes from the caller's W3C `traceparent` metadata, and every call
//! the control plane makes to a worker carries the current span's context.
//! Spans reach an exporter only when the process installed one (the binary
//! does when OTEL_EXPORTER_OTLP_ENDPOINT is set); otherwise this costs a
//! span per call and nothing crosses the wire.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use opentelemetry::propagation::{Extractor, Injector};
use tonic::codegen::http;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A server span for one call, child of the caller's trace context if the
/// request carries one.
pub fn server_span<B>(service: &'static str, request: &http::Request<B>) -> tracing::Span {
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&HeaderExtractor(request.headers()))
    });
    let span = tracing::info_span!(
        "grpc",
        otel.name = %request.uri().path(),
        otel.kind = "server",
        service,
    );
    // Fails only when no OpenTelemetry layer is installed: logs only.
    let _ = span.set_parent(parent);
    span
}

/// Writes the current span's context into an outgoing call's metadata.
pub fn inject(metadata: &mut MetadataMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut MetadataInjector(metadata));
    });
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Runs each call of a server in its [`server_span`].
#[derive(Clone, Copy)]
pub struct TraceContextLayer {
    pub service: &'static str,
}

impl<S> Layer<S> for TraceContextLayer {
    type Service = TraceContext<S>;

    fn layer(&self, inner: S) -> TraceContext<S> {
        TraceContext {
            inner,
            service: self.service,
        }
    }
}

#[derive(Clone)]
pub struct TraceContext<S> {
    inner: S,
    service: &'static str,
}

impl<S, B> Service<http::Request<B>> for TraceContext<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = server_span(self.service, &request);
        // Entered while the inner layers set up the call, so the spans they
        // make (the request log's) are children of this one.
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(future.instrument(span))
    }
}
