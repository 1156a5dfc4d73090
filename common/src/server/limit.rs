//! The concurrency limit every hotswap server may take: calls beyond it
//! wait, before anything of theirs is decoded, for a call to finish. Health
//! checks and reflection never wait: a server busy with slow calls (a hung
//! predictor's queue) must still answer its probes, or an orchestrator
//! would restart it for being busy.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use tonic::codegen::http;
use tower::{Layer, Service};

#[derive(Clone)]
pub(super) struct LimitLayer {
    permits: Arc<Semaphore>,
}

impl LimitLayer {
    pub(super) fn new(limit: usize) -> LimitLayer {
        LimitLayer {
            permits: Arc::new(Semaphore::new(limit)),
        }
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = Limit<S>;

    fn layer(&self, inner: S) -> Limit<S> {
        Limit {
            inner,
            permits: self.permits.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Limit<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S, B> Service<http::Request<B>> for Limit<S>
where
    S: Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let exempt = super::is_probe(request.uri().path());
        // The instance poll_ready made ready serves this call; a clone
        // takes its place for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let permits = self.permits.clone();
        Box::pin(async move {
            // Held until the response is ready, as tower's own limit does.
            let _permit = match exempt {
                true => None,
                // The semaphore is never closed.
                false => permits.acquire_owned().await.ok(),
            };
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Notify;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn probes_pass_a_full_limit_and_other_calls_wait() {
        let release = Arc::new(Notify::new());
        let entered = Arc::new(AtomicUsize::new(0));
        let inner = {
            let (release, entered) = (release.clone(), entered.clone());
            tower::service_fn(move |r: http::Request<()>| {
                let (release, entered) = (release.clone(), entered.clone());
                async move {
                    entered.fetch_add(1, Ordering::SeqCst);
                    if !r.uri().path().starts_with("/grpc.health") {
                        release.notified().await;
                    }
                    Ok::<_, Infallible>(r.uri().path().to_owned())
                }
            })
        };
        let layer = LimitLayer::new(1);
        let service = layer.layer(inner);
        let call = |path: &str| {
            let request = http::Request::builder().uri(path).body(()).unwrap();
            service.clone().oneshot(request)
        };

        let slow = tokio::spawn(call("/hotswap.v1.Predictor/Predict"));
        while entered.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(layer.permits.available_permits(), 0);
        let mut waiting = Box::pin(call("/hotswap.v1.Predictor/Predict"));
        assert!(futures::poll!(&mut waiting).is_pending());
        assert_eq!(
            entered.load(Ordering::SeqCst),
            1,
            "a call got past a full limit"
        );

        let probe = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            call("/grpc.health.v1.Health/Check"),
        )
        .await
        .expect("a health check waited behind the limit")
        .unwrap();
        assert_eq!(probe, "/grpc.health.v1.Health/Check");

        release.notify_one();
        slow.await.unwrap().unwrap();
        let next = tokio::spawn(waiting);
        while entered.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        release.notify_one();
        next.await.unwrap().unwrap();
    }
}
