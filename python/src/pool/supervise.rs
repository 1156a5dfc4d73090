//! Keeping a pool's processes running: each slot's process is watched, and
//! replaced (with backoff) when it exits or its connection breaks. How a
//! process is started is a [`Launch`]: child processes in the worker,
//! stand-ins in the pool's tests.

use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use hotswap_common::backoff;
use hotswap_proto::error::Report;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::PythonPredictorSpec;
use super::process::Process;
use crate::error::StartError;

const RESTART_START: Duration = Duration::from_millis(100);
const RESTART_MAX: Duration = Duration::from_secs(5);

/// A started process: its connection, and the handle that sees it end.
pub(super) type Launched = (Arc<Process>, Box<dyn Exit>);

/// Starts one of a predictor's processes, ready for calls.
#[async_trait::async_trait]
pub(super) trait Launch: Send + Sync + 'static {
    async fn launch(&self) -> Result<Launched, StartError>;
}

/// The operating system's side of a started process.
#[async_trait::async_trait]
pub(super) trait Exit: Send {
    /// Waits for the process to end.
    async fn wait(&mut self) -> std::io::Result<ExitStatus>;
    /// Ends the process.
    async fn kill(&mut self) -> std::io::Result<()>;
}

#[async_trait::async_trait]
impl Exit for tokio::process::Child {
    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        tokio::process::Child::wait(self).await
    }

    async fn kill(&mut self) -> std::io::Result<()> {
        tokio::process::Child::kill(self).await
    }
}

/// Waits for the process in `slot` to exit (or its connection to end: then
/// it is killed) and starts a new one, until shutdown.
pub(super) async fn supervise(
    spec: Arc<PythonPredictorSpec>,
    launcher: Arc<dyn Launch>,
    slot: Arc<ArcSwapOption<Process>>,
    mut child: Box<dyn Exit>,
    freed: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut backoff = backoff::delays(RESTART_START, RESTART_MAX);
    loop {
        let gone = slot.load_full().map(|p| p.gone.clone()).unwrap_or_default();
        let status = tokio::select! {
            () = shutdown.cancelled() => return,
            status = child.wait() => status,
            () = gone.cancelled() => {
                // A broken connection with a live child: end it.
                let _ = child.kill().await;
                child.wait().await
            }
        };
        let old = slot.swap(None);
        if let Some(old) = &old {
            old.fail();
        }
        tracing::warn!(file = %spec.file, pid = old.as_ref().map_or(0, |p| p.pid), status = ?status, "Python process exited; restarting it");
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff.next_delay()) => {}
            }
            match launcher.launch().await {
                Ok((process, new_child)) => {
                    tracing::info!(file = %spec.file, pid = process.pid, "Python process restarted");
                    slot.store(Some(process));
                    // Calls waiting for a thread may take this process's.
                    freed.notify_waiters();
                    child = new_child;
                    backoff.reset();
                    break;
                }
                Err(e) => {
                    tracing::warn!(file = %spec.file, error = %Report(&e), "Python process failed to restart");
                }
            }
        }
    }
}
