//! The one reconnect loop of every long-lived stream between the planes (a
//! Watch subscription to the model-store, a worker's registration with a
//! control plane): run a session, and when it ends, wait a delay that grows
//! with each session that got nowhere and starts over after one that made
//! progress, until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backoff;

/// Set by a session once it got somewhere (a stream opened, a message
/// arrived): the next reconnect then starts from the shortest delay.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicBool>);

impl Progress {
    /// Records that the session got somewhere.
    pub fn made(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// One connection's worth of work, run again after each interruption.
pub trait Session: Send {
    /// Why a session ended.
    type Error: Send;

    /// Runs one session until it breaks; marks `progress` once it gets
    /// somewhere.
    fn run(&mut self, progress: &Progress) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Called after a session ended with an error, before waiting
    /// `retry_in` (for the log line that says so).
    fn interrupted(&self, error: &Self::Error, retry_in: Duration);
}

/// Delays between sessions: from `min`, doubling (with jitter) up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Delays {
    /// The first delay, and the delay after a session that made progress.
    pub min: Duration,
    /// The longest delay.
    pub max: Duration,
}

/// Runs `session` again and again until `shutdown`, waiting between runs.
pub async fn run(mut session: impl Session, delays: Delays, shutdown: CancellationToken) {
    let mut backoff = backoff::delays(delays.min, delays.max);
    let progress = Progress::default();
    loop {
        let result = tokio::select! {
            () = shutdown.cancelled() => return,
            r = session.run(&progress) => r,
        };
        if progress.take() {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        if let Err(e) = result {
            session.interrupted(&e, delay);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests;
