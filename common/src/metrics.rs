//! Prometheus metrics: one process-wide recorder (the `metrics` facade, so
//! recording a value anywhere is one macro call, and a no-op until a
//! recorder is installed), rendered by `metrics-exporter-prometheus` at
//! `GET /metrics` on a listener of its own. Per-call request metrics are
//! recorded by a tower layer in the shared server builder (`server.rs`);
//! the services record what only they know (model phases, loads, polls,
//! routing). Process basics (CPU, resident memory, open files) are read
//! from `/proc` at each scrape. The metric list is in docs/operations.md.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::FutureExt;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::trust::{BearerTokens, Gate};
use tonic::codegen::http;
use tower::{Layer, Service};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets in seconds: 100 µs to 60 s, for calls and model phases
/// alike (a tiny model answers in microseconds, a load takes seconds).
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// Rows per batched run (`hotswap_batch_size`): 1 to 256.
const BATCH_ROWS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Installs the process's recorder (once; later calls return the same
/// handle): from then on the services' metrics are kept.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("the buckets are not empty")
                .set_buckets_for_metric(Matcher::Full("hotswap_batch_size".to_owned()), BATCH_ROWS)
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder (a test's) may be installed already: then
            // this handle renders what was recorded before it, nothing more.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves. With
/// `tokens`, a scrape must carry `authorization: Bearer <one of them>`
/// (the metrics name every API, model and version served); without, anyone
/// who reaches the listener may read them.
pub async fn serve(
    listener: TcpListener,
    tokens: Option<BearerTokens>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = install();
    let addr: SocketAddr = listener.local_addr()?;
    let gate = tokens.map_or(Gate::Open, Gate::Bearer);
    tracing::info!(%addr, tokens = !matches!(gate, Gate::Open), "metrics listening");
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |request: axum::extract::Request| {
            let (handle, gate) = (handle.clone(), gate.clone());
            async move {
                if let Some(reason) = gate.refusal(&request) {
                    let refusal =
                        crate::server::http_refusal(http::StatusCode::UNAUTHORIZED, reason);
                    return axum::response::IntoResponse::into_response(refusal);
                }
                process::record();
                axum::response::IntoResponse::into_response((
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                ))
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Records every call a server answers: `hotswap_requests_total` by
/// method and status, `hotswap_request_duration_seconds` (to the response's
/// headers: the whole of a unary call), and `hotswap_requests_in_flight`.
#[derive(Clone, Copy)]
pub struct RequestMetricsLayer {
    /// Names the server in the metrics' `service` label ("data-plane", ...).
    pub service: &'static str,
}

impl<S> Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> RequestMetrics<S> {
        RequestMetrics {
            inner,
            service: self.service,
        }
    }
}

/// A server's calls, each counted and timed (see [`RequestMetricsLayer`]).
#[derive(Clone)]
pub struct RequestMetrics<S> {
    inner: S,
    service: &'static str,
}

impl<S, B, RB> Service<http::Request<B>> for RequestMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let service = self.service;
        let grpc = crate::server::is_grpc(&request);
        let method = method_label(request.uri().path(), grpc);
        let in_flight = InFlight::enter(service);
        let started = Instant::now();
        let call = self.inner.call(request);
        async move {
            let result = call.await;
            drop(in_flight);
            let code = match &result {
                Ok(response) => status_label(grpc, response),
                Err(_) => "transport".to_owned(),
            };
            metrics::histogram!("hotswap_request_duration_seconds",
                "service" => service, "method" => method.clone())
            .record(started.elapsed().as_secs_f64());
            metrics::counter!("hotswap_requests_total",
                "service" => service, "method" => method, "code" => code)
            .increment(1);
            result
        }
        .boxed()
    }
}

/// A call counted in `hotswap_requests_in_flight` until dropped, also when
/// the caller goes away mid-call and the call's future is dropped.
struct InFlight(metrics::Gauge);

impl InFlight {
    fn enter(service: &'static str) -> InFlight {
        let gauge = metrics::gauge!("hotswap_requests_in_flight", "service" => service);
        gauge.increment(1.0);
        InFlight(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// The method as a label: a gRPC path as is (a fixed set), an HTTP path by
/// its route, so that model names do not each make a series of their own
/// here (they are in the per-model metrics).
fn method_label(path: &str, grpc: bool) -> String {
    const SERVICES: [&str; 3] = ["/hotswap.v1.", "/inference.", "/grpc."];
    const ROUTES: [&str; 5] = [
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/repository/index",
        "/v2/models/stats",
    ];
    if grpc {
        return if SERVICES.iter().any(|s| path.starts_with(s)) {
            path.to_owned()
        } else {
            "other".to_owned()
        };
    }
    if let Some(rest) = path.strip_prefix("/v2/models/") {
        let last = rest.rsplit('/').next().unwrap_or_default();
        return match last {
            "infer" | "ready" | "config" | "stats" => format!("/v2/models/*/{last}"),
            _ => "/v2/models/*".to_owned(),
        };
    }
    if ROUTES.contains(&path) || path == "/metrics" {
        return path.to_owned();
    }
    // Cortex's POST /{api}: one segment.
    if path.len() > 1 && path.matches('/').count() == 1 {
        return "/{api}".to_owned();
    }
    "other".to_owned()
}

/// A gRPC call's status code name (errors come back trailers-only, in the
/// headers; an answer with a body is OK), or an HTTP call's status.
fn status_label<RB>(grpc: bool, response: &http::Response<RB>) -> String {
    if !grpc {
        return response.status().as_u16().to_string();
    }
    match tonic::Status::from_header_map(response.headers()) {
        Some(status) => format!("{:?}", status.code()),
        None => "Ok".to_owned(),
    }
}

/// Process basics from `/proc/self`, refreshed at each scrape.
mod process {
    pub fn record() {
        if let Some((cpu_seconds, rss_bytes)) = stat() {
            metrics::gauge!("process_cpu_seconds_total").set(cpu_seconds);
            metrics::gauge!("process_resident_memory_bytes").set(rss_bytes);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            metrics::gauge!("process_open_fds").set(fds.count() as f64);
        }
    }

    /// CPU seconds (user + system) and resident bytes.
    fn stat() -> Option<(f64, f64)> {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which may hold spaces.
        let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15, rss 24 (1-based, with pid
        // and comm as 1 and 2).
        let ticks = 100.0; // USER_HZ on Linux
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        let rss_pages: f64 = fields.get(21)?.parse().ok()?;
        Some(((utime + stime) / ticks, rss_pages * 4096.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call whose caller goes away mid-call leaves the in-flight count.
    #[tokio::test]
    async fn a_dropped_call_is_no_longer_in_flight() {
        let handle = install();
        let never = tower::service_fn(|_: http::Request<()>| {
            std::future::pending::<Result<http::Response<()>, std::convert::Infallible>>()
        });
        let mut layered = RequestMetricsLayer {
            service: "dropped-test",
        }
        .layer(never);
        let call = layered.call(http::Request::new(()));
        let gauge = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("hotswap_requests_in_flight{service=\"dropped-test\"}"))
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_owned)
        };
        assert_eq!(gauge(&handle.render()).as_deref(), Some("1"));
        drop(call);
        assert_eq!(gauge(&handle.render()).as_deref(), Some("0"));
    }

    #[test]
    fn methods_are_labelled_without_model_names() {
        let infer = "/inference.GRPCInferenceService/ModelInfer";
        assert_eq!(method_label(infer, true), infer);
        assert_eq!(method_label("/made.Up/Call", true), "other");
        assert_eq!(
            method_label("/v2/models/iris/versions/3/infer", false),
            "/v2/models/*/infer"
        );
        assert_eq!(method_label("/v2/models/iris", false), "/v2/models/*");
        assert_eq!(method_label("/v2/health/ready", false), "/v2/health/ready");
        assert_eq!(method_label("/sentiment", false), "/{api}");
        assert_eq!(method_label("/a/b/c", false), "other");
    }
}
