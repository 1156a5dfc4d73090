//! A TCP forwarder on loopback that a test can cut: every open connection is
//! dropped, and while it is down new ones are refused. It breaks a
//! subscriber's stream without restarting the server behind it.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    pub addr: SocketAddr,
    /// (generation, up): a new generation drops every connection.
    state: watch::Sender<(u64, bool)>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (state, rx) = watch::channel((0u64, true));
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut rx = rx.clone();
                let (generation, up) = *rx.borrow_and_update();
                if !up {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.wait_for(|(g, _)| *g != generation) => {}
                    }
                });
            }
        });
        Proxy { addr, state, task }
    }

    /// Drops every connection; new ones are refused until [`Proxy::up`].
    pub fn down(&self) {
        self.state.send_modify(|(g, up)| {
            *g += 1;
            *up = false;
        });
    }

    pub fn up(&self) {
        self.state.send_modify(|(_, up)| *up = true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.down();
    }
}
