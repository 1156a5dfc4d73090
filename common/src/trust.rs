//! Who may call a hotswap listener, and how the planes prove themselves to
//! each other. Two kinds of listener:
//! - internal (the model-store, the control plane's registration listener,
//!   a worker behind a control plane): only the other planes call it. With
//!   TLS, a peer must show a client certificate signed by the cluster CA
//!   (mutual TLS); with a cluster token, every call carries it. Both may be
//!   on at once.
//! - client-facing (the control plane's front door, a worker on its own):
//!   TLS with the same certificate, but no client certificate asked for;
//!   optional bearer tokens.
//!
//! Health and reflection stay open on both (`server/gate.rs`): probes carry
//! no credentials.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// The metadata key the cluster token travels under.
pub const CLUSTER_TOKEN_HEADER: &str = "hotswap-cluster-token";

/// File names in a TLS directory: those cert-manager and Kubernetes TLS
/// secrets use, so a mounted secret is such a directory as it is. This one
/// is the certificate authority's certificate.
pub const CA_FILE: &str = "ca.crt";
/// The process's certificate in a TLS directory (see [`CA_FILE`]).
pub const CERT_FILE: &str = "tls.crt";
/// The process's private key in a TLS directory (see [`CA_FILE`]).
pub const KEY_FILE: &str = "tls.key";

/// Why credentials could not be read or are refused.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The reading error.
        #[source]
        source: std::io::Error,
    },
    /// A token file that is empty once trimmed.
    #[error("{path} holds no token")]
    EmptyToken {
        /// The file.
        path: PathBuf,
    },
    /// An empty token.
    #[error("a token must not be empty")]
    EmptySecret,
    /// A token with characters a header cannot carry.
    #[error("a token may hold only printable ASCII without spaces (it travels in a header)")]
    SecretCharacters,
}

/// A certificate authority and this process's certificate and key (PEM).
/// The certificate serves both ways: as a server's on its listeners and as
/// a client's when it calls another plane.
pub struct Tls {
    ca: Certificate,
    identity: Identity,
    /// The same, as read: listeners build their TLS from these
    /// (`server/tls.rs`), connections from the two above.
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls { .. }")
    }
}

impl Tls {
    /// The material from PEM bytes: the CA's certificate, this process's
    /// certificate and its key. They are checked when first used.
    pub fn from_pem(ca: impl AsRef<[u8]>, cert: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Tls {
        Tls {
            ca: Certificate::from_pem(&ca),
            identity: Identity::from_pem(&cert, &key),
            ca_pem: ca.as_ref().to_vec(),
            cert_pem: cert.as_ref().to_vec(),
            key_pem: key.as_ref().to_vec(),
        }
    }

    /// Reads `ca.crt`, `tls.crt` and `tls.key` from `dir`. Their contents
    /// are checked when the first listener or connection uses them.
    pub async fn load(dir: &Path) -> Result<Tls, TrustError> {
        let read = |name: &str| {
            let path = dir.join(name);
            async move {
                tokio::fs::read(&path)
                    .await
                    .map_err(|source| TrustError::Read { path, source })
            }
        };
        Ok(Tls::from_pem(
            read(CA_FILE).await?,
            read(CERT_FILE).await?,
            read(KEY_FILE).await?,
        ))
    }

    pub(crate) fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    pub(crate) fn cert_pem(&self) -> &[u8] {
        &self.cert_pem
    }

    pub(crate) fn key_pem(&self) -> &[u8] {
        &self.key_pem
    }

    /// A connection's TLS: the peer's certificate must chain to the CA and
    /// name the host called; this process shows its own.
    pub(crate) fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone())
    }
}

/// A token, compared in constant time (for its length) and never printed.
#[derive(Clone)]
pub struct Secret(Arc<[u8]>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Surrounding whitespace (a file's final newline) is not part of it.
    pub fn new(token: &str) -> Result<Secret, TrustError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TrustError::EmptySecret);
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TrustError::SecretCharacters);
        }
        Ok(Secret(token.as_bytes().into()))
    }

    /// 244 random bits (two UUIDv4s), for the planes of one process
    /// (`hotswap up`).
    pub fn random() -> Secret {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        Secret(token.as_bytes().into())
    }

    /// A token file: its content, trimmed.
    pub async fn load(path: &Path) -> Result<Secret, TrustError> {
        let text = read_text(path).await?;
        Secret::new(&text).map_err(|e| match e {
            TrustError::EmptySecret => TrustError::EmptyToken {
                path: path.to_owned(),
            },
            e => e,
        })
    }

    /// Whether `candidate` is this token (compared in constant time).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        bool::from(self.0.as_ref().ct_eq(candidate))
    }

    pub(crate) fn as_str(&self) -> &str {
        // Made from a &str.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The tokens a client-facing listener accepts (`authorization: Bearer
/// <token>`).
#[derive(Debug, Clone)]
pub struct BearerTokens(Arc<[Secret]>);

impl BearerTokens {
    /// One token per line; blank lines and lines starting with `#` are
    /// skipped. A file with no token is an error: it would lock every
    /// client out.
    pub async fn load(path: &Path) -> Result<BearerTokens, TrustError> {
        let text = read_text(path).await?;
        BearerTokens::parse(&text)?.ok_or_else(|| TrustError::EmptyToken {
            path: path.to_owned(),
        })
    }

    /// None when the text holds no token; a line that is not a valid
    /// token is an error.
    pub fn parse(text: &str) -> Result<Option<BearerTokens>, TrustError> {
        let tokens = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(Secret::new)
            .collect::<Result<Vec<Secret>, TrustError>>()?;
        Ok((!tokens.is_empty()).then(|| BearerTokens(tokens.into())))
    }

    /// Compares with every token, so the time taken does not tell which
    /// one (or how many) matched.
    pub fn accepts(&self, candidate: &[u8]) -> bool {
        self.0
            .iter()
            .fold(false, |found, t| t.matches(candidate) | found)
    }
}

async fn read_text(path: &Path) -> Result<String, TrustError> {
    tokio::fs::read_to_string(path)
        .await
        .map_err(|source| TrustError::Read {
            path: path.to_owned(),
            source,
        })
}

/// What a process holds to be trusted by the other planes: the cluster's
/// TLS material, its token, either or both. Without either, internal
/// listeners are open to anyone who reaches them (a warning says so).
#[derive(Debug, Clone, Default)]
pub struct ClusterCredentials {
    /// The cluster's TLS material: mutual TLS between the planes.
    pub tls: Option<Arc<Tls>>,
    /// The cluster token every call between the planes carries.
    pub token: Option<Secret>,
}

impl ClusterCredentials {
    /// Whether there is neither TLS nor a token.
    pub fn is_open(&self) -> bool {
        self.tls.is_none() && self.token.is_none()
    }

    /// For a listener only the other planes call.
    pub fn internal(&self) -> Guard {
        Guard {
            tls: self.tls.as_ref().map(|t| ServerTls {
                tls: t.clone(),
                mutual: true,
            }),
            gate: match &self.token {
                Some(token) => Gate::Cluster(token.clone()),
                None => Gate::Open,
            },
            internal: true,
        }
    }

    /// What a client-facing listener of this process serves by default:
    /// TLS with the cluster certificate, when there is one.
    pub fn client_facing(&self, tokens: Option<BearerTokens>) -> ClientTrust {
        ClientTrust {
            tls: self.tls.clone(),
            tokens,
        }
    }
}

/// What a client-facing listener serves: TLS (no client certificate asked
/// for), bearer tokens, either or neither.
#[derive(Debug, Clone, Default)]
pub struct ClientTrust {
    /// TLS on the listener, with this certificate.
    pub tls: Option<Arc<Tls>>,
    /// The bearer tokens a call may carry.
    pub tokens: Option<BearerTokens>,
}

impl ClientTrust {
    /// The listener's TLS and the gate its calls pass.
    pub fn guard(&self) -> Guard {
        Guard {
            tls: self.tls.as_ref().map(|t| ServerTls {
                tls: t.clone(),
                mutual: false,
            }),
            gate: match &self.tokens {
                Some(tokens) => Gate::Bearer(tokens.clone()),
                None => Gate::Open,
            },
            internal: false,
        }
    }
}

/// How a listener is guarded: its TLS and who passes its gate.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    pub(crate) tls: Option<ServerTls>,
    pub(crate) gate: Gate,
    /// Whether only the other planes call it (for the warning an open one
    /// gets).
    pub(crate) internal: bool,
}

impl Guard {
    /// Anyone who reaches the listener may call it.
    pub fn open() -> Guard {
        Guard::default()
    }

    pub(crate) fn is_open(&self) -> bool {
        self.tls.is_none() && matches!(self.gate, Gate::Open)
    }
}

/// A listener's TLS: the process's certificate; with `mutual`, every
/// client must show a certificate the CA signed.
#[derive(Debug, Clone)]
pub(crate) struct ServerTls {
    pub(crate) tls: Arc<Tls>,
    pub(crate) mutual: bool,
}

/// What a call must carry to pass a listener's gate.
#[derive(Debug, Clone, Default)]
pub(crate) enum Gate {
    #[default]
    Open,
    Cluster(Secret),
    Bearer(BearerTokens),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_themselves() {
        let secret = Secret::new("s3cret\n").unwrap();
        assert!(secret.matches(b"s3cret"));
        assert!(!secret.matches(b"s3cre"));
        assert!(!secret.matches(b"s3cret "));
        assert!(!secret.matches(b""));
        assert!(Secret::new(" \n").is_err());
        assert!(!Secret::random().matches(Secret::random().as_str().as_bytes()));
        assert_eq!(format!("{secret:?}"), "Secret(..)");
    }

    #[test]
    fn token_files_skip_comments_and_blank_lines() {
        let tokens = BearerTokens::parse("# team a\nalpha\n\n  beta  \n#gamma\n")
            .unwrap()
            .unwrap();
        assert!(tokens.accepts(b"alpha"));
        assert!(tokens.accepts(b"beta"));
        assert!(!tokens.accepts(b"gamma"));
        assert!(!tokens.accepts(b"# team a"));
        assert!(BearerTokens::parse("# nothing\n\n").unwrap().is_none());
        assert!(BearerTokens::parse("two words\n").is_err());
        assert!(Secret::new("caf\u{e9}").is_err());
    }
}
