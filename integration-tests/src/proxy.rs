//! A TCP forwarder on loopback that a test can cut or stall: cut, every
//! open connection is dropped and new ones are refused (it breaks a
//! subscriber's stream without restarting the server behind it); stalled,
//! a connection whose request holds a chosen string is kept open and never
//! answered (an object store that stops answering for one object).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TCP proxy in front of a server, which a test takes down and up.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// (generation, up): a new generation drops every connection.
    state: watch::Sender<(u64, bool)>,
    /// Requests holding this string are never forwarded.
    stall: Arc<Mutex<Option<Vec<u8>>>>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// A proxy to `target`, up.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (state, rx) = watch::channel((0u64, true));
        let stall: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let stalls = stall.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut rx = rx.clone();
                let (generation, up) = *rx.borrow_and_update();
                if !up {
                    continue;
                }
                let stall = stalls.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        () = forward(inbound, outbound, stall) => {}
                        _ = rx.wait_for(|(g, _)| *g != generation) => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            state,
            stall,
            task,
        }
    }

    /// Drops every connection; new ones are refused until [`Proxy::up`].
    pub fn down(&self) {
        self.state.send_modify(|(g, up)| {
            *g += 1;
            *up = false;
        });
    }

    /// Forwards connections again.
    pub fn up(&self) {
        self.state.send_modify(|(_, up)| *up = true);
    }

    /// From now on, a request whose bytes hold `needle` is never forwarded
    /// and never answered; its connection stays open.
    pub fn stall(&self, needle: &str) {
        *self.stall.lock().unwrap() = Some(needle.as_bytes().to_vec());
    }

    /// Requests are forwarded again (those already stalled stay stalled).
    pub fn unstall(&self) {
        *self.stall.lock().unwrap() = None;
    }
}

/// Copies both ways until either side closes, holding a request that
/// matches the stall needle (and everything after it on that connection).
async fn forward(inbound: TcpStream, outbound: TcpStream, stall: Arc<Mutex<Option<Vec<u8>>>>) {
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    let requests = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match in_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let stalled = stall
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|needle| contains(&buf[..n], needle));
            if stalled {
                // Keep the connection open, answer nothing, read on so the
                // client's writes do not fail.
                while let Ok(n) = in_read.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                }
                return;
            }
            if out_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let answers = async move {
        let _ = tokio::io::copy(&mut out_read, &mut in_write).await;
    };
    tokio::join!(requests, answers);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.down();
    }
}
