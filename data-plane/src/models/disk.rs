//! The disk cache's limit per API (`disk_cache_size`): after a version
//! loads, cached versions of its API beyond the limit are deleted, those
//! not in memory first, then the least recently used; never the version
//! that just loaded, never one a load is reading.

use hotswap_common::catalog::VersionKey;

use super::Models;

impl Models {
    pub(super) fn over_disk_limit(&self, api: &str, limit: usize) -> bool {
        limit > 0 && self.table.on_disk(api) > limit
    }

    /// With a disk limit, deletes cached versions of `keep`'s API beyond it.
    pub(super) async fn trim_disk(&self, keep: &VersionKey, limit: usize) {
        if limit == 0 {
            return;
        }
        let mut total = self.table.on_disk(&keep.api);
        for victim in self.table.disk_victims(keep) {
            if total <= limit {
                break;
            }
            // Checked again as it is taken: a load may have begun since.
            if let Some(dir) = self.table.take_disk_if_idle(&victim) {
                self.cache.remove(&dir).await;
                total -= 1;
                tracing::info!(version = %victim, "evicted from the disk cache (disk_cache_size)");
                metrics::counter!("hotswap_model_evictions_total", "from" => "disk").increment(1);
            }
        }
    }
}
