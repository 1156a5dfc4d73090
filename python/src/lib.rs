//! The Python predictor host, the worker's side. Predictors run in child
//! processes of the worker: the same binary re-executed as `hotswap
//! python-worker`, each embedding CPython with `threads_per_process` Python
//! threads (one by default); that side is the `hotswap-python-child` crate,
//! so that only the binary links pyo3. The worker talks to each child over
//! a socket pair on fd 3 with length-prefixed JSON frames ([`protocol`]).

#![deny(unsafe_code)]

mod environment;
mod error;
mod fd;
mod pool;
pub mod protocol;

pub use environment::inherited;
pub use error::{CallError, StartError, Traceback};
use hotswap_common::lock;
pub use pool::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_QUEUED, ModelResolver, ProcessConfig, PythonPool,
    PythonPredictorSpec, THREAD_VARS,
};
