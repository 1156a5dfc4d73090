//! What the three hotswap services share beyond the contracts: the catalog
//! built from the model-store's Watch stream and the subscription that
//! keeps it current, the server builder every service is served with and
//! the transports it serves the front-door services over (gRPC adapters,
//! the HTTP bindings), and the call context (trace, deadline) that travels
//! from one service to the next.

#![forbid(unsafe_code)]

pub mod backoff;
pub mod blocking;
pub mod catalog;
pub mod client;
pub mod context;
pub mod metrics;
pub mod reconnect;
pub mod server;
pub mod subscription;
pub mod transport;
pub mod trust;

use std::sync::{Mutex, MutexGuard, PoisonError};

pub use server::{GrpcServer, ServerError};

/// Locks a mutex whose holders never leave its data half-updated, so a
/// panic elsewhere while holding it does not make it unusable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// "a, b, c", or "(none)": how messages list what exists.
pub fn list<S: AsRef<str>>(names: &[S]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
