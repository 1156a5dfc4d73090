//! What a front-door call carries on to the worker it is routed to: its
//! deadline (the client's `grpc-timeout`, less the time already spent) and
//! its trace context. A tower layer on the server captures both per call; the
//! router reads them when it builds the worker call.

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tonic::codegen::http;
use tower::{Layer, Service};

tokio::task_local! {
    static DEADLINE: Option<Instant>;
}

/// Captures each call's deadline for the router.
#[derive(Clone, Copy, Default)]
pub struct CallContextLayer;

impl<S> Layer<S> for CallContextLayer {
    type Service = CallContext<S>;

    fn layer(&self, inner: S) -> CallContext<S> {
        CallContext { inner }
    }
}

#[derive(Clone)]
pub struct CallContext<S> {
    inner: S,
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
        let span = hotswap_data_plane::telemetry::server_span("control-plane", &request);
        // Entered while the inner layers set up the call, so the spans they
        // make (the request log's) are children of this one.
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(tracing::Instrument::instrument(
            DEADLINE.scope(deadline, future),
            span,
        ))
    }
}

/// Whether the current call's deadline has passed (false without one).
pub fn deadline_passed() -> bool {
    DEADLINE
        .try_with(|d| d.is_some_and(|d| Instant::now() >= d))
        .unwrap_or(false)
}

/// A worker call for `message`, with the caller's remaining time as its
/// deadline and the current trace context in its metadata.
pub fn outgoing<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(Some(deadline)) = DEADLINE.try_with(|d| *d) {
        // An expired deadline still goes out (as 1 ms): the worker answers
        // DEADLINE_EXCEEDED, as the client expects.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        request.set_timeout(left);
    }
    hotswap_data_plane::telemetry::inject(request.metadata_mut());
    request
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
}
