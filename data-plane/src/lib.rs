//! The data-plane worker: subscribes to the model-store's Watch stream,
//! downloads versions into a disk cache, loads them (ONNX through ONNX
//! Runtime, TensorFlow SavedModels through TensorFlow's C API) and swaps
//! them in atomically; runs predictor classes in Python processes (the
//! `hotswap-python` crate); serves `hotswap.v1.Predictor` and the Open
//! Inference Protocol; registers with the control plane.

#![forbid(unsafe_code)]

pub mod backend;
mod body;
mod cache;
mod error;
pub mod inference;
pub mod models;
mod oip;
mod predict;
pub mod python_apis;
mod registration;
mod server;
pub mod signature;
pub mod tensor;
#[cfg(test)]
mod testing;
pub mod worker;

pub use backend::RuntimeConfig;
pub use cache::{DownloadError, DownloadLimits};
pub use error::Error;
pub use hotswap_proto::DEFAULT_MAX_REQUEST_BYTES;
pub use hotswap_python::ProcessConfig;
pub use models::TableStats;
pub use predict::WorkerService;
pub use server::{ServeConfig, serve, serve_worker};
pub use worker::{Worker, WorkerConfig};
