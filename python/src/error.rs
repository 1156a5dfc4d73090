//! How a predictor's processes fail, as the worker sees it.

use std::path::PathBuf;
use std::time::Duration;

/// A Python exception as Python prints it (the full traceback).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Traceback(pub String);

impl Traceback {
    /// The exception's own line ("ValueError: ..."), cut to a few hundred
    /// bytes: what a caller is told, the traceback going to the log.
    pub fn summary(&self) -> String {
        let last = self
            .0
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        hotswap_proto::error::shown(last).into_owned()
    }
}

/// Why a predictor's processes did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The file did not import, the class is missing, or its constructor
    /// raised.
    #[error(transparent)]
    Predictor(#[from] Traceback),

    /// The socket pair to a new child could not be made.
    #[error("socket pair")]
    SocketPair(#[source] std::io::Error),

    /// The binary could not be started as `python-worker`.
    #[error("starting {} python-worker", .exe.display())]
    Spawn {
        /// The binary.
        exe: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// The connection to a starting child failed.
    #[error("python process {pid}")]
    Socket {
        /// The child's process id.
        pid: u32,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// The child exited before it said it was ready.
    #[error("python process {pid} exited while starting")]
    Exited {
        /// The child's process id.
        pid: u32,
    },

    /// The child did not say it was ready in time.
    #[error("python process {pid} did not start within {timeout:?}")]
    Timeout {
        /// The child's process id.
        pid: u32,
        /// How long it had.
        timeout: Duration,
    },
}

/// Why one call to the predictor failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// `predict` raised a LookupError (from `get_model`: no such model or
    /// version).
    #[error(transparent)]
    Lookup(Traceback),

    /// `predict` raised.
    #[error("inference failed")]
    Raised(#[source] Traceback),

    /// The process died while it ran the call (which may be why).
    #[error("{file}: the Python process {pid} exited during the request")]
    ProcessDied {
        /// The predictor's file.
        file: String,
        /// The process that ran the call.
        pid: u32,
    },

    /// No process is running (they are being restarted).
    #[error("{file}: no Python process is running; restarting")]
    NoProcess {
        /// The predictor's file.
        file: String,
    },

    /// The call ran past the time limit; its process was replaced.
    #[error("{file}: predict did not answer within {limit:?}; its process was replaced")]
    TimedOut {
        /// The predictor's file.
        file: String,
        /// The call time limit.
        limit: Duration,
    },

    /// Too many calls wait for a free Python thread already.
    #[error("{file}: {queued} calls are waiting for the predictor already; try again later")]
    Busy {
        /// The predictor's file.
        file: String,
        /// How many may wait ([`ProcessConfig::max_queued`]).
        ///
        /// [`ProcessConfig::max_queued`]: crate::ProcessConfig::max_queued
        queued: usize,
    },
}
