//! The routing table: for each route, the workers that serve it or had it
//! placed on them moments ago, as one immutable snapshot behind an
//! `ArcSwap`. A call loads the snapshot, looks its route up and picks one
//! of the holders: no lock, no allocation, nothing sorted or filtered per
//! call. The registry patches a new snapshot when a worker registers,
//! reports something new, has a route placed on it, or leaves; only the
//! routes that worker changed are touched, and a report that changes
//! nothing (the heartbeat) leaves the snapshot as it is.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::{Route, WorkerEntry};

/// What a worker holds as the table sees it: each route it serves (`None`)
/// or had placed on it, counted until the instant given.
pub(crate) type Held = HashMap<Route, Option<Instant>>;

/// One worker holding a route.
#[derive(Clone)]
pub struct Holder {
    /// The worker.
    pub worker: Arc<WorkerEntry>,
    /// Placed on it, not reported yet: it counts as a holder until then.
    until: Option<Instant>,
}

impl Holder {
    /// Whether it still counts at `now` (`None`: not needed, it was
    /// reported).
    fn counts(&self, now: &mut Option<Instant>) -> bool {
        match self.until {
            None => true,
            Some(until) => *now.get_or_insert_with(Instant::now) < until,
        }
    }
}

/// The workers holding one route.
pub struct Holders {
    holders: Box<[Holder]>,
    /// How many of them reported serving it (not just had it placed).
    served: usize,
}

impl Holders {
    /// The holders' worker ids, placements past their grace included.
    #[cfg(test)]
    pub fn ids(&self) -> Vec<&str> {
        self.holders.iter().map(|h| h.worker.id.as_str()).collect()
    }

    /// Whether a worker reported serving the route.
    pub fn served(&self) -> bool {
        self.served > 0
    }

    /// Of two holders picked at random (never `exclude`), the one with
    /// fewer calls outstanding; None when no holder is left. A placement
    /// whose grace ran out no longer counts.
    pub fn pick(
        &self,
        exclude: Option<&str>,
        random: impl Fn(usize) -> usize,
    ) -> Option<&Arc<WorkerEntry>> {
        let mut now = None;
        let usable = |h: &Holder, now: &mut Option<Instant>| {
            Some(h.worker.id.as_str()) != exclude && h.counts(now)
        };
        let n = self.holders.len();
        if n == 0 {
            return None;
        }
        let a = random(n);
        let b = if n > 1 {
            (a + 1 + random(n - 1)) % n
        } else {
            a
        };
        let (first, second) = (&self.holders[a], &self.holders[b]);
        let busy = |h: &Holder| {
            h.worker
                .outstanding
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        match (usable(first, &mut now), a != b && usable(second, &mut now)) {
            (true, true) => Some(if busy(second) < busy(first) {
                &second.worker
            } else {
                &first.worker
            }),
            (true, false) => Some(&first.worker),
            (false, true) => Some(&second.worker),
            // Both unusable (an excluded worker, an expired placement):
            // any other holder will do. Rare: a retry, or a placement that
            // never loaded.
            (false, false) => self
                .holders
                .iter()
                .find(|h| usable(h, &mut now))
                .map(|h| &h.worker),
        }
    }
}

/// One snapshot of who serves what.
#[derive(Clone, Default)]
pub struct RoutingTable {
    /// Every registered worker, in id order.
    workers: Arc<[Arc<WorkerEntry>]>,
    routes: HashMap<Arc<Route>, Arc<Holders>>,
}

impl RoutingTable {
    /// Every registered worker, in id order.
    pub fn workers(&self) -> &[Arc<WorkerEntry>] {
        &self.workers
    }

    /// The workers holding `route`, if any does.
    pub fn holders(&self, route: &Route) -> Option<&Holders> {
        self.routes.get(route).map(|h| &**h)
    }

    /// The table with `workers` as the registered workers (id order).
    pub(crate) fn with_workers(self, mut workers: Vec<Arc<WorkerEntry>>) -> RoutingTable {
        workers.sort_by(|a, b| a.id.cmp(&b.id));
        RoutingTable {
            workers: workers.into(),
            ..self
        }
    }

    /// The table with `worker` holding `after` instead of `before`: only the
    /// routes whose entry for it differs are rebuilt. None when nothing
    /// differs.
    pub(crate) fn patched(
        &self,
        worker: &Arc<WorkerEntry>,
        before: &Held,
        after: &Held,
    ) -> Option<RoutingTable> {
        let changed: Vec<&Route> = before
            .iter()
            .filter(|(route, until)| after.get(*route) != Some(until))
            .map(|(route, _)| route)
            .chain(after.keys().filter(|route| !before.contains_key(*route)))
            .collect();
        if changed.is_empty() {
            return None;
        }
        let mut routes = self.routes.clone();
        for route in changed {
            let mut holders: Vec<Holder> = routes
                .get(route)
                .map(|h| {
                    h.holders
                        .iter()
                        .filter(|h| !Arc::ptr_eq(&h.worker, worker))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if let Some(until) = after.get(route) {
                holders.push(Holder {
                    worker: worker.clone(),
                    until: *until,
                });
            }
            if holders.is_empty() {
                routes.remove(route);
            } else {
                let served = holders.iter().filter(|h| h.until.is_none()).count();
                let holders = Arc::new(Holders {
                    holders: holders.into(),
                    served,
                });
                match routes.get_mut(route) {
                    Some(slot) => *slot = holders,
                    None => {
                        routes.insert(Arc::new(route.clone()), holders);
                    }
                }
            }
        }
        Some(RoutingTable {
            workers: self.workers.clone(),
            routes,
        })
    }
}
