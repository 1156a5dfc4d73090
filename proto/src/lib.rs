//! Generated gRPC types: hotswap's own API (`hotswap.v1`) and the Open
//! Inference Protocol (KServe v2, package `inference`, with Triton's
//! extensions) that workers and the control plane serve.

pub mod hotswap {
    pub mod v1 {
        tonic::include_proto!("hotswap.v1");
    }
}

pub mod inference {
    tonic::include_proto!("inference");
}

/// File descriptors of `hotswap.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("hotswap_descriptor");

/// File descriptors of `inference`, for gRPC server reflection.
pub const INFERENCE_FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("inference_descriptor");

pub mod serving;

pub use hotswap::v1;
