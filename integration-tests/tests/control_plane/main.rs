//! The control plane in front of several workers, over real gRPC on
//! loopback: routing, scaling, version labels and policies, request
//! limits, an unmodified Triton client.

mod labels;
mod limits;
mod policy;
mod replicas;
mod routing;
mod scaling;
mod triton;
