//! Brings the swap table in line with the catalog, in the background: loads
//! every valid version of eagerly loaded APIs, reloads in-memory versions
//! whose content changed, retries failed loads when their backoff ends, and
//! drops versions that were removed. A loaded version that turned INVALID
//! (an update the model-store refused) keeps serving its last good content;
//! one that fell outside the version policy serves until a version within
//! it is published here.

use std::sync::Arc;

use hotswap_common::catalog::{ApiKind, Catalog, Holdings, VersionKey};

use super::Models;

/// Whether a version the table holds leaves it (`Some`), and if so whether
/// it left the index (`Some(true)`) rather than the version policy.
fn leaves(
    holdings: &impl Holdings,
    catalog: &Catalog,
    key: &VersionKey,
    published: bool,
) -> Option<bool> {
    match catalog.versions.get(key) {
        None => Some(true),
        // Outside the policy: held until a version within it is published
        // here, so a newer version that fails to load never leaves the
        // model without one.
        Some(v) if Catalog::excluded(v) => {
            let replaced = catalog
                .versions(&key.api, &key.model)
                .into_iter()
                .any(|w| Catalog::valid(w) && holdings.held(w));
            (!published || replaced).then_some(false)
        }
        // Invalid and never loaded: nothing to keep.
        Some(v) if !Catalog::valid(v) => (!published).then_some(false),
        Some(_) => None,
    }
}

impl Models {
    /// One pass of the reconciler (see the module's doc); does nothing
    /// before the first snapshot.
    pub async fn reconcile(self: &Arc<Self>) {
        if !self.catalog().complete {
            return;
        }
        for key in self.table.keys() {
            // The catalog is read afresh for each decision: deleting files
            // awaits, and a newer catalog may have brought the version back.
            let catalog = self.catalog();
            let published = self.table.published(&key).is_some();
            let Some(forget) = leaves(&**self, &catalog, &key, published) else {
                continue;
            };
            let Some(removed) = self.table.remove(&key) else {
                continue;
            };
            // Only a version gone from the index, or replaced by one within
            // the policy, is removed while published.
            if removed.published {
                let reason = if forget { "removed" } else { "policy" };
                metrics::counter!("hotswap_model_unloads_total",
                    "api" => key.api.clone(), "model" => key.model.clone(), "reason" => reason)
                .increment(1);
                if !forget {
                    tracing::info!(version = %key, "version outside the version policy unloaded");
                }
            }
            if let Some(dir) = removed.disk {
                self.cache.remove(&dir).await;
            }
            if forget {
                tracing::info!(version = %key, "version removed; no longer served");
            }
        }
        let catalog = self.catalog();
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
            let stale = match self.table.published(key) {
                Some(loaded) => loaded.content_hash != version.content_hash,
                // On-demand APIs load when a request asks.
                None => eager,
            };
            if stale {
                self.load_in_background(version);
            }
        }
        self.export_holdings(&catalog);
    }

    /// Whether every model placed on this worker has settled: every valid
    /// version of an eagerly loaded API is published or has failed (a
    /// failure is retried in the background, and must not keep the worker
    /// out of rotation for its other models), and every version a caller or
    /// the control plane asked for is loaded or failed. True with nothing
    /// placed.
    pub fn settled(&self) -> bool {
        let catalog = self.catalog();
        if !catalog.complete {
            return false;
        }
        let eager_pending = catalog.versions.iter().any(|(key, version)| {
            Catalog::valid(version)
                && catalog.apis.get(&key.api).is_some_and(|api| {
                    ApiKind::of(api) != ApiKind::Predictor && api.cache_size == 0
                })
                && !self.table.settled(key)
        });
        // Versions being loaded on demand.
        let loading = self.table.keys().iter().any(|key| {
            catalog.versions.get(key).is_some_and(Catalog::valid) && self.table.pending(key)
        });
        !eager_pending && !loading
    }

    /// What this worker holds, for Prometheus: versions in memory and on
    /// disk, and the bytes of their files.
    fn export_holdings(&self, catalog: &Catalog) {
        let (mut memory, mut memory_bytes, mut disk, mut disk_bytes) = (0u64, 0u64, 0u64, 0u64);
        for (key, in_memory, on_disk) in self.table.holdings() {
            let bytes: u64 = catalog
                .versions
                .get(&key)
                .map_or(0, |v| v.files.iter().map(|f| f.size).sum());
            if in_memory {
                memory += 1;
                memory_bytes += bytes;
            }
            if on_disk {
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

#[cfg(test)]
mod tests;
