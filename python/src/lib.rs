//! The Python predictor host. Predictors run in child processes of the
//! worker: the same binary
//! re-executed as `hotswap python-worker`, each embedding CPython (pyo3)
//! with `threads_per_process` Python threads (one by default). The worker talks to each child over a
//! socket pair on fd 3 with length-prefixed JSON frames; the child's stdout
//! is redirected to stderr at the file-descriptor level, so whatever user
//! code prints never reaches the protocol.

#![deny(unsafe_code)]

mod body;
mod child;
mod client;
mod contract;
mod convert;
mod environment;
mod error;
mod fd;
mod link;
mod pool;
pub mod protocol;

pub use child::child_main;
pub use environment::inherited;
pub use error::{CallError, StartError, Traceback};
use hotswap_common::lock;
pub use pool::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_QUEUED, ModelResolver, ProcessConfig, PythonPool,
    PythonPredictorSpec, THREAD_VARS,
};
