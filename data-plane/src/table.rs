//! The swap table: for every model version the worker knows, the loaded
//! instance requests use, behind one atomic pointer. Publishing a new
//! instance is one pointer swap; a request clones the pointer it found and
//! finishes on that instance even if a newer one is published meanwhile;
//! an instance is freed when the last request holding it ends.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use arc_swap::ArcSwapOption;

use crate::backend::Model;
use crate::batch::Batcher;
use hotswap_common::catalog::VersionKey;
use hotswap_common::lock;

/// A loaded model version.
pub struct Loaded {
    pub key: VersionKey,
    /// The content it was loaded from.
    pub content_hash: String,
    pub model: Arc<dyn Model>,
    /// The version's dynamic batching queue, when its API batches and the
    /// model has a batch dimension.
    pub batcher: Option<Batcher>,
    live: Arc<AtomicUsize>,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why the last load of a version's content failed, and when to retry.
#[derive(Debug, Clone)]
pub struct Failure {
    pub content_hash: String,
    /// The failure's cause, as callers read it (the error itself went to
    /// the log when it happened).
    pub message: String,
    /// The failure is one no retry on this worker fixes (a model for
    /// hardware it lacks): requests get FAILED_PRECONDITION, not UNAVAILABLE.
    pub precondition: bool,
    pub attempts: u32,
    pub retry_at: Instant,
}

impl Failure {
    /// What a request for the failed version `what` gets.
    pub fn error(&self, what: String) -> crate::Error {
        if self.precondition {
            return crate::Error::FailedPrecondition(self.message.clone());
        }
        let wait = self.retry_at.saturating_duration_since(Instant::now());
        crate::Error::LoadFailed {
            what,
            message: if wait.is_zero() {
                self.message.clone()
            } else {
                format!("{} (retrying in {}s)", self.message, wait.as_secs() + 1)
            },
        }
    }
}

/// Mutable bookkeeping of one slot; held briefly, never across an await.
#[derive(Default)]
pub struct SlotState {
    pub failure: Option<Failure>,
    /// A background load is scheduled or running.
    pub loading: bool,
    /// The cached folder and the content it holds.
    pub disk: Option<(PathBuf, String)>,
    /// A load is reading the folder: no eviction deletes it.
    pub in_use: bool,
}

pub struct Slot {
    pub current: ArcSwapOption<Loaded>,
    /// Serialises loads of this version: concurrent first requests wait for
    /// the one load instead of starting their own.
    pub load_lock: tokio::sync::Mutex<()>,
    pub state: Mutex<SlotState>,
    /// Tick of the last use, for LRU.
    last_used: AtomicU64,
}

impl Slot {
    pub fn touch(&self, tick: u64) {
        self.last_used.fetch_max(tick, Ordering::Relaxed);
    }

    pub fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }
}

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
    pub fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn get(&self, key: &VersionKey) -> Option<Arc<Slot>> {
        lock_read(&self.slots).get(key).cloned()
    }

    pub fn slot(&self, key: &VersionKey) -> Arc<Slot> {
        if let Some(slot) = self.get(key) {
            return slot;
        }
        let mut slots = self
            .slots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    current: ArcSwapOption::empty(),
                    load_lock: tokio::sync::Mutex::new(()),
                    state: Mutex::new(SlotState::default()),
                    last_used: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// Forgets a version: requests holding its instance finish on it.
    pub fn remove(&self, key: &VersionKey) -> Option<Arc<Slot>> {
        let slot = self
            .slots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key)?;
        slot.current.store(None);
        Some(slot)
    }

    pub fn entries(&self) -> Vec<(VersionKey, Arc<Slot>)> {
        lock_read(&self.slots)
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    }

    /// Wraps a freshly loaded model.
    pub fn instance(
        &self,
        key: VersionKey,
        content_hash: String,
        model: Arc<dyn Model>,
        batcher: Option<Batcher>,
    ) -> Loaded {
        self.live.fetch_add(1, Ordering::SeqCst);
        self.loads.fetch_add(1, Ordering::Relaxed);
        Loaded {
            key,
            content_hash,
            model,
            batcher,
            live: self.live.clone(),
        }
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
            .filter(|(k, s)| k.api == keep.api && k != keep && s.current.load().is_some())
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

    /// Publishes `loaded` in its slot, first evicting the least recently
    /// used instances of its API beyond `cache_size` (see `evict_locked`),
    /// in one step, so published instances never exceed the limit.
    pub fn publish(&self, slot: &Slot, loaded: Arc<Loaded>, cache_size: usize) -> Published {
        let _guard = lock(&self.publish);
        let key = loaded.key.clone();
        // Under the publish lock, so two loads finishing together cannot
        // both count as the model's first.
        let swap = self
            .entries()
            .iter()
            .any(|(k, s)| k.api == key.api && k.model == key.model && s.current.load().is_some());
        let evicted = self.evict_locked(&key, cache_size);
        slot.current.store(Some(loaded));
        let published = self
            .entries()
            .iter()
            .filter(|(k, s)| k.api == key.api && s.current.load().is_some())
            .count();
        let mut high = lock(&self.high_water);
        let entry = high.entry(key.api).or_default();
        *entry = (*entry).max(published);
        Published { evicted, swap }
    }

    pub fn stats(&self) -> TableStats {
        let entries = self.entries();
        TableStats {
            published: entries
                .iter()
                .filter(|(_, s)| s.current.load().is_some())
                .count(),
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

fn lock_read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
