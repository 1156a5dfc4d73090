//! TLS on a listener, done here rather than by tonic: tonic's acceptor
//! offers only `h2` in ALPN, so a client that offers only `http/1.1` (curl
//! `--http1.1`, Python's urllib3 2 under `requests`) had its handshake
//! refused on the very listener that serves Cortex's HTTP. Offering both
//! lets each client pick; the connection is then served in what it
//! picked (or by its preface, when it offered nothing).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use crate::trust::Tls;

mod handshakes;

pub(super) use handshakes::incoming;

/// Why a listener's TLS material is refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file that does not parse as PEM.
    #[error("{what}: not readable as PEM")]
    Pem {
        /// Which file: `tls.crt`, `tls.key` or `ca.crt`.
        what: &'static str,
        /// The parser's error.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// No client verifier can be built from the CA certificate.
    #[error("the CA certificate is not usable for client verification")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    /// The certificate and key do not go together.
    #[error("the certificate and key do not make a server identity")]
    Identity(#[source] rustls::Error),
}

/// A listener's TLS; `mutual` asks every client for a certificate the CA
/// signed, and refuses the handshake without one.
pub fn acceptor(tls: &Tls, mutual: bool) -> Result<TlsAcceptor, TlsError> {
    let pem = |what, source| TlsError::Pem { what, source };
    let certs = CertificateDer::pem_slice_iter(tls.cert_pem())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem("tls.crt", e))?;
    let key = PrivateKeyDer::from_pem_slice(tls.key_pem()).map_err(|e| pem("tls.key", e))?;
    let builder = rustls::ServerConfig::builder();
    let builder = if mutual {
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(tls.ca_pem()) {
            // Unparsable blocks are skipped, as tonic did; none usable
            // fails the verifier below.
            let _ = roots.add(ca.map_err(|e| pem("ca.crt", e))?);
        }
        let verifier = WebPkiClientVerifier::builder(roots.into())
            .build()
            .map_err(TlsError::Verifier)?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(TlsError::Identity)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
