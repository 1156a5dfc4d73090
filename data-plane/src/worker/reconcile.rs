//! Brings the swap table in line with the catalog, in the background: loads
//! every valid version of eagerly loaded APIs, reloads in-memory versions
//! whose content changed, retries failed loads when their backoff ends, and
//! drops versions that were removed. A loaded version that turned INVALID
//! (an update the model-store refused) keeps serving its last good content;
//! one that fell outside the version policy serves until a version within
//! it is published here.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use hotswap_common::catalog::{ApiKind, Catalog};
use hotswap_common::lock;

use super::Worker;

/// How often failed loads are reconsidered when nothing else happens.
const TICK: Duration = Duration::from_millis(500);

/// Runs until `shutdown` or until the worker is gone; holds the worker only
/// while reconciling, so dropping the last handle stops it.
pub async fn run(worker: Weak<Worker>, shutdown: CancellationToken) {
    let Some(mut updates) = worker.upgrade().map(|w| w.catalog_updates()) else {
        return;
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = updates.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(TICK) => {}
        }
        let Some(worker) = worker.upgrade() else {
            return;
        };
        reconcile(&worker).await;
    }
}

async fn reconcile(worker: &Arc<Worker>) {
    if !worker.catalog().complete {
        return;
    }
    worker.reconcile_python(&worker.catalog());
    for (key, slot) in worker.table.entries() {
        // The catalog is read afresh for each decision: deleting files
        // awaits, and a newer catalog may have brought the version back.
        let catalog = worker.catalog();
        let (remove, forget) = match catalog.versions.get(&key) {
            None => (true, true),
            // Outside the policy: held until a version within it is
            // published here, so a newer version that fails to load never
            // leaves the model without one.
            Some(v) if Catalog::excluded(v) => {
                let replaced = catalog
                    .versions(&key.api, &key.model)
                    .into_iter()
                    .any(|w| Catalog::valid(w) && worker.published(w).is_some());
                (slot.current.load().is_none() || replaced, false)
            }
            // Invalid and never loaded: nothing to keep.
            Some(v) if !Catalog::valid(v) => (slot.current.load().is_none(), false),
            Some(_) => (false, false),
        };
        if !remove {
            continue;
        }
        // Only a version gone from the index, or replaced by one within
        // the policy, is removed while published.
        if slot.current.load().is_some() {
            let reason = if forget { "removed" } else { "policy" };
            metrics::counter!("hotswap_model_unloads_total",
                "api" => key.api.clone(), "model" => key.model.clone(), "reason" => reason)
            .increment(1);
            if !forget {
                tracing::info!(version = %key, "version outside the version policy unloaded");
            }
        }
        worker.table.remove(&key);
        let disk = lock(&slot.state).disk.take();
        if let Some((dir, _)) = disk {
            worker.cache.remove(&dir).await;
        }
        if forget {
            tracing::info!(version = %key, "version removed; no longer served");
        }
    }
    let catalog = worker.catalog();
    for (key, version) in &catalog.versions {
        if !Catalog::valid(version) {
            continue;
        }
        let Some(api) = catalog.apis.get(&key.api) else {
            continue;
        };
        // A predictor class loads its own models (python_client.get_model).
        if ApiKind::of(api) == ApiKind::Predictor {
            continue;
        }
        let eager = api.cache_size == 0;
        let published = worker.table.get(key).and_then(|s| s.current.load_full());
        let stale = match &published {
            Some(loaded) => loaded.content_hash != version.content_hash,
            // On-demand APIs load when a request asks.
            None => eager,
        };
        if stale {
            worker.load_in_background(version);
        }
    }
    worker.export_holdings(&catalog);
}

impl Worker {
    /// Whether everything placed on this worker has settled: every valid
    /// version of an eagerly loaded API is published or has failed (a
    /// failure is retried in the background, and must not keep the worker
    /// out of rotation for its other models), every version a caller or the
    /// control plane asked for is loaded or failed, and every predictor
    /// class has started or failed. True with nothing placed.
    pub fn settled(&self) -> bool {
        let catalog = self.catalog();
        if !catalog.complete {
            return false;
        }
        let settled = |key: &hotswap_common::catalog::VersionKey| {
            self.table.get(key).is_some_and(|slot| {
                slot.current.load().is_some() || lock(&slot.state).failure.is_some()
            })
        };
        let eager_pending = catalog.versions.iter().any(|(key, version)| {
            Catalog::valid(version)
                && catalog.apis.get(&key.api).is_some_and(|api| {
                    ApiKind::of(api) != ApiKind::Predictor && api.cache_size == 0
                })
                && !settled(key)
        });
        // Versions being loaded on demand (a slot without content or a
        // failure yet).
        let loading = self.table.entries().iter().any(|(key, slot)| {
            catalog.versions.get(key).is_some_and(Catalog::valid)
                && slot.current.load().is_none()
                && lock(&slot.state).failure.is_none()
        });
        !eager_pending && !loading && !self.python_starting()
    }
}

impl Worker {
    /// What this worker holds, for Prometheus: versions in memory and on
    /// disk, and the bytes of their files.
    fn export_holdings(&self, catalog: &Catalog) {
        let (mut memory, mut memory_bytes, mut disk, mut disk_bytes) = (0u64, 0u64, 0u64, 0u64);
        for (key, slot) in self.table.entries() {
            let bytes: u64 = catalog
                .versions
                .get(&key)
                .map_or(0, |v| v.files.iter().map(|f| f.size).sum());
            if slot.current.load().is_some() {
                memory += 1;
                memory_bytes += bytes;
            }
            if lock(&slot.state).disk.is_some() {
                disk += 1;
                disk_bytes += bytes;
            }
        }
        metrics::gauge!("hotswap_models_in_memory").set(memory as f64);
        metrics::gauge!("hotswap_model_file_bytes_in_memory").set(memory_bytes as f64);
        metrics::gauge!("hotswap_models_on_disk").set(disk as f64);
        metrics::gauge!("hotswap_model_file_bytes_on_disk").set(disk_bytes as f64);
    }
}
