//! Hostile clients for the edge's tests: sockets that connect and say
//! nothing, and bodies that declare a length and then arrive a byte at a
//! time. Each
//! attack runs in tasks of this process and ends when it is dropped (its
//! sockets close with it).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::http::{Answer, Connector, connect_from};

/// An attack in progress; dropping it stops it.
pub struct Attack {
    _tasks: JoinSet<()>,
    connected: Arc<AtomicUsize>,
    answers: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Attack {
    /// How many of its sockets have connected at least once.
    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::SeqCst)
    }

    /// What the server answered the attack's requests so far (an answer
    /// that does not parse as HTTP is status 0, its bytes the body).
    pub fn answers(&self) -> Vec<Answer> {
        self.answers
            .lock()
            .expect("answers")
            .iter()
            .map(|raw| {
                crate::http::parse(raw).unwrap_or_else(|_| Answer {
                    status: 0,
                    headers: Vec::new(),
                    body: raw.clone(),
                })
            })
            .collect()
    }
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
    let answers: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
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
                answers.lock().expect("answers").push(answer);
            }
        });
    }
    Attack {
        _tasks: tasks,
        connected,
        answers,
    }
}
