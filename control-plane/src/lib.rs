//! The control plane: the front door. It watches the model-store (the
//! catalog of models and versions), keeps the registry of workers (which
//! register over a long-lived stream), answers NOT_FOUND and `latest`
//! itself, and routes Predict and ModelInfer to a worker that holds the
//! version, least busy first.

mod channel;
mod context;
mod error;
mod front;
mod grpc;
mod register;
pub mod registry;
mod router;
mod server;

use std::sync::{Mutex, MutexGuard, PoisonError};

pub use error::Error;
pub use front::FrontDoor;
pub use server::{ControlPlane, ControlPlaneConfig, SERVICE_NAME, serve, serve_control_plane};

/// Locks a mutex whose holders never leave its data half-updated, so a
/// panic elsewhere while holding it does not make it unusable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
