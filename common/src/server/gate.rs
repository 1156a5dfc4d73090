//! The credentials check on every call a listener takes (`trust.rs` says
//! which listener asks for what). A call without them is answered
//! UNAUTHENTICATED before any of it is decoded; health checks and
//! reflection pass without.

use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use tonic::body::Body;
use tonic::codegen::http;
use tower::{Layer, Service};

use crate::trust::{CLUSTER_TOKEN_HEADER, Gate};

#[derive(Clone)]
pub(super) struct GateLayer(pub(super) Gate);

impl<S> Layer<S> for GateLayer {
    type Service = Gated<S>;

    fn layer(&self, inner: S) -> Gated<S> {
        Gated {
            inner,
            gate: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Gated<S> {
    inner: S,
    gate: Gate,
}

impl Gate {
    /// Why `request` may not pass, or None when it may.
    pub(crate) fn refusal<B>(&self, request: &http::Request<B>) -> Option<&'static str> {
        if super::is_probe(request.uri().path()) {
            return None;
        }
        let headers = request.headers();
        match self {
            Gate::Open => None,
            Gate::Cluster(token) => match headers.get(CLUSTER_TOKEN_HEADER) {
                Some(given) if token.matches(given.as_bytes()) => None,
                Some(_) => Some("the cluster token does not match"),
                None => Some(
                    "this listener takes calls from hotswap's own planes only: the call carries no cluster token",
                ),
            },
            Gate::Bearer(tokens) => {
                let bearer = headers
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| strip_bearer(v.as_bytes()));
                match bearer {
                    Some(given) if tokens.accepts(given) => None,
                    Some(_) => Some("the bearer token is not one this server accepts"),
                    None => Some("this server needs an `authorization: Bearer <token>` header"),
                }
            }
        }
    }
}

/// The token of `Bearer <token>` (the scheme's case does not matter).
fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

impl<S, B> Service<http::Request<B>> for Gated<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Send,
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
        match self.gate.refusal(&request) {
            None => self.inner.call(request).boxed(),
            Some(reason) if super::is_grpc(&request) => {
                let response = tonic::Status::unauthenticated(reason).into_http::<Body>();
                std::future::ready(Ok(response)).boxed()
            }
            Some(reason) => {
                let refusal = super::http_refusal(http::StatusCode::UNAUTHORIZED, reason);
                let response = axum::response::IntoResponse::into_response(refusal).map(Body::new);
                std::future::ready(Ok(response)).boxed()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::ServiceExt;

    use super::*;
    use crate::trust::{BearerTokens, Secret};

    async fn status(gate: &Gate, path: &str, headers: &[(&str, &str)]) -> Option<tonic::Code> {
        let inner = tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, Infallible>(http::Response::new(Body::empty()))
        });
        let mut request = http::Request::builder()
            .uri(path)
            .header(http::header::CONTENT_TYPE, "application/grpc");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = GateLayer(gate.clone())
            .layer(inner)
            .oneshot(request.body(()).unwrap())
            .await
            .unwrap();
        tonic::Status::from_header_map(response.headers()).map(|s| s.code())
    }

    const PREDICT: &str = "/hotswap.v1.Predictor/Predict";
    const HEALTH: &str = "/grpc.health.v1.Health/Check";

    #[tokio::test]
    async fn cluster_gate_takes_only_the_token() {
        let gate = Gate::Cluster(Secret::new("t0ken").unwrap());
        let unauthenticated = Some(tonic::Code::Unauthenticated);
        assert_eq!(status(&gate, PREDICT, &[]).await, unauthenticated);
        assert_eq!(
            status(&gate, PREDICT, &[(CLUSTER_TOKEN_HEADER, "t0ke")]).await,
            unauthenticated
        );
        assert_eq!(
            status(&gate, PREDICT, &[("authorization", "Bearer t0ken")]).await,
            unauthenticated
        );
        assert_eq!(
            status(&gate, PREDICT, &[(CLUSTER_TOKEN_HEADER, "t0ken")]).await,
            None
        );
        assert_eq!(status(&gate, HEALTH, &[]).await, None);
    }

    #[tokio::test]
    async fn bearer_gate_takes_any_listed_token() {
        let gate = Gate::Bearer(BearerTokens::parse("alpha\nbeta\n").unwrap().unwrap());
        let unauthenticated = Some(tonic::Code::Unauthenticated);
        assert_eq!(status(&gate, PREDICT, &[]).await, unauthenticated);
        assert_eq!(
            status(&gate, PREDICT, &[("authorization", "Bearer gamma")]).await,
            unauthenticated
        );
        assert_eq!(
            status(&gate, PREDICT, &[("authorization", "Basic alpha")]).await,
            unauthenticated
        );
        assert_eq!(
            status(&gate, PREDICT, &[("authorization", "Bearer beta")]).await,
            None
        );
        assert_eq!(
            status(&gate, PREDICT, &[("authorization", "bearer alpha")]).await,
            None
        );
        assert_eq!(status(&gate, HEALTH, &[]).await, None);
    }

    /// The HTTP bindings get their refusal in HTTP: 401 with a JSON error,
    /// not a gRPC status an HTTP client would read as a 200.
    #[tokio::test]
    async fn http_callers_are_refused_in_http() {
        let gate = Gate::Bearer(BearerTokens::parse("alpha\n").unwrap().unwrap());
        let call = |path: &str, token: Option<&str>| {
            let inner = tower::service_fn(|_: http::Request<()>| async {
                Ok::<_, Infallible>(http::Response::new(Body::empty()))
            });
            let mut request = http::Request::builder().method("POST").uri(path);
            if let Some(token) = token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            GateLayer(gate.clone())
                .layer(inner)
                .oneshot(request.body(()).unwrap())
        };
        let refused = call("/iris", None).await.unwrap();
        assert_eq!(refused.status(), http::StatusCode::UNAUTHORIZED);
        assert!(tonic::Status::from_header_map(refused.headers()).is_none());
        let body = axum::body::to_bytes(axum::body::Body::new(refused.into_body()), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(body["error"].as_str().is_some(), "{body}");
        let passed = call("/iris", Some("alpha")).await.unwrap();
        assert_eq!(passed.status(), http::StatusCode::OK);
        let probe = call("/v2/health/ready", None).await.unwrap();
        assert_eq!(
            probe.status(),
            http::StatusCode::OK,
            "health needs no token"
        );
    }
}
