//! The Kubernetes manifests (deploy/kubernetes), offline: each kustomization
//! is rendered with `kubectl kustomize`, checked against the Kubernetes
//! 1.37 schemas with `kubernetes-validate --strict`, and then read for what
//! docs/kubernetes.md promises: probes on the ports the services listen on,
//! non-root read-only containers with resources, two control planes behind
//! a disruption budget, workers advertising their pod IP to every control
//! plane, and flags the binary accepts.

mod common;
mod kustomizations;
mod render;
