//! Server plumbing every hotswap service shares (it lives beside the
//! protocols they all depend on).

use std::future::Future;
use std::time::Duration;

use tokio::sync::oneshot;

/// How long a stopping server waits for clients to finish and hang up.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs `server` to its end, but at most [`SHUTDOWN_GRACE`] after
/// `stopping` fires: graceful shutdown waits for every connection to close,
/// and a client that never closes must not keep the process alive.
pub async fn with_grace<E>(
    server: impl Future<Output = Result<(), E>>,
    stopping: oneshot::Receiver<()>,
) -> Result<(), E> {
    let grace = async {
        if stopping.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        () = grace => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "clients still connected after the grace period; closing anyway");
            Ok(())
        }
    }
}
