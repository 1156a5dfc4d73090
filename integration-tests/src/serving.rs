//! A server running in this test process: spawned with a shutdown signal,
//! stopped gracefully (bounded by [`WAIT`]) or aborted when dropped.

use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;

use hotswap_common::client::{WithToken, endpoint};
use hotswap_common::trust::ClusterCredentials;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::wait::WAIT;

/// A server task: stopped gracefully on request, aborted on drop.
pub struct Running<E> {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), E>>>,
}

impl<E: Debug + Send + 'static> Running<E> {
    /// Spawns `serve(stop)`, which must return once `stop` resolves.
    pub fn spawn<F>(
        serve: impl FnOnce(Box<dyn Future<Output = ()> + Send + Unpin>) -> F,
    ) -> Running<E>
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let (shutdown, stop) = oneshot::channel::<()>();
        let stop = Box::new(Box::pin(async {
            let _ = stop.await;
        }));
        Running {
            shutdown: Some(shutdown),
            task: Some(tokio::spawn(serve(stop))),
        }
    }

    /// Signals shutdown and waits (bounded) for the server to return Ok.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("running");
        tokio::time::timeout(WAIT, task)
            .await
            .expect("graceful shutdown within the bound")
            .expect("server task")
            .expect("server result");
    }
}

impl<E> Drop for Running<E> {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A connected channel to a server on loopback.
/// A channel to another plane's listener with the cluster's credentials
/// (TLS when it has TLS, its token on every call).
pub async fn cluster_channel(addr: SocketAddr, cluster: &ClusterCredentials) -> WithToken<Channel> {
    let channel = endpoint(&addr.to_string(), cluster)
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    WithToken::new(channel, cluster)
}

/// A plaintext channel to `addr`.
pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}
