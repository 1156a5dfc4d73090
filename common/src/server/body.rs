//! A call's request body is read whole before the call takes a call slot
//! (`limit.rs`): a client that sends its body slowly, or never finishes
//! it, holds only its own connection. The read is bounded three ways: a
//! declared length over the limit is refused before a byte is read (413),
//! a body that grows past it is refused as soon as it does, and one that has
//! not arrived within the deadline is refused (408). Bodies being read, and
//! calls holding theirs, share a byte budget, so many large bodies at once
//! wait for room rather than take all memory.
//!
//! Requests that are streams (a worker's registration, Triton's streaming
//! inference) pass through unread: they have no end to wait for.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic::codegen::http;
use tower::{Layer, Service};

/// How long a call's body may take to arrive, by default.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest request body, by default (gRPC's own default message limit).
pub const BODY_LIMIT: usize = 4 << 20;

/// Bytes of request bodies held at once on one listener, while they are
/// read and until their calls finish.
const BODY_BUDGET: usize = 2 << 30;

/// gRPC bodies may exceed the limit by this much: the limit is on the
/// message, and tonic names a too-large message itself.
const GRPC_FRAMING: usize = 64 << 10;

/// Requests that are streams rather than one message.
const STREAMED: [&str; 2] = [
    "/hotswap.v1.ControlPlane/Register",
    "/inference.GRPCInferenceService/ModelStreamInfer",
];

#[derive(Clone)]
pub(super) struct BodyFirstLayer {
    limit: usize,
    timeout: Duration,
    budget: Arc<Semaphore>,
}

impl BodyFirstLayer {
    pub(super) fn new(limit: usize, timeout: Duration) -> BodyFirstLayer {
        BodyFirstLayer {
            limit,
            timeout,
            budget: Arc::new(Semaphore::new(BODY_BUDGET.max(limit))),
        }
    }
}

impl<S> Layer<S> for BodyFirstLayer {
    type Service = BodyFirst<S>;

    fn layer(&self, inner: S) -> BodyFirst<S> {
        BodyFirst {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct BodyFirst<S> {
    inner: S,
    layer: BodyFirstLayer,
}

/// Why a body was not read.
enum Refusal {
    TooLarge {
        limit: usize,
    },
    TooSlow {
        timeout: Duration,
    },
    /// The client's stream failed (it hung up): nobody reads the answer.
    Broken,
}

impl<S> Service<http::Request<Body>> for BodyFirst<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The instance poll_ready made ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path();
        if super::is_probe(path) || STREAMED.contains(&path) {
            return Box::pin(inner.call(request));
        }
        let grpc = super::is_grpc(&request);
        let limit = match grpc {
            true => self.layer.limit.saturating_add(GRPC_FRAMING),
            false => self.layer.limit,
        };
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            let response = refuse(grpc, Refusal::TooLarge { limit });
            return Box::pin(std::future::ready(Ok(response)));
        }
        let (timeout, budget) = (self.layer.timeout, self.layer.budget.clone());
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let read = tokio::time::timeout(timeout, read(body, limit, &budget)).await;
            let (chunks, _held) = match read {
                Ok(Ok(read)) => read,
                Ok(Err(refusal)) => return Ok(refuse(grpc, refusal)),
                Err(_) => return Ok(refuse(grpc, Refusal::TooSlow { timeout })),
            };
            let replay = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
            let body = Body::new(axum::body::Body::from_stream(replay));
            // The budget is held until the answer is ready: the body's
            // bytes live as long as the call decodes and runs.
            inner.call(http::Request::from_parts(parts, body)).await
        })
    }
}

/// `body`'s chunks, as they arrived, and the budget they take; refused
/// once they pass `limit`.
async fn read(
    body: Body,
    limit: usize,
    budget: &Arc<Semaphore>,
) -> Result<(Vec<Bytes>, Option<OwnedSemaphorePermit>), Refusal> {
    let mut stream = axum::body::Body::new(body).into_data_stream();
    let mut chunks = Vec::new();
    let mut held: Option<OwnedSemaphorePermit> = None;
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Refusal::Broken)?;
        total = total.saturating_add(chunk.len());
        if total > limit {
            return Err(Refusal::TooLarge { limit });
        }
        if chunk.is_empty() {
            continue;
        }
        // A chunk is far below u32::MAX bytes (hyper reads in buffers of
        // at most a few hundred KiB).
        let size = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        // The semaphore is never closed.
        if let Ok(permit) = budget.clone().acquire_many_owned(size).await {
            match &mut held {
                Some(held) => held.merge(permit),
                None => held = Some(permit),
            }
        }
        chunks.push(chunk);
    }
    Ok((chunks, held))
}

/// The answer to a call whose body was not read, in the caller's protocol.
fn refuse(grpc: bool, refusal: Refusal) -> http::Response<Body> {
    let (status, code, message) = match refusal {
        Refusal::TooLarge { limit } => (
            http::StatusCode::PAYLOAD_TOO_LARGE,
            tonic::Code::ResourceExhausted,
            format!("the request body is over the limit of {limit} bytes"),
        ),
        Refusal::TooSlow { timeout } => (
            http::StatusCode::REQUEST_TIMEOUT,
            tonic::Code::DeadlineExceeded,
            format!("the request body did not arrive within {timeout:?}"),
        ),
        Refusal::Broken => (
            http::StatusCode::BAD_REQUEST,
            tonic::Code::Cancelled,
            "the request body was cut off".to_owned(),
        ),
    };
    if grpc {
        return tonic::Status::new(code, message).into_http::<Body>();
    }
    let refusal = super::http_refusal(status, &message);
    axum::response::IntoResponse::into_response(refusal).map(Body::new)
}
