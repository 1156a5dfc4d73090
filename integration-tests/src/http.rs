//! A bare HTTP/1.1 client for loopback tests and benchmarks: one request
//! per connection (plaintext or TLS), the body written whole, the answer
//! read to its end. It holds nothing but the bytes it sends and receives (a
//! benchmark of a server's memory wants a client that costs little and does
//! nothing clever), and it reads the answer even when the server answers
//! before it has taken the whole body (a refused upload).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

/// A connection, plaintext or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How a client connects: plaintext, or TLS trusting a CA (the server's
/// certificate names `localhost`), offering HTTP/1.1.
#[derive(Clone)]
pub enum Connector {
    /// Plain TCP.
    Plain,
    /// TLS over TCP.
    Tls(TlsConnector),
}

impl Connector {
    /// TLS trusting the CA certificate `ca_pem`.
    pub fn tls(ca_pem: &str) -> Connector {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Connector::Tls(TlsConnector::from(Arc::new(config)))
    }

    /// A new connection to `target` from 127.0.0.1.
    pub async fn connect(&self, target: SocketAddr) -> std::io::Result<Box<dyn Io>> {
        self.connect_from(IpAddr::from([127, 0, 0, 1]), target)
            .await
    }

    /// A new connection to `target` from `source` (any loopback address),
    /// so a test can play a client at another address.
    pub async fn connect_from(
        &self,
        source: IpAddr,
        target: SocketAddr,
    ) -> std::io::Result<Box<dyn Io>> {
        let tcp = connect_from(source, target).await?;
        tcp.set_nodelay(true)?;
        match self {
            Connector::Plain => Ok(Box::new(tcp)),
            Connector::Tls(tls) => {
                let name = ServerName::try_from("localhost").expect("a server name");
                Ok(Box::new(tls.connect(name, tcp).await?))
            }
        }
    }
}

/// A TCP connection to `target` from `source`.
pub async fn connect_from(source: IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(target).await
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `POST path` to `addr` with `headers` and `body`, over plain TCP.
pub async fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: impl AsRef<[u8]> + Send + Sync + 'static,
) -> std::io::Result<Answer> {
    request(&Connector::Plain, addr, "POST", path, headers, body).await
}

/// `method path` to `addr` through `connector`, with `headers` and `body`.
pub async fn request(
    connector: &Connector,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl AsRef<[u8]> + Send + Sync + 'static,
) -> std::io::Result<Answer> {
    let stream = connector.connect(addr).await?;
    let (mut read, mut write) = tokio::io::split(stream);
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.as_ref().len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // Written beside the read: a server may answer (and stop reading)
    // before the body is all sent. The write half is kept open until the
    // answer is in: dropped, it would half-close the connection, and a
    // server may take that for the client gone.
    let sending = tokio::spawn(async move {
        let sent = async {
            write.write_all(head.as_bytes()).await?;
            write.write_all(body.as_ref()).await?;
            write.flush().await
        }
        .await;
        (write, sent)
    });
    let mut answer = Vec::new();
    // A refusal may be followed by a reset (the body was not read): what
    // arrived before it is the answer.
    let read = read.read_to_end(&mut answer).await;
    if answer.is_empty() {
        read?;
    }
    drop(sending.await);
    parse(&answer)
}

/// An answer as it came over the wire.
pub fn parse(answer: &[u8]) -> std::io::Result<Answer> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&answer[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = answer[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..line]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
