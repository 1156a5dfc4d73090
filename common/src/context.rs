//! What a call carries from one service to the next: its trace context
//! (W3C `traceparent` in gRPC metadata) and its deadline (`grpc-timeout`,
//! less the time already spent). A tower layer in every server
//! ([`CallContextLayer`]) runs each call in a span that continues the
//! caller's trace and remembers its deadline; [`outgoing`] puts both on the
//! calls it makes in turn. Spans reach an exporter only when the process
//! installed one (the binary does when OTEL_EXPORTER_OTLP_ENDPOINT is set);
//! otherwise this costs a span per call and nothing crosses the wire.

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use opentelemetry::propagation::{Extractor, Injector};
use tonic::codegen::http;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

tokio::task_local! {
    static DEADLINE: Option<Instant>;
}

/// Runs each call of a server in its [`server_span`] and captures its
/// deadline for [`outgoing`] and [`deadline_passed`].
#[derive(Clone, Copy)]
pub struct CallContextLayer {
    /// Names the server in spans ("data-plane", ...).
    pub service: &'static str,
}

impl<S> Layer<S> for CallContextLayer {
    type Service = CallContext<S>;

    fn layer(&self, inner: S) -> CallContext<S> {
        CallContext {
            inner,
            service: self.service,
        }
    }
}

/// A server's calls, each run in its span with its deadline known (see
/// [`CallContextLayer`]).
#[derive(Clone)]
pub struct CallContext<S> {
    inner: S,
    service: &'static str,
}

impl<S, B> Service<http::Request<B>> for CallContext<S>
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
        let deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_timeout)
            .map(|d| Instant::now() + d);
        let span = server_span(self.service, &request);
        // Entered while the inner layers set up the call, so the spans they
        // make (the request log's) are children of this one.
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(DEADLINE.scope(deadline, future).instrument(span))
    }
}

/// The current call's deadline, when its caller set one (`grpc-timeout`)
/// and this runs within the call (not in a task it spawned).
pub fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok().flatten()
}

/// Whether the current call's deadline has passed (false without one).
pub fn deadline_passed() -> bool {
    deadline().is_some_and(|d| Instant::now() >= d)
}

/// A call to another service for `message`, with the current call's
/// remaining time as its deadline and the current trace context in its
/// metadata.
pub fn outgoing<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(Some(deadline)) = DEADLINE.try_with(|d| *d) {
        // An expired deadline still goes out (as 1 ms): the callee answers
        // DEADLINE_EXCEEDED, as the client expects.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        request.set_timeout(left);
    }
    inject(request.metadata_mut());
    request
}

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

/// `grpc-timeout`: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_timeout(text: &str) -> Option<Duration> {
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout("12x"), None);
        assert_eq!(parse_timeout("m"), None);
        assert_eq!(parse_timeout("123456789S"), None);
    }

    #[tokio::test]
    async fn a_call_knows_its_deadline_and_a_call_without_one_has_none() {
        let mut served = CallContextLayer { service: "test" }.layer(tower::service_fn(
            |_: http::Request<()>| async { Ok::<_, std::convert::Infallible>(deadline()) },
        ));
        let request = |timeout: Option<&str>| {
            let mut r = http::Request::new(());
            if let Some(t) = timeout {
                r.headers_mut().insert("grpc-timeout", t.parse().unwrap());
            }
            r
        };
        let before = Instant::now();
        let got = served.call(request(Some("250m"))).await.unwrap().unwrap();
        // Taken when the call arrived, after `before`.
        let left = got.saturating_duration_since(before);
        assert!(left >= Duration::from_millis(250) && left < Duration::from_secs(1));
        assert_eq!(served.call(request(None)).await.unwrap(), None);
        assert_eq!(deadline(), None, "outside any call");
    }
}
