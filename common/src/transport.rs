//! How the transport-free front-door services (`hotswap_proto::service`) are
//! served: over gRPC by tonic adapters ([`grpc`]), and over HTTP by the Open
//! Inference Protocol's REST binding and Cortex's `POST /{api}` ([`http`]).
//! [`crate::server::GrpcServer`] serves both on one port.

pub mod grpc;
pub mod http;
