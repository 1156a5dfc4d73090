//! Calling another hotswap service: where its address becomes an endpoint,
//! and how a status it answered reads as an error cause.

use std::fmt;

use tonic::transport::Endpoint;

/// An address that is neither `host:port` nor a URI tonic accepts.
#[derive(Debug, thiserror::Error)]
#[error("address {address}")]
pub struct AddressError {
    pub address: String,
    #[source]
    source: tonic::transport::Error,
}

/// The endpoint of a peer given as `host:port` (plaintext HTTP/2) or as a
/// URI. Each caller sets its own timeouts and keepalives.
pub fn endpoint(address: &str) -> Result<Endpoint, AddressError> {
    let uri = if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    Endpoint::from_shared(uri).map_err(|source| AddressError {
        address: address.to_owned(),
        source,
    })
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
        assert_eq!(
            endpoint("127.0.0.1:7000").unwrap().uri().to_string(),
            "http://127.0.0.1:7000/"
        );
        assert_eq!(
            endpoint("https://cp.example:443")
                .unwrap()
                .uri()
                .to_string(),
            "https://cp.example:443/"
        );
        assert!(endpoint("not an address").is_err());
    }
}
