//! Generated gRPC types: hotswap's own API (`hotswap.v1`).

pub mod hotswap {
    pub mod v1 {
        tonic::include_proto!("hotswap.v1");
    }
}

/// Every file descriptor compiled here, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("descriptor");

pub use hotswap::v1;
