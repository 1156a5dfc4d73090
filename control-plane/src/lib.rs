//! The control plane: the front door. It watches the model-store (the
//! catalog of models and versions), keeps the registry of workers (which
//! register over a long-lived stream), answers NOT_FOUND and `latest`
//! itself, and routes Predict and ModelInfer to a worker that serves the
//! version, least busy first. It links no inference runtime and no cloud
//! SDK: workers are reached through the [`worker::WorkerApi`] trait.

#![forbid(unsafe_code)]

mod error;
mod forwarding;
mod front;
mod grpc;
mod own;
mod register;
pub mod registry;
pub mod router;
mod server;
pub mod worker;

#[cfg(test)]
mod testing;

pub use error::Error;
pub use front::FrontDoor;
pub use hotswap_proto::limit::RequestLimit;
pub use server::{
    ControlPlane, ControlPlaneConfig, Listeners, SERVICE_NAME, serve, serve_control_plane,
};
