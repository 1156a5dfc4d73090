//! Hostile clients for the edge's tests, and a plain HTTP/1.1 call to see
//! exactly what a server answers: sockets that connect and say nothing,
//! and bodies that declare a length and then arrive a byte at a time. Each
//! attack runs in tasks of this process and ends when it is dropped (its
//! sockets close with it).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

/// A connection, plaintext or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How an attack or a call connects: plaintext, or TLS trusting a CA (the
/// server's certificate names `localhost`), offering HTTP/1.1.
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

    /// A new connection to `target`.
    pub async fn connect(&self, target: SocketAddr) -> std::io::Result<Box<dyn Io>> {
        self.connect_from(IpAddr::from([127, 0, 0, 1]), target)
            .await
    }

    /// A new connection to `target` from `source` (a loopback address).
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

/// An attack in progress; dropping it stops it.
pub struct Attack {
    _tasks: JoinSet<()>,
    connected: Arc<AtomicUsize>,
    answers: Arc<Mutex<Vec<String>>>,
}

impl Attack {
    /// How many of its sockets have connected at least once.
    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::SeqCst)
    }

    /// What the server answered the attack's requests so far: the first
    /// line and body of each answer.
    pub fn answers(&self) -> Vec<String> {
        self.answers.lock().expect("answers").clone()
    }
}

/// A TCP connection to `target` from `source` (any loopback address), so a
/// test can play a client at another address.
pub async fn connect_from(source: IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(target).await
}

/// `count` sockets from `source` to `target` that send nothing; each one
/// the server closes is opened again, after a short pause.
pub fn silent_sockets(source: IpAddr, target: SocketAddr, count: usize) -> Attack {
    let connected = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..count {
        let connected = connected.clone();
        tasks.spawn(async move {
            let mut first = true;
            loop {
                if let Ok(mut socket) = connect_from(source, target).await {
                    if std::mem::take(&mut first) {
                        connected.fetch_add(1, Ordering::SeqCst);
                    }
                    // Returns when the server closes (0 bytes) or resets.
                    let _ = socket.read(&mut [0u8; 64]).await;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    Attack {
        _tasks: tasks,
        connected,
        answers: Arc::default(),
    }
}

/// `count` HTTP requests from `source` to `path` on `target` that declare
/// a body of `declared` bytes and send one byte of it every `every`; what
/// the server answers each (if it does) is kept. A connection the server
/// refuses (too many handshakes from one address) is tried again.
pub fn slow_bodies(
    connector: &Connector,
    source: IpAddr,
    target: SocketAddr,
    path: &str,
    declared: usize,
    count: usize,
    every: Duration,
) -> Attack {
    let connected = Arc::new(AtomicUsize::new(0));
    let answers: Arc<Mutex<Vec<String>>> = Arc::default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n\r\n"
    );
    let mut tasks = JoinSet::new();
    for _ in 0..count {
        let (connected, answers, head) = (connected.clone(), answers.clone(), head.clone());
        let connector = connector.clone();
        tasks.spawn(async move {
            let mut socket = loop {
                match connector.connect_from(source, target).await {
                    Ok(socket) => break socket,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            };
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            connected.fetch_add(1, Ordering::SeqCst);
            let mut answer = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                tokio::select! {
                    read = socket.read(&mut buf) => match read {
                        Ok(n) if n > 0 => answer.extend_from_slice(&buf[..n]),
                        _ => break,
                    },
                    () = tokio::time::sleep(every) => {
                        // The server may have answered and stopped reading.
                        let _ = socket.write_all(b"0").await;
                    }
                }
            }
            if !answer.is_empty() {
                answers
                    .lock()
                    .expect("answers")
                    .push(String::from_utf8_lossy(&answer).into_owned());
            }
        });
    }
    Attack {
        _tasks: tasks,
        connected,
        answers,
    }
}

/// An HTTP answer: its status and body.
#[derive(Debug)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

/// Sends `head` (request line and headers, without the blank line) and
/// `body` to `target` over a new connection, and reads the answer to its
/// end (the request asks the server to close).
pub async fn http1(
    connector: &Connector,
    target: SocketAddr,
    head: &str,
    body: &[u8],
) -> std::io::Result<HttpAnswer> {
    let mut socket = connector.connect(target).await?;
    let request = format!(
        "{head}\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(request.as_bytes()).await?;
    // The server may answer before it has read the body (a refusal).
    let _ = socket.write_all(body).await;
    let mut answer = Vec::new();
    // A refusal may be followed by a reset (the body was not read): what
    // arrived before it is the answer.
    let read = socket.read_to_end(&mut answer).await;
    if answer.is_empty() {
        read?;
    }
    Ok(parse_answer(&answer))
}

/// The status and body of an HTTP/1.1 answer (status 0 when it is none).
pub fn parse_answer(answer: &[u8]) -> HttpAnswer {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    HttpAnswer { status, body }
}
