//! The swap table: for every model version the worker knows, the loaded
//! instance requests use, behind one atomic pointer, and the bookkeeping of
//! its loads (a load running, the last failure, the cached folder). Every
//! lock of the table is taken here and nowhere else; the rest of the worker
//! asks through the methods below. Publishing a new instance is one pointer
//! swap; a request clones the pointer it found and finishes on that
//! instance even if a newer one is published meanwhile; an instance is
//! freed when the last request holding it ends.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

use arc_swap::ArcSwapOption;
use hotswap_common::catalog::VersionKey;
use hotswap_common::lock;
use hotswap_proto::v1::ModelVersion;
use tokio::time::Instant;

use super::Loaded;
use crate::backend::Model;

pub use guards::{Background, Begin, LoadGuard};

/// Why the last load of a version's content failed, and when to retry.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The content that failed.
    pub content_hash: String,
    /// The failure's cause, as callers read it (the error itself went to
    /// the log when it happened).
    pub message: String,
    /// The failure is one no retry on this worker fixes (a model for
    /// hardware it lacks): requests get FAILED_PRECONDITION, not UNAVAILABLE.
    pub precondition: bool,
    /// Failed loads of this content in a row.
    pub attempts: u32,
    /// No load of this content is tried before then.
    pub retry_at: Instant,
}

impl Failure {
    /// Whether it is about `v`'s current content and its retry time has
    /// not come.
    fn holds_back(&self, v: &ModelVersion) -> bool {
        self.content_hash == v.content_hash && Instant::now() < self.retry_at
    }
}

/// Mutable bookkeeping of one slot; held briefly, never across an await.
#[derive(Default)]
struct SlotState {
    failure: Option<Failure>,
    /// A background load is scheduled or running.
    loading: bool,
    /// The cached folder and the content it holds.
    disk: Option<(PathBuf, String)>,
    /// A load is reading the folder: no eviction deletes it.
    in_use: bool,
}

struct Slot {
    current: ArcSwapOption<Loaded>,
    /// Serialises loads of this version: concurrent first requests wait for
    /// the one load instead of starting their own.
    load_lock: Arc<tokio::sync::Mutex<()>>,
    state: Mutex<SlotState>,
    /// Tick of the last use, for LRU.
    last_used: AtomicU64,
}

impl Slot {
    fn published(&self) -> bool {
        self.current.load().is_some()
    }

    fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }
}

/// What RepositoryIndex says of a version: published, loading, failed.
#[derive(Debug, Clone)]
pub struct SlotStatus {
    /// An instance is published.
    pub published: bool,
    /// A background load is scheduled or running.
    pub loading: bool,
    /// The last failure, if the last load failed.
    pub failure: Option<Failure>,
}

/// The table of every version the worker knows.
#[derive(Default)]
pub struct Table {
    slots: RwLock<HashMap<VersionKey, Arc<Slot>>>,
    /// Serialises "evict, then publish" so concurrent loads of one API never
    /// leave more instances published than its cache allows.
    publish: Mutex<()>,
    clock: AtomicU64,
    /// Instances created and not yet dropped, published or not.
    live: Arc<AtomicUsize>,
    loads: AtomicU64,
    /// Highest number of instances published at once, per API.
    high_water: Mutex<HashMap<String, usize>>,
}

impl Table {
    fn get(&self, key: &VersionKey) -> Option<Arc<Slot>> {
        read(&self.slots).get(key).cloned()
    }

    fn slot(&self, key: &VersionKey) -> Arc<Slot> {
        if let Some(slot) = self.get(key) {
            return slot;
        }
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        slots
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    current: ArcSwapOption::empty(),
                    load_lock: Arc::default(),
                    state: Mutex::default(),
                    last_used: AtomicU64::new(0),
                })
            })
            .clone()
    }

    fn entries(&self) -> Vec<(VersionKey, Arc<Slot>)> {
        read(&self.slots)
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    }

    /// The published instance of a version, if any.
    pub fn published(&self, key: &VersionKey) -> Option<Arc<Loaded>> {
        self.get(key).and_then(|s| s.current.load_full())
    }

    /// Whether `v`'s current content failed to load and its retry time has
    /// not come yet.
    pub fn failing(&self, v: &ModelVersion) -> bool {
        self.failure(&VersionKey::of(v))
            .is_some_and(|f| f.holds_back(v))
    }

    /// The last failure of a version's load, if its last load failed.
    pub fn failure(&self, key: &VersionKey) -> Option<Failure> {
        self.get(key).and_then(|s| lock(&s.state).failure.clone())
    }

    /// What RepositoryIndex reports of a version; None when the table has
    /// never seen it.
    pub fn status(&self, key: &VersionKey) -> Option<SlotStatus> {
        let slot = self.get(key)?;
        let state = lock(&slot.state);
        Some(SlotStatus {
            published: slot.published(),
            loading: state.loading,
            failure: state.failure.clone(),
        })
    }

    /// Records a use of the version, for LRU.
    pub fn touch(&self, key: &VersionKey) {
        if let Some(slot) = self.get(key) {
            let tick = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
            slot.last_used.fetch_max(tick, Ordering::Relaxed);
        }
    }

    /// Versions with a published instance.
    pub fn held(&self) -> Vec<VersionKey> {
        self.entries()
            .into_iter()
            .filter(|(_, s)| s.published())
            .map(|(k, _)| k)
            .collect()
    }

    /// Every version the table has a slot for.
    pub fn keys(&self) -> Vec<VersionKey> {
        read(&self.slots).keys().cloned().collect()
    }

    /// Whether a version's load has ended: published, or failed.
    pub fn settled(&self, key: &VersionKey) -> bool {
        self.get(key)
            .is_some_and(|s| s.published() || lock(&s.state).failure.is_some())
    }

    /// Whether a version is being loaded on demand: a slot without an
    /// instance or a failure yet.
    pub fn pending(&self, key: &VersionKey) -> bool {
        self.get(key)
            .is_some_and(|s| !s.published() && lock(&s.state).failure.is_none())
    }

    /// Per version: whether it is in memory and whether it is on disk.
    pub fn holdings(&self) -> Vec<(VersionKey, bool, bool)> {
        self.entries()
            .into_iter()
            .map(|(k, s)| {
                let on_disk = lock(&s.state).disk.is_some();
                (k, s.published(), on_disk)
            })
            .collect()
    }

    /// Marks a background load of `v` as scheduled, unless one is or `v` is
    /// in a failure backoff; the mark ends when the returned guard drops.
    pub fn begin_background(&self, v: &ModelVersion) -> Option<Background> {
        let slot = self.slot(&VersionKey::of(v));
        {
            let mut state = lock(&slot.state);
            let waiting = state.failure.as_ref().is_some_and(|f| f.holds_back(v));
            if state.loading || waiting {
                return None;
            }
            state.loading = true;
        }
        Some(Background(slot))
    }

    /// Starts a load of `v`'s current content, after any load of the same
    /// version running now: the instance when that content is published
    /// already, its failure while in its backoff, else the load's handle.
    pub async fn begin_load(&self, v: &ModelVersion) -> Begin {
        let slot = self.slot(&VersionKey::of(v));
        let guard = slot.load_lock.clone().lock_owned().await;
        if let Some(loaded) = slot.current.load_full()
            && loaded.content_hash == v.content_hash
        {
            return Begin::Published(loaded);
        }
        {
            let mut state = lock(&slot.state);
            if let Some(f) = &state.failure
                && f.holds_back(v)
            {
                return Begin::Failing(f.clone());
            }
            state.in_use = true;
        }
        Begin::Load(LoadGuard {
            slot,
            _serial: guard,
        })
    }

    /// Wraps a freshly loaded model (counted as live until dropped).
    pub fn instance(&self, key: VersionKey, content_hash: String, model: Arc<dyn Model>) -> Loaded {
        self.loads.fetch_add(1, Ordering::Relaxed);
        Loaded::new(key, content_hash, model, self.live.clone())
    }

    /// Forgets a version: requests holding its instance finish on it.
    /// Returns whether it was published and its cached folder, to delete.
    pub fn remove(&self, key: &VersionKey) -> Option<Removed> {
        let slot = self
            .slots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)?;
        let published = slot.current.swap(None).is_some();
        let disk = lock(&slot.state).disk.take().map(|(dir, _)| dir);
        Some(Removed { published, disk })
    }

    /// Versions of `api` with files in the disk cache.
    pub fn on_disk(&self, api: &str) -> usize {
        self.entries()
            .iter()
            .filter(|(k, s)| k.api == api && lock(&s.state).disk.is_some())
            .count()
    }

    /// Versions of `keep`'s API whose folders may be deleted to make room,
    /// best first: not `keep`, not being read by a load, those not in memory
    /// before those in memory, least recently used first.
    pub fn disk_victims(&self, keep: &VersionKey) -> Vec<VersionKey> {
        let mut candidates: Vec<_> = self
            .entries()
            .into_iter()
            .filter(|(k, s)| {
                let state = lock(&s.state);
                k.api == keep.api && k != keep && state.disk.is_some() && !state.in_use
            })
            .map(|(k, s)| ((s.published(), s.last_used()), k))
            .collect();
        candidates.sort();
        candidates.into_iter().map(|(_, k)| k).collect()
    }

    /// Takes a version's cached folder for deletion, unless a load began
    /// reading it since it was picked.
    pub fn take_disk_if_idle(&self, key: &VersionKey) -> Option<PathBuf> {
        let slot = self.get(key)?;
        let mut state = lock(&slot.state);
        if state.in_use {
            return None;
        }
        state.disk.take().map(|(dir, _)| dir)
    }

    /// With `cache_size` > 0, unpublishes the least recently used instances
    /// of `keep`'s API other than `keep` until fewer than `cache_size` are
    /// published, making room for `keep`. Returns the evicted versions.
    fn evict_locked(&self, keep: &VersionKey, cache_size: usize) -> Vec<VersionKey> {
        if cache_size == 0 {
            return Vec::new();
        }
        let mut resident: Vec<(u64, VersionKey, Arc<Slot>)> = self
            .entries()
            .into_iter()
            .filter(|(k, s)| k.api == keep.api && k != keep && s.published())
            .map(|(k, s)| (s.last_used(), k, s))
            .collect();
        resident.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let mut evicted = Vec::new();
        while resident.len() >= cache_size {
            let (_, key, victim) = resident.remove(0);
            victim.current.store(None);
            evicted.push(key);
        }
        evicted
    }

    /// Publishes `loaded` in `slot`, first evicting the least recently used
    /// instances of its API beyond `cache_size` (see `evict_locked`), in one
    /// step, so published instances never exceed the limit.
    fn publish(&self, slot: &Slot, loaded: Arc<Loaded>, cache_size: usize) -> Published {
        let _guard = lock(&self.publish);
        let key = loaded.key.clone();
        // Under the publish lock, so two loads finishing together cannot
        // both count as the model's first.
        let swap = self
            .entries()
            .iter()
            .any(|(k, s)| k.api == key.api && k.model == key.model && s.published());
        let evicted = self.evict_locked(&key, cache_size);
        slot.current.store(Some(loaded));
        let published = self
            .entries()
            .iter()
            .filter(|(k, s)| k.api == key.api && s.published())
            .count();
        let mut high = lock(&self.high_water);
        let entry = high.entry(key.api).or_default();
        *entry = (*entry).max(published);
        Published { evicted, swap }
    }

    /// Counters for operators and tests.
    pub fn stats(&self) -> TableStats {
        let entries = self.entries();
        TableStats {
            published: entries.iter().filter(|(_, s)| s.published()).count(),
            live: self.live.load(Ordering::SeqCst),
            loads: self.loads.load(Ordering::Relaxed),
            on_disk: entries
                .iter()
                .filter(|(_, s)| lock(&s.state).disk.is_some())
                .count(),
            high_water: lock(&self.high_water).clone(),
        }
    }
}

/// What a publish did beside publishing.
#[derive(Debug)]
pub struct Published {
    /// Versions evicted from memory to make room.
    pub evicted: Vec<VersionKey>,
    /// The model was already serving (this version's earlier content, or
    /// another version): the new content swapped in beside or over it,
    /// rather than being the model's first.
    pub swap: bool,
}

/// What removing a version gave up.
#[derive(Debug)]
pub struct Removed {
    /// It had a published instance.
    pub published: bool,
    /// Its cached folder, to delete.
    pub disk: Option<PathBuf>,
}

/// Counters for operators and tests.
#[derive(Debug, Clone, Default)]
pub struct TableStats {
    /// Versions with a published instance.
    pub published: usize,
    /// Instances not yet freed (published, or still held by a request).
    pub live: usize,
    /// Successful loads since start.
    pub loads: u64,
    /// Versions with files in the disk cache.
    pub on_disk: usize,
    /// Per API, the most instances published at the same time.
    pub high_water: HashMap<String, usize>,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

mod guards;
#[cfg(test)]
mod tests;
