//! The model-store: indexes the model buckets named by an API config (local
//! folder, S3, GCS, through `hotswap-storage`), validates every version for
//! its predictor type, and publishes the index and its changes over
//! `hotswap.v1.ModelStore/Watch`.

#![forbid(unsafe_code)]

pub mod config;
mod error;
mod grpc;
mod index;
mod layout;
mod poller;
mod server;
mod service;
mod validate;

use hotswap_common::lock;

pub use error::Error;
pub use grpc::GrpcModelStore;
pub use poller::{PollSettings, StoreHealth};
pub use server::{SERVICE_NAME, serve, serve_store};
pub use service::{ModelStore, ModelStoreConfig, ModelStoreService, WatchStream};
