//! TLS handshakes on a listener, each in its own task: a connection that
//! stalls its handshake holds nothing another connection needs. The client
//! speaks first in TLS, so one that sends nothing soon after connecting is
//! closed early; and one source address cannot hold more than a few dozen
//! handshakes at once, so whoever floods the listener with silent sockets
//! costs the server a bounded number of tasks and descriptors, and every
//! other client's handshake starts at once.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// A connection that has sent no byte of its handshake by then is closed:
/// a real client sends its ClientHello as soon as TCP connects.
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(3);

/// The whole handshake, at most (a slow link or a large client certificate
/// chain is still well within it).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress from one source address, at most; a connection
/// beyond it is closed at once. Generous for many clients behind one NAT
/// starting together, small beside the descriptor limit.
const HANDSHAKES_PER_SOURCE: usize = 64;

/// Finished handshakes waiting for the server to take them; the server
/// takes each at once, so this is only slack.
const FINISHED_QUEUE: usize = 256;

/// After an accept error that is not about one connection (out of file
/// descriptors, out of memory), the next accept waits this long rather than
/// spin on the same error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The connections of `incoming` whose handshakes succeed, in the order
/// they finish. A failed, silent or slow handshake drops its connection
/// only. Accepting stops when the returned stream is dropped (the server
/// stopped taking connections).
pub(in crate::server) fn incoming<S>(
    incoming: S,
    acceptor: TlsAcceptor,
) -> impl Stream<Item = io::Result<TlsStream<TcpStream>>>
where
    S: Stream<Item = io::Result<TcpStream>> + Send + 'static,
{
    let (finished, taken) = mpsc::channel(FINISHED_QUEUE);
    tokio::spawn(accept(incoming, acceptor, finished));
    ReceiverStream::new(taken).map(Ok)
}

/// Takes connections off `incoming` and starts a handshake task for each,
/// until the server stops taking finished ones.
async fn accept<S>(incoming: S, acceptor: TlsAcceptor, finished: mpsc::Sender<TlsStream<TcpStream>>)
where
    S: Stream<Item = io::Result<TcpStream>> + Send + 'static,
{
    let sources = Sources::default();
    let mut incoming = std::pin::pin!(incoming);
    loop {
        let accepted = tokio::select! {
            accepted = incoming.next() => accepted,
            () = finished.closed() => return,
        };
        let tcp = match accepted {
            None => return,
            Some(Ok(tcp)) => tcp,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "accept failed");
                if !about_one_connection(&e) {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        let Some(slot) = tcp.peer_addr().ok().and_then(|a| sources.enter(a.ip())) else {
            tracing::debug!(peer = ?tcp.peer_addr().ok(), "too many handshakes from one address; connection closed");
            continue;
        };
        let (acceptor, finished) = (acceptor.clone(), finished.clone());
        tokio::spawn(async move {
            let tls = handshake(&acceptor, tcp).await;
            drop(slot);
            if let Some(tls) = tls {
                // Fails only when the server stopped; the connection closes.
                let _ = finished.send(tls).await;
            }
        });
    }
}

/// The handshake on `tcp`, or None (logged) when it fails, or the client
/// is silent or slow.
async fn handshake(acceptor: &TlsAcceptor, tcp: TcpStream) -> Option<TlsStream<TcpStream>> {
    let first = tokio::time::timeout(FIRST_BYTES_TIMEOUT, tcp.peek(&mut [0u8; 1])).await;
    match first {
        Ok(Ok(n)) if n > 0 => {}
        Ok(Ok(_)) => return None,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "connection failed before its TLS handshake");
            return None;
        }
        Err(_) => {
            tracing::debug!(
                timeout = ?FIRST_BYTES_TIMEOUT,
                "no TLS handshake began; connection closed"
            );
            return None;
        }
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(timeout = ?HANDSHAKE_TIMEOUT, "TLS handshake timed out");
            None
        }
    }
}

/// Whether an accept error concerns one connection only (it was reset or
/// aborted before it was taken), so the next accept may work at once.
fn about_one_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Handshakes in progress by source address.
#[derive(Clone, Default)]
struct Sources(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One handshake in progress from `ip`; counted until dropped.
struct Slot {
    sources: Sources,
    ip: IpAddr,
}

impl Sources {
    /// A slot for one more handshake from `ip`, or None when it has
    /// [`HANDSHAKES_PER_SOURCE`] in progress.
    fn enter(&self, ip: IpAddr) -> Option<Slot> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(ip).or_default();
        if *count >= HANDSHAKES_PER_SOURCE {
            return None;
        }
        *count += 1;
        Some(Slot {
            sources: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self
            .sources
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_holds_a_bounded_number_of_handshakes() {
        let sources = Sources::default();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let held: Vec<Slot> = (0..HANDSHAKES_PER_SOURCE)
            .map(|_| sources.enter(a).expect("under the cap"))
            .collect();
        assert!(sources.enter(a).is_none(), "past the cap");
        let other = sources.enter(b).expect("another source is not held back");
        drop(held);
        assert!(sources.enter(a).is_some(), "slots come back when dropped");
        drop(other);
        assert!(sources.0.lock().unwrap().get(&b).is_none(), "no entry left");
    }
}
