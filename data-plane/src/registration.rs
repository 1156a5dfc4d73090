//! Registration with the control planes: one long-lived stream per
//! control-plane replica (every address `--control-plane` resolves to,
//! looked up again periodically), opened once the worker has the model
//! index, carrying reports of what it holds and how busy it is. The stream
//! is the heartbeat; when it breaks the worker reconnects with backoff and
//! that control plane, meanwhile, routes elsewhere.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotswap_common::backoff;
use hotswap_common::client::{AddressError, PeerStatus, WithToken, endpoint_named};
use hotswap_common::reconnect::{self, Progress, Session};
use hotswap_proto::HEARTBEAT;
use hotswap_proto::error::Report;
use hotswap_proto::v1::control_plane_client::ControlPlaneClient;
use hotswap_proto::v1::{HeldVersion, WorkerReport};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::worker::Worker;

/// Why a registration stream ended; the worker registers again.
#[derive(Debug, thiserror::Error)]
enum Interrupted {
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error("connect")]
    Connect(#[source] tonic::transport::Error),
    #[error("register")]
    Register(#[source] PeerStatus),
    #[error("stream")]
    Stream(#[source] PeerStatus),
    #[error("stream closed")]
    Closed,
    #[error("the control plane closed the stream")]
    Ended,
    #[error("no reply from the control plane")]
    Silent,
}

/// A report goes out at least every [`HEARTBEAT`], and within one check
/// interval of a change in what the worker holds.
const CHECK: Duration = Duration::from_millis(100);
/// Reconnect when the control plane has not replied for this long.
const REPLY_SILENCE: Duration = Duration::from_secs(5);
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How often the control planes' names are resolved again: replicas that
/// appear are registered with, replicas gone are left.
const RESOLVE_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Registration {
    /// `--control-plane`: one `host:port`, or several separated by commas.
    /// A host name is resolved to all its addresses (a Kubernetes headless
    /// Service, a compose service with replicas), and the worker registers
    /// with each, so that any control-plane replica routes to it.
    pub control_plane: String,
    /// host:port the control plane calls this worker on.
    pub address: String,
    pub capacity: u32,
}

/// Registers with every control plane `registration` names, until
/// `shutdown`: one registration stream per resolved address, all with the
/// same worker id.
pub async fn run(worker: Arc<Worker>, registration: Registration, shutdown: CancellationToken) {
    // A worker without the model index would refuse every call routed to
    // it: register once it has one.
    let mut catalog = worker.catalog_updates();
    tokio::select! {
        () = shutdown.cancelled() => return,
        ready = catalog.wait_for(|c| c.complete) => if ready.is_err() { return },
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut running: std::collections::HashMap<String, CancellationToken> =
        std::collections::HashMap::new();
    // Until some control plane resolves (it may start after the worker),
    // look again soon rather than every RESOLVE_EVERY.
    let mut first = backoff::delays(BACKOFF_START, BACKOFF_MAX);
    loop {
        let targets = resolve(&registration.control_plane).await;
        for target in &targets {
            if running.contains_key(target) {
                continue;
            }
            let token = shutdown.child_token();
            running.insert(target.clone(), token.clone());
            tokio::spawn(register_with(
                worker.clone(),
                Registration {
                    control_plane: target.clone(),
                    ..registration.clone()
                },
                id.clone(),
                token,
            ));
        }
        // An address that no longer resolves is a replica gone; one that
        // failed to resolve this time (DNS down) is kept.
        if !targets.is_empty() {
            running.retain(|target, token| {
                let keep = targets.contains(target);
                if !keep {
                    tracing::info!(control_plane = %target, "control-plane replica gone; leaving it");
                    token.cancel();
                }
                keep
            });
        }
        let wait = if running.is_empty() {
            first.next_delay()
        } else {
            RESOLVE_EVERY
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Each `host:port` in the list, as the addresses it resolves to (an IP
/// address as itself), written `host@ip:port`: the stream calls the
/// address and verifies TLS against the host's name (see `session`).
async fn resolve(list: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bare = entry.split_once("://").map_or(entry, |(_, rest)| rest);
        match tokio::net::lookup_host(bare).await {
            Ok(addrs) => {
                let host = bare.rsplit_once(':').map_or(bare, |(h, _)| h);
                for addr in addrs {
                    // One entry per address, remembering the name it came
                    // from for TLS verification.
                    out.insert(format!("{host}@{addr}"));
                }
            }
            Err(e) => {
                tracing::warn!(control_plane = %entry, error = %e, "cannot resolve the control plane; trying again");
            }
        }
    }
    out
}

/// One control plane's registration stream, again after each break, until
/// `shutdown`.
async fn register_with(
    worker: Arc<Worker>,
    registration: Registration,
    id: String,
    shutdown: CancellationToken,
) {
    tracing::info!(control_plane = %registration.control_plane, address = %registration.address, worker_id = %id, "registering with the control plane");
    let delays = reconnect::Delays {
        min: BACKOFF_START,
        max: BACKOFF_MAX,
    };
    let stream = Stream {
        worker,
        registration,
        id,
    };
    reconnect::run(stream, delays, shutdown).await;
}

/// One control plane's registration, across its streams.
struct Stream {
    worker: Arc<Worker>,
    registration: Registration,
    id: String,
}

impl Session for Stream {
    type Error = Interrupted;

    async fn run(&mut self, progress: &Progress) -> Result<(), Interrupted> {
        session(&self.worker, &self.registration, &self.id, progress).await
    }

    fn interrupted(&self, e: &Interrupted, delay: Duration) {
        tracing::warn!(control_plane = %self.registration.control_plane, error = %Report(e), retry_in = ?delay, "control-plane registration interrupted");
    }
}

async fn session(
    worker: &Worker,
    registration: &Registration,
    id: &str,
    progress: &Progress,
) -> Result<(), Interrupted> {
    // `name@ip:port`: call the address, verify TLS against the name.
    let (name, address) = registration
        .control_plane
        .split_once('@')
        .unwrap_or(("", &registration.control_plane));
    let server_name =
        (!name.is_empty() && name.parse::<std::net::IpAddr>().is_err()).then_some(name);
    let channel = endpoint_named(address, &worker.cluster, server_name)?
        .connect_timeout(Duration::from_secs(2))
        // Finds a control plane whose host vanished without closing the
        // connection (with the reply check below).
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(Interrupted::Connect)?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let report = |held: &Held| WorkerReport {
        worker_id: id.to_owned(),
        address: registration.address.clone(),
        capacity: registration.capacity,
        held: held
            .versions
            .iter()
            .map(|(api, model, version)| HeldVersion {
                api: api.clone(),
                model: model.clone(),
                version: *version,
            })
            .collect(),
        in_flight: u32::try_from(worker.in_flight()).unwrap_or(u32::MAX),
        predictors: held.predictors.iter().cloned().collect(),
        ready: held.ready,
    };
    let mut held = held_now(worker);
    tx.send(report(&held))
        .await
        .map_err(|_| Interrupted::Closed)?;
    let mut replies = ControlPlaneClient::new(WithToken::new(channel, &worker.cluster))
        .register(ReceiverStream::new(rx))
        .await
        .map_err(|s| Interrupted::Register(PeerStatus(s)))?
        .into_inner();
    progress.made();
    let mut last_sent = Instant::now();
    let mut tick = tokio::time::interval(CHECK);
    // The control plane replies every heartbeat; silence means it is gone.
    let silence = tokio::time::sleep(REPLY_SILENCE);
    tokio::pin!(silence);
    loop {
        tokio::select! {
            () = &mut silence => return Err(Interrupted::Silent),
            reply = replies.message() => match reply {
                Ok(Some(_)) => silence.as_mut().reset(tokio::time::Instant::now() + REPLY_SILENCE),
                Ok(None) => return Err(Interrupted::Ended),
                Err(s) => return Err(Interrupted::Stream(PeerStatus(s))),
            },
            _ = tick.tick() => {
                let now = held_now(worker);
                if now != held || last_sent.elapsed() >= HEARTBEAT {
                    held = now;
                    tx.send(report(&held)).await.map_err(|_| Interrupted::Closed)?;
                    last_sent = Instant::now();
                }
            }
        }
    }
}

/// What a worker serves now: loaded model versions, and APIs whose
/// predictor class is running (routed by API).
#[derive(PartialEq, Eq)]
struct Held {
    versions: BTreeSet<(String, String, u64)>,
    predictors: BTreeSet<String>,
    ready: bool,
}

fn held_now(worker: &Worker) -> Held {
    let (versions, predictors) = worker.held();
    Held {
        versions: versions
            .into_iter()
            .map(|k| (k.api, k.model, k.version))
            .collect(),
        predictors: predictors.into_iter().collect(),
        ready: worker.ready(),
    }
}

#[cfg(test)]
mod tests;
