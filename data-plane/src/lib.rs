//! The data-plane worker: subscribes to the model-store's Watch stream,
//! downloads versions into a disk cache, loads them (ONNX through ONNX
//! Runtime) and swaps them in atomically; serves `hotswap.v1.Predictor` and
//! the Open Inference Protocol.

pub mod backend;
mod cache;
pub mod catalog;
mod error;
pub mod grpc;
pub mod inference;
pub mod predict;
pub mod python;
pub mod registration;
mod server;
pub mod signature;
mod stats;
pub mod subscription;
mod table;
pub mod telemetry;
pub mod tensor;
pub mod worker;

use std::sync::{Mutex, MutexGuard, PoisonError};

pub use error::{Error, NO_RETRY};
pub use predict::WorkerService;
pub use server::{
    DEFAULT_MAX_REQUEST_BYTES, INFERENCE_SERVICE, PREDICTOR_SERVICE, ServeConfig, serve,
    serve_worker,
};
pub use table::TableStats;
pub use worker::{Worker, WorkerConfig};

/// Locks a mutex whose holders never leave its data half-updated, so a
/// panic elsewhere while holding it does not make it unusable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
