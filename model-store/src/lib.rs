//! The model-store: indexes the model buckets named by an API config (local
//! folder, S3, GCS), validates every version for its predictor type, and
//! publishes the index and its changes over `hotswap.v1.ModelStore/Watch`.

pub mod config;
mod error;
mod grpc;
mod index;
mod layout;
pub mod location;
mod poller;
mod server;
mod service;
pub mod storage;
mod validate;

use std::sync::{Mutex, MutexGuard, PoisonError};

pub use error::Error;
pub use grpc::GrpcModelStore;
pub use poller::{PollSettings, StoreHealth};
pub use server::{SERVICE_NAME, serve, serve_store};
pub use service::{ModelStore, ModelStoreConfig, ModelStoreService, WatchStream};

/// Locks a mutex whose holders never leave its data half-updated, so a
/// panic elsewhere while holding it does not make it unusable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
