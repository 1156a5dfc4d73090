//! The control plane in front of several workers, over real gRPC on
//! loopback: routing, scaling, an unmodified Triton client.

mod replicas;
mod routing;
mod scaling;
mod triton;
