//! Binding a listener with an accept queue deep enough for a burst. Rust's
//! standard listeners (and tokio's) ask the kernel for a queue of 128: a
//! few hundred connections arriving at once (clients starting together, or
//! an attacker opening silent sockets) overflow it, and the kernel drops
//! the SYNs past it, so a well-formed client's connection waits for its SYN
//! to be sent again, a second later. With 600 silent sockets the kernel
//! counted hundreds of such drops per run (`TcpExtListenOverflows`).

use std::io;

use tokio::net::{TcpListener, TcpSocket, lookup_host};

/// Connections the kernel queues before the server accepts them (it caps
/// this at `net.core.somaxconn`, 4096 on current kernels).
pub const ACCEPT_BACKLOG: u32 = 4096;

/// A listener on `address` (`host:port`; port 0 picks a free one) with an
/// accept queue of [`ACCEPT_BACKLOG`]. Each address the host resolves to is
/// tried in turn; the last failure is returned.
pub async fn listen(address: &str) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in lookup_host(address).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As std and tokio do: a restarted server rebinds its port at once.
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(ACCEPT_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{address} resolves to no address"),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_past_the_default_queue_waits_in_the_kernel() {
        let listener = listen("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // More than the 128 a default listener queues, none accepted yet:
        // every connection completes, queued by the kernel.
        let mut connected = Vec::new();
        for _ in 0..600 {
            let socket = TcpSocket::new_v4().unwrap();
            let connect =
                tokio::time::timeout(std::time::Duration::from_millis(500), socket.connect(addr));
            connected.push(
                connect
                    .await
                    .expect("connected without a retried SYN")
                    .unwrap(),
            );
        }
        assert_eq!(connected.len(), 600);
    }
}
