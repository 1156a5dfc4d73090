//! The workers the control plane knows: who they are, where they listen,
//! what they serve, how busy they are. A worker enters with its first report
//! and leaves when its registration stream ends or goes silent. A worker id
//! belongs to the registration stream that registered it while that stream
//! lasts: another stream naming it is refused, never a takeover. The number
//! of workers and of routes a report names are bounded. Calls are routed
//! by the routing table ([`table`]) the registry patches as workers come,
//! report and go.

mod table;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, Guard};
use hotswap_common::catalog::{Holdings, VersionKey};
use hotswap_common::lock;
use hotswap_proto::v1::{HeldVersion, ModelVersion, WorkerReport, WorkerStatus};
use tokio::time::Instant;

use table::Held;
pub use table::{Holders, RoutingTable};

use crate::Error;
use crate::worker::{Connect, WorkerApi};

/// A worker silent for this long is dropped (its reports come every
/// heartbeat).
pub const SILENCE_LIMIT: Duration = Duration::from_secs(3);

/// A route placed on a worker that has not reported it yet counts as
/// served there for this long, so the requests that follow go to the same
/// worker instead of loading it elsewhere.
pub const PLACEMENT_GRACE: Duration = Duration::from_secs(10);

/// Bounds on what registrations may make the registry hold.
#[derive(Debug, Clone, Copy)]
pub struct RegistryLimits {
    /// Workers registered at once; one more is refused.
    pub max_workers: usize,
    /// Model versions and predictor APIs one report may name.
    pub max_routes: usize,
}

impl Default for RegistryLimits {
    fn default() -> Self {
        RegistryLimits {
            max_workers: DEFAULT_MAX_WORKERS,
            max_routes: DEFAULT_MAX_ROUTES,
        }
    }
}

/// Default [`RegistryLimits::max_workers`]: each worker costs a connection
/// and its buffers.
pub const DEFAULT_MAX_WORKERS: usize = 256;
/// Default [`RegistryLimits::max_routes`].
pub const DEFAULT_MAX_ROUTES: usize = 10_000;

/// What a call is routed by: what a worker must serve to take it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    /// A model version the worker has loaded (or loads on demand).
    Version(VersionKey),
    /// An API served by a predictor class, running on the worker.
    Predictor(String),
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Version(key) => key.fmt(f),
            Route::Predictor(api) => write!(f, "api `{api}`"),
        }
    }
}

/// One registered worker: where it is, what it serves, and the counts the
/// router balances by.
pub struct WorkerEntry {
    /// The id the worker registered with.
    pub id: String,
    /// The address it advertised, which calls are sent to.
    pub address: String,
    /// Calls it takes at once (0: no limit of its own).
    pub capacity: u32,
    /// The registration stream that owns the entry.
    session: u64,
    serves: RwLock<HashSet<Route>>,
    placed: Mutex<HashMap<Route, Instant>>,
    in_flight: AtomicU32,
    /// Calls sent and not answered yet (the control plane's own count).
    pub outstanding: AtomicUsize,
    routed: AtomicU64,
    /// What its last report said of its readiness.
    ready: AtomicBool,
    /// The same count for Prometheus, labelled with the worker's address.
    routed_metric: metrics::Counter,
    registered: SystemTime,
    last_report: Mutex<(Instant, SystemTime)>,
    /// What the routing table holds for it: its routes as last tabled.
    tabled: Mutex<Held>,
    /// The client calls to it go through.
    pub api: Arc<dyn WorkerApi>,
}

impl WorkerEntry {
    /// Whether the worker reported serving `route`.
    pub fn serves(&self, route: &Route) -> bool {
        self.serves
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(route)
    }

    /// Records that `route` was just placed here, so the router counts it
    /// as coming before the worker's next report says so.
    fn place(&self, route: &Route) {
        lock(&self.placed).insert(route.clone(), Instant::now());
        metrics::counter!("hotswap_placements_total").increment(1);
    }

    /// Its routes as the routing table should hold them: each one served,
    /// and each one placed within the grace and not reported yet, with the
    /// instant its grace ends.
    fn held(&self) -> Held {
        let serves = self
            .serves
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut held: Held = serves.iter().map(|r| (r.clone(), None)).collect();
        let now = Instant::now();
        for (route, at) in lock(&self.placed).iter() {
            let until = *at + PLACEMENT_GRACE;
            if until > now && !serves.contains(route) {
                held.insert(route.clone(), Some(until));
            }
        }
        held
    }

    /// Routes served or placed: how full the worker is.
    pub fn load_count(&self) -> usize {
        let serves = self
            .serves
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let placed = lock(&self.placed);
        serves.len()
            + placed
                .iter()
                .filter(|(r, t)| t.elapsed() < PLACEMENT_GRACE && !serves.contains(*r))
                .count()
    }

    /// Counts one call routed to the worker.
    pub fn routed(&self) {
        self.routed.fetch_add(1, Ordering::Relaxed);
        self.routed_metric.increment(1);
    }

    /// Applies `report`; true when what it serves or has placed on it
    /// changed (the routing table must follow), false for a heartbeat that
    /// says what the last one said.
    fn update(&self, report: &WorkerReport) -> bool {
        let serves: HashSet<Route> = report
            .held
            .iter()
            .map(|h| Route::Version(key_of(h)))
            .chain(report.predictors.iter().cloned().map(Route::Predictor))
            .collect();
        let placed_changed = {
            let mut placed = lock(&self.placed);
            let before = placed.len();
            placed.retain(|r, t| !serves.contains(r) && t.elapsed() < PLACEMENT_GRACE);
            placed.len() != before
        };
        let serves_changed = {
            let mut current = self
                .serves
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let changed = *current != serves;
            if changed {
                *current = serves;
            }
            changed
        };
        self.in_flight.store(report.in_flight, Ordering::Relaxed);
        self.ready.store(report.ready, Ordering::Relaxed);
        *lock(&self.last_report) = (Instant::now(), SystemTime::now());
        placed_changed || serves_changed
    }

    fn silent_for(&self) -> Duration {
        lock(&self.last_report).0.elapsed()
    }

    /// The worker as `ListWorkers` shows it.
    pub fn status(&self) -> WorkerStatus {
        let mut held = Vec::new();
        let mut predictors = Vec::new();
        for route in self
            .serves
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            match route {
                Route::Version(k) => held.push(HeldVersion {
                    api: k.api.clone(),
                    model: k.model.clone(),
                    version: k.version,
                }),
                Route::Predictor(api) => predictors.push(api.clone()),
            }
        }
        held.sort_by(|a, b| (&a.api, &a.model, a.version).cmp(&(&b.api, &b.model, b.version)));
        predictors.sort();
        WorkerStatus {
            worker_id: self.id.clone(),
            address: self.address.clone(),
            capacity: self.capacity,
            held,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            outstanding: u32::try_from(self.outstanding.load(Ordering::Relaxed))
                .unwrap_or(u32::MAX),
            registered: Some(self.registered.into()),
            last_report: Some(lock(&self.last_report).1.into()),
            routed: self.routed.load(Ordering::Relaxed),
            predictors,
        }
    }
}

fn key_of(h: &HeldVersion) -> VersionKey {
    VersionKey {
        api: h.api.clone(),
        model: h.model.clone(),
        version: h.version,
    }
}

/// The workers registered with the control plane, by id.
pub struct Registry {
    /// Who is registered: changed under its write lock, which also
    /// serialises every change of the routing table.
    workers: RwLock<HashMap<String, Arc<WorkerEntry>>>,
    /// What calls are routed by, derived from `workers`.
    table: ArcSwap<RoutingTable>,
    sessions: AtomicU64,
    connector: Arc<dyn Connect>,
    limits: RegistryLimits,
}

impl Registry {
    /// A registry that reaches workers through `connector`, with the
    /// default limits.
    pub fn new(connector: Arc<dyn Connect>) -> Registry {
        Registry::with_limits(connector, RegistryLimits::default())
    }

    /// As [`Registry::new`], with `limits` on workers and what they report.
    pub fn with_limits(connector: Arc<dyn Connect>, limits: RegistryLimits) -> Registry {
        Registry {
            workers: RwLock::default(),
            table: ArcSwap::default(),
            sessions: AtomicU64::new(0),
            connector,
            limits,
        }
    }

    /// A new registration stream.
    pub fn session(&self) -> u64 {
        self.sessions.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Applies a report; the first of a session creates the entry.
    pub fn report(&self, session: u64, report: &WorkerReport) -> Result<(), Error> {
        if report.worker_id.is_empty() || report.address.is_empty() {
            return Err(Error::InvalidArgument(
                "a worker report needs worker_id and address".to_owned(),
            ));
        }
        let routes = report.held.len().saturating_add(report.predictors.len());
        if routes > self.limits.max_routes {
            return Err(Error::TooManyRoutes {
                routes,
                max: self.limits.max_routes,
            });
        }
        // Check and insert under one lock: two streams naming one id never
        // both get it.
        let mut workers = self.write();
        match workers.get(&report.worker_id) {
            Some(entry) if entry.session != session => {
                return Err(Error::WorkerIdTaken(
                    hotswap_proto::error::shown(&report.worker_id).into_owned(),
                ));
            }
            Some(entry) if entry.address == report.address => {
                if entry.update(report) {
                    self.retable(entry, None);
                }
                return Ok(());
            }
            // Its own stream, moved to another address: connected anew.
            Some(_) => {}
            None if workers.len() >= self.limits.max_workers => {
                return Err(Error::TooManyWorkers {
                    max: self.limits.max_workers,
                });
            }
            None => {}
        }
        let api = self
            .connector
            .connect(&report.address, report.capacity)
            .map_err(|source| Error::WorkerAddress {
                address: report.address.clone(),
                source,
            })?;
        let entry = Arc::new(WorkerEntry {
            id: report.worker_id.clone(),
            address: report.address.clone(),
            capacity: report.capacity,
            session,
            serves: RwLock::default(),
            placed: Mutex::default(),
            in_flight: AtomicU32::new(0),
            outstanding: AtomicUsize::new(0),
            routed: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            routed_metric: metrics::counter!("hotswap_routed_calls_total", "worker" => report.address.clone()),
            registered: SystemTime::now(),
            last_report: Mutex::new((Instant::now(), SystemTime::now())),
            tabled: Mutex::default(),
            api,
        });
        entry.update(report);
        tracing::info!(worker_id = %entry.id, address = %entry.address, "worker registered");
        // The same id at another address: the old entry leaves the table.
        if let Some(old) = workers.insert(entry.id.clone(), entry.clone()) {
            self.untable(&old);
        }
        self.retable(&entry, Some(&workers));
        metrics::gauge!("hotswap_registered_workers").set(workers.len() as f64);
        Ok(())
    }

    /// The stream of `session` ended: the worker leaves unless a newer
    /// session took it over.
    pub fn end(&self, session: u64, worker_id: &str) {
        let mut workers = self.write();
        if workers.get(worker_id).is_some_and(|w| w.session == session) {
            if let Some(gone) = workers.remove(worker_id) {
                self.untable(&gone);
                self.retable_workers(&workers);
            }
            metrics::gauge!("hotswap_registered_workers").set(workers.len() as f64);
            tracing::info!(worker_id, "worker left (registration stream ended)");
        }
    }

    /// Drops workers whose last report is too old.
    pub fn sweep(&self) {
        let mut workers = self.write();
        let before = workers.len();
        workers.retain(|id, w| {
            let alive = w.silent_for() < SILENCE_LIMIT;
            if !alive {
                tracing::warn!(worker_id = %id, "worker dropped: no report for {SILENCE_LIMIT:?}");
                self.untable(w);
            }
            alive
        });
        if workers.len() != before {
            self.retable_workers(&workers);
            metrics::gauge!("hotswap_registered_workers").set(workers.len() as f64);
        }
    }

    /// Places `route` on `worker`: calls for it go there until the
    /// worker reports it, or the grace runs out.
    pub fn place(&self, worker: &Arc<WorkerEntry>, route: &Route) {
        let workers = self.write();
        // A worker that left meanwhile stays out of the table.
        if workers
            .get(&worker.id)
            .is_some_and(|w| Arc::ptr_eq(w, worker))
        {
            worker.place(route);
            self.retable(worker, None);
        }
    }

    /// The routing table now.
    pub fn table(&self) -> Guard<Arc<RoutingTable>> {
        self.table.load()
    }

    /// Brings the table's routes for `worker` up to what it holds (and,
    /// given `workers`, its list of workers to them). Called with the
    /// write lock held.
    fn retable(
        &self,
        worker: &Arc<WorkerEntry>,
        workers: Option<&HashMap<String, Arc<WorkerEntry>>>,
    ) {
        let after = worker.held();
        let mut tabled = lock(&worker.tabled);
        let table = self.table.load();
        let patched = table.patched(worker, &tabled, &after);
        *tabled = after;
        let next = match (patched, workers) {
            (Some(t), Some(w)) => t.with_workers(w.values().cloned().collect()),
            (Some(t), None) => t,
            (None, Some(w)) => {
                RoutingTable::clone(&table).with_workers(w.values().cloned().collect())
            }
            (None, None) => return,
        };
        self.table.store(Arc::new(next));
    }

    /// Takes `gone`'s routes out of the table (its entry left). Called
    /// with the write lock held.
    fn untable(&self, gone: &Arc<WorkerEntry>) {
        let before = std::mem::take(&mut *lock(&gone.tabled));
        let table = self.table.load();
        if let Some(t) = table.patched(gone, &before, &Held::new()) {
            self.table.store(Arc::new(t));
        }
    }

    /// Sets the table's list of workers to `workers`. Called with the
    /// write lock held.
    fn retable_workers(&self, workers: &HashMap<String, Arc<WorkerEntry>>) {
        let next = RoutingTable::clone(&self.table.load())
            .with_workers(workers.values().cloned().collect());
        self.table.store(Arc::new(next));
    }

    /// The worker registered as `id`.
    pub fn get(&self, id: &str) -> Option<Arc<WorkerEntry>> {
        self.read().get(id).cloned()
    }

    /// Every worker, in id order.
    pub fn all(&self) -> Vec<Arc<WorkerEntry>> {
        self.table().workers().to_vec()
    }

    /// Whether no worker is registered.
    pub fn is_empty(&self) -> bool {
        self.table().workers().is_empty()
    }

    /// Whether some registered worker reports itself ready.
    pub fn any_ready(&self) -> bool {
        self.table()
            .workers()
            .iter()
            .any(|w| w.ready.load(Ordering::Relaxed))
    }

    /// Whether any worker reported serving the route.
    pub fn served_anywhere(&self, route: &Route) -> bool {
        self.table().holders(route).is_some_and(Holders::served)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<WorkerEntry>>> {
        self.workers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<WorkerEntry>>> {
        self.workers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What the workers report holding, for the catalog's version rules.
impl Holdings for Registry {
    fn held(&self, v: &ModelVersion) -> bool {
        self.served_anywhere(&Route::Version(VersionKey::of(v)))
    }
}

#[cfg(test)]
mod tests;
