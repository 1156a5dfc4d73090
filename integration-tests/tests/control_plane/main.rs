//! The control plane in front of several workers, over real gRPC on
//! loopback: routing, scaling, version labels and policies, request
//! limits, requests forwarded as bytes, an unmodified Triton client.

mod forwarding;
mod labels;
mod limits;
mod policy;
mod replicas;
mod routing;
mod scaling;
mod triton;
