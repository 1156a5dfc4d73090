//! The child side of Python predictors: `hotswap python-worker`, the
//! `hotswap` binary re-executed by a worker's pool (`hotswap-python`). It
//! embeds CPython (pyo3), builds the user's predictor and runs its calls on
//! `threads_per_process` Python threads, speaking the pool's protocol
//! ([`hotswap_python::protocol`]) on fd 3; its stdout is redirected to
//! stderr at the file-descriptor level, so whatever user code prints never
//! reaches the protocol.

#![deny(unsafe_code)]

mod body;
mod child;
mod client;
mod contract;
mod convert;
mod fd;
mod link;

pub use child::child_main;
use hotswap_common::lock;
