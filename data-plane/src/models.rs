//! The models room: model lifecycle on this worker. It follows the
//! model-store's Watch stream (the catalog), downloads versions into the
//! disk cache, loads them beside what serves, publishes them in the swap
//! table, retries failed loads with backoff, and evicts and unloads by the
//! cache limits and the version policy. The inference room asks it for
//! instances through the narrow interface below (`published`, `failing`,
//! `load`, `load_in_background`, `touch`) and never touches the table.

mod disk;
mod fetch;
mod instance;
mod load;
mod reconcile;
mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hotswap_common::catalog::{Catalog, Holdings, VersionKey};
use hotswap_common::subscription::{self, SubscriptionStats};
use hotswap_common::trust::ClusterCredentials;
use hotswap_proto::v1::ModelVersion;
use hotswap_storage::{Storage, StorageOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::backend::RuntimeConfig;
use crate::cache::{DiskCache, DownloadLimits};

pub use instance::Loaded;
pub(crate) use load::failure_error;
pub use table::{Failure, SlotStatus, TableStats};

use table::Table;

/// What the models room needs to start.
pub struct ModelsConfig {
    /// host:port (or URI) of the model-store.
    pub model_store: String,
    /// Where downloaded versions go; a fresh temporary folder when None.
    pub cache_dir: Option<PathBuf>,
    /// How buckets are reached.
    pub storage: StorageOptions,
    /// Where the inference runtimes' libraries are.
    pub runtimes: RuntimeConfig,
    /// Bounds on downloads (waits, tries, progress logs).
    pub downloads: DownloadLimits,
    /// Run one inference on each new version before it is published.
    pub warmup: bool,
    /// What the model-store trusts this worker by.
    pub cluster: ClusterCredentials,
}

/// Model lifecycle on one worker (see the module's doc).
pub struct Models {
    catalog: watch::Receiver<Arc<Catalog>>,
    table: Table,
    cache: DiskCache,
    subscription: Arc<SubscriptionStats>,
    /// Per API: held while a version is made room for and loaded, so that
    /// cache evictions never delete a folder another load is reading and
    /// concurrent loads cannot overshoot the limits.
    api_locks: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    warmup: bool,
    runtimes: RuntimeConfig,
    shutdown: CancellationToken,
    /// Keeps the default cache folder alive (and deletes it at the end).
    _cache_tmp: Option<tempfile::TempDir>,
}

impl Models {
    /// Starts following the model-store; must run inside a tokio runtime.
    /// Loads happen when [`Models::reconcile`] or a call asks.
    pub fn start(config: ModelsConfig) -> Result<Arc<Models>, Error> {
        let (cache_tmp, cache_dir) = match config.cache_dir {
            Some(dir) => (None, dir),
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("hotswap-cache-")
                    .tempdir()
                    .map_err(|source| Error::CacheFolder {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                let dir = tmp.path().to_path_buf();
                (Some(tmp), dir)
            }
        };
        let storage = Arc::new(Storage::new(config.storage));
        let cache =
            DiskCache::new(cache_dir.clone(), storage, config.downloads).map_err(|source| {
                Error::CacheFolder {
                    path: cache_dir.clone(),
                    source,
                }
            })?;
        let (tx, rx) = watch::channel(Arc::new(Catalog::default()));
        let models = Arc::new(Models {
            catalog: rx,
            table: Table::default(),
            cache,
            subscription: Arc::default(),
            api_locks: Default::default(),
            warmup: config.warmup,
            runtimes: config.runtimes,
            shutdown: CancellationToken::new(),
            _cache_tmp: cache_tmp,
        });
        tokio::spawn(subscription::run(
            config.model_store,
            config.cluster,
            tx,
            models.subscription.clone(),
            models.shutdown.clone(),
        ));
        Ok(models)
    }

    /// The catalog as last received.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// Changes whenever the catalog does.
    pub fn catalog_updates(&self) -> watch::Receiver<Arc<Catalog>> {
        self.catalog.clone()
    }

    /// The published instance of a version, if any.
    pub fn published(&self, v: &ModelVersion) -> Option<Arc<Loaded>> {
        self.table.published(&VersionKey::of(v))
    }

    /// Records a use of a version, for the LRU of `cache_size`.
    pub fn touch(&self, key: &VersionKey) {
        self.table.touch(key);
    }

    /// The last failure of a version's load, if its last load failed.
    pub fn failure(&self, key: &VersionKey) -> Option<Failure> {
        self.table.failure(key)
    }

    /// What RepositoryIndex reports of a version.
    pub fn status(&self, key: &VersionKey) -> Option<SlotStatus> {
        self.table.status(key)
    }

    /// Versions with a published instance (what this worker reports).
    pub fn held_versions(&self) -> Vec<VersionKey> {
        self.table.held()
    }

    /// Counters of the swap table.
    pub fn table_stats(&self) -> TableStats {
        self.table.stats()
    }

    /// Watch streams opened, snapshots applied, events applied.
    pub fn subscription_stats(&self) -> (u64, u64, u64) {
        self.subscription.get()
    }

    /// Deletes a folder of the disk cache.
    pub async fn remove_folder(&self, dir: &Path) {
        self.cache.remove(dir).await;
    }

    /// Stops following the model-store.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }
}

/// Held: published here; failing: in a failure backoff here.
impl Holdings for Models {
    fn held(&self, v: &ModelVersion) -> bool {
        self.published(v).is_some()
    }

    fn failing(&self, v: &ModelVersion) -> bool {
        self.table.failing(v)
    }
}

impl Drop for Models {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The first characters of a content hash, for logs.
pub(crate) fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
