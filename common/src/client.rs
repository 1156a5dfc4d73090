//! Calling another hotswap service: where its address becomes an endpoint
//! (with the cluster's TLS), how each call carries the cluster token, and
//! how a status it answered reads as an error cause.

use std::fmt;
use std::task::{Context, Poll};

use tonic::codegen::http::{self, HeaderValue};
use tonic::transport::Endpoint;
use tower::Service;

use crate::trust::{CLUSTER_TOKEN_HEADER, ClusterCredentials};

/// An address that is neither `host:port` nor a URI tonic accepts.
#[derive(Debug, thiserror::Error)]
#[error("address {address}")]
pub struct AddressError {
    /// The address as given.
    pub address: String,
    #[source]
    source: tonic::transport::Error,
}

/// The endpoint of another plane given as `host:port` or as a URI: HTTP/2
/// in plaintext, or over TLS (`https`, whatever scheme was written) when
/// the cluster has TLS. Each caller sets its own timeouts and keepalives.
pub fn endpoint(address: &str, cluster: &ClusterCredentials) -> Result<Endpoint, AddressError> {
    endpoint_named(address, cluster, None)
}

/// As [`endpoint`], with TLS expecting the peer's certificate to name
/// `server_name` rather than the host called (workers whose host names are
/// not known in advance, such as scaled containers, share one name).
pub fn endpoint_named(
    address: &str,
    cluster: &ClusterCredentials,
    server_name: Option<&str>,
) -> Result<Endpoint, AddressError> {
    let error = |source| AddressError {
        address: address.to_owned(),
        source,
    };
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    let scheme = if cluster.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{rest}")).map_err(error)?;
    match &cluster.tls {
        Some(tls) => {
            let config = match server_name {
                Some(name) => tls.client().domain_name(name),
                None => tls.client(),
            };
            endpoint.tls_config(config).map_err(error)
        }
        None => Ok(endpoint),
    }
}

/// A channel whose calls carry the cluster token, when there is one.
#[derive(Clone)]
pub struct WithToken<S> {
    inner: S,
    token: Option<HeaderValue>,
}

impl<S> WithToken<S> {
    /// `inner`, with the cluster's token (if it has one) on every call.
    pub fn new(inner: S, cluster: &ClusterCredentials) -> WithToken<S> {
        let token = cluster.token.as_ref().and_then(|t| {
            let mut value = HeaderValue::from_str(t.as_str()).ok()?;
            // Kept out of logs and HPACK's dynamic table.
            value.set_sensitive(true);
            Some(value)
        });
        WithToken { inner, token }
    }
}

impl<S, B> Service<http::Request<B>> for WithToken<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> S::Future {
        if let Some(token) = &self.token {
            request
                .headers_mut()
                .insert(CLUSTER_TOKEN_HEADER, token.clone());
        }
        self.inner.call(request)
    }
}

/// A status a peer answered with (or the local transport made), as an
/// error cause: its code and message, then whatever transport error it
/// carries. tonic's own Display adds details and metadata, which logs do
/// not need.
#[derive(Debug)]
pub struct PeerStatus(pub tonic::Status);

impl fmt::Display for PeerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.0.message();
        if message.is_empty() {
            write!(f, "{:?}", self.0.code())
        } else {
            write!(f, "{:?}: {message}", self.0.code())
        }
    }
}

impl std::error::Error for PeerStatus {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_http_uris() {
        let plain = ClusterCredentials::default();
        assert_eq!(
            endpoint("127.0.0.1:7000", &plain)
                .unwrap()
                .uri()
                .to_string(),
            "http://127.0.0.1:7000/"
        );
        assert_eq!(
            endpoint("http://cp.example:443", &plain)
                .unwrap()
                .uri()
                .to_string(),
            "http://cp.example:443/"
        );
        assert!(endpoint("not an address", &plain).is_err());
    }
}
