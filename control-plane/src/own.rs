//! Whether an address a worker advertises is this control plane's own: the
//! port of one of its listeners, on a host name or IP that reaches this
//! machine. Calls routed there would come straight back (a request looped
//! through the control plane a thousand times when a worker advertised it).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A resolver that does not answer in this time counts as "not ours": the
/// call to that address then fails on its own.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The control plane's listeners, as bound.
#[derive(Debug, Clone, Default)]
pub struct OwnListeners(pub Vec<SocketAddr>);

impl OwnListeners {
    /// Whether `address` (`host:port`, or a URI with them) reaches one of
    /// the listeners.
    pub async fn reached_by(&self, address: &str) -> bool {
        let Some((host, port)) = host_port(address) else {
            return false;
        };
        if !self.0.iter().any(|l| l.port() == port) {
            return false;
        }
        let Some(resolved) = resolve(host, port).await else {
            return false;
        };
        let local = self.local_ips().await;
        resolved
            .iter()
            .any(|ip| ip.is_loopback() || ip.is_unspecified() || local.contains(ip))
    }

    /// This machine's addresses as far as the listeners and the host name
    /// say.
    async fn local_ips(&self) -> HashSet<IpAddr> {
        let mut ips: HashSet<IpAddr> = self.0.iter().map(SocketAddr::ip).collect();
        let hostname = tokio::fs::read_to_string("/proc/sys/kernel/hostname")
            .await
            .unwrap_or_default();
        let hostname = hostname.trim();
        if !hostname.is_empty()
            && let Some(resolved) = resolve(hostname, 0).await
        {
            ips.extend(resolved);
        }
        ips
    }
}

/// `host` and `port` of `host:port`, `[v6]:port` or `scheme://host:port/...`.
fn host_port(address: &str) -> Option<(&str, u16)> {
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host, port.parse().ok()?))
}

async fn resolve(host: &str, port: u16) -> Option<Vec<IpAddr>> {
    let lookup = tokio::net::lookup_host((host, port));
    let addrs = tokio::time::timeout(RESOLVE_TIMEOUT, lookup)
        .await
        .ok()?
        .ok()?;
    Some(addrs.map(|a| a.ip()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_and_the_bound_port_are_ours() {
        let own = OwnListeners(vec!["127.0.0.1:7000".parse().unwrap()]);
        for ours in [
            "127.0.0.1:7000",
            "localhost:7000",
            "http://127.0.0.1:7000",
            "[::1]:7000",
            "0.0.0.0:7000",
        ] {
            assert!(own.reached_by(ours).await, "{ours}");
        }
        for other in [
            "127.0.0.1:7002",
            "nonsense",
            "127.0.0.1:x",
            "10.255.255.1:7000",
        ] {
            assert!(!own.reached_by(other).await, "{other}");
        }
    }
}
