//! hotswap's contracts: the generated gRPC types of its own API
//! (`hotswap.v1`) and of the Open Inference Protocol (KServe v2, package
//! `inference`, with Triton's extensions); the transport-free traits of the
//! front-door services; how service errors become gRPC statuses; the
//! constants both ends of a stream must agree on. How the services are
//! served (the tonic adapters, the HTTP bindings) is `hotswap-common`'s
//! `transport` module.

#![forbid(unsafe_code)]

pub mod error;
pub mod guarded;
pub mod limit;
pub mod routing;
pub mod service;

use std::time::Duration;

/// hotswap's own API, package `hotswap.v1`.
pub mod hotswap {
    /// Generated from `proto/hotswap/v1/*.proto`.
    #[allow(
        missing_docs,
        reason = "generated: documented where the .proto files comment"
    )]
    pub mod v1 {
        tonic::include_proto!("hotswap.v1");
    }
}

/// The Open Inference Protocol (KServe v2) with Triton's extensions,
/// generated from `proto/inference/*.proto`.
#[allow(
    missing_docs,
    reason = "generated: documented where the .proto files comment"
)]
pub mod inference {
    tonic::include_proto!("inference");
}

pub use hotswap::v1;

/// File descriptors of `hotswap.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("hotswap_descriptor");

/// File descriptors of `inference`, for gRPC server reflection.
pub const INFERENCE_FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("inference_descriptor");

/// A worker reports on its registration stream at least this often, and the
/// control plane replies as often; each side treats a few intervals of
/// silence as the other being gone.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// The default limit on one request's payload, on workers and the front
/// door alike (the message may be a little larger: names, shapes). Each
/// plane decodes messages up to twice this, then checks each input against
/// it and names the one over it ([`limit::RequestLimit`]).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 << 20;
