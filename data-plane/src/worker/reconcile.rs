//! Brings the swap table in line with the catalog, in the background: loads
//! every valid version of eagerly loaded APIs, reloads in-memory versions
//! whose content changed, retries failed loads when their backoff ends, and
//! drops versions that were removed or turned invalid.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Worker;
use crate::catalog::Catalog;
use crate::lock;

/// How often failed loads are reconsidered when nothing else happens.
const TICK: Duration = Duration::from_millis(500);

pub async fn run(worker: Arc<Worker>) {
    let mut updates = worker.catalog_updates();
    loop {
        tokio::select! {
            () = worker.shutdown.cancelled() => return,
            changed = updates.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(TICK) => {}
        }
        reconcile(&worker).await;
    }
}

async fn reconcile(worker: &Arc<Worker>) {
    let catalog = worker.catalog();
    if !catalog.complete {
        return;
    }
    // Removed or invalid versions stop being served; requests holding their
    // instance finish on it.
    for (key, slot) in worker.table.entries() {
        let keep = catalog.versions.get(&key).is_some_and(Catalog::valid);
        if !keep {
            worker.table.remove(&key);
            let disk = lock(&slot.state).disk.take();
            if let Some((dir, _)) = disk {
                worker.cache.remove(&dir).await;
            }
            tracing::info!(version = %key, "version no longer served (removed or invalid)");
        }
    }
    let now = Instant::now();
    for (key, version) in &catalog.versions {
        if !Catalog::valid(version) {
            continue;
        }
        let eager = catalog.apis.get(&key.api).is_none_or(|a| a.cache_size == 0);
        let slot = worker.table.get(key);
        let published = slot.as_ref().and_then(|s| s.current.load_full());
        let stale = match &published {
            Some(loaded) => loaded.content_hash != version.content_hash,
            // On-demand APIs load when a request asks.
            None => eager,
        };
        if !stale {
            continue;
        }
        let slot = slot.unwrap_or_else(|| worker.table.slot(key));
        {
            let mut state = lock(&slot.state);
            let waiting = state
                .failure
                .as_ref()
                .is_some_and(|f| f.content_hash == version.content_hash && now < f.retry_at);
            if state.loading || waiting {
                continue;
            }
            state.loading = true;
        }
        let worker = worker.clone();
        let version = version.clone();
        tokio::spawn(async move {
            // Errors are logged and recorded by load().
            let _ = worker.load(&version).await;
            lock(&slot.state).loading = false;
        });
    }
}
