//! The handles a load holds on its slot: the mark of a background load,
//! and the guard of a running load (one per version at a time; its folder
//! safe from eviction), through which the load records what happened.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hotswap_common::lock;
use tokio::time::Instant;

use super::{Failure, Published, Slot, Table};
use crate::models::Loaded;

/// A background load's mark on its slot; cleared when dropped.
pub struct Background(pub(super) Arc<Slot>);

impl Drop for Background {
    fn drop(&mut self) {
        lock(&self.0.state).loading = false;
    }
}

/// How a load begins (see [`Table::begin_load`]).
pub enum Begin {
    /// The content asked for is published already.
    Published(Arc<Loaded>),
    /// The content failed to load and its retry time has not come.
    Failing(Failure),
    /// Go ahead: the load holds the version until the guard drops.
    Load(LoadGuard),
}

/// A running load of one version: no other load of the version runs and
/// no eviction deletes its cached folder until it is dropped.
pub struct LoadGuard {
    pub(super) slot: Arc<Slot>,
    pub(super) _serial: tokio::sync::OwnedMutexGuard<()>,
}

impl LoadGuard {
    /// Records the folder now holding `content_hash`; returns the folder of
    /// earlier content the slot held, if another, to delete.
    pub fn set_disk(&self, dir: PathBuf, content_hash: &str) -> Option<PathBuf> {
        let mut state = lock(&self.slot.state);
        let old = state.disk.replace((dir.clone(), content_hash.to_owned()));
        old.map(|(old_dir, _)| old_dir)
            .filter(|old_dir| *old_dir != dir)
    }

    /// Gives up the slot's cached folder (to delete it).
    pub fn take_disk(&self) -> Option<PathBuf> {
        lock(&self.slot.state).disk.take().map(|(dir, _)| dir)
    }

    /// The content hash of the instance serving now, if any.
    pub fn serving(&self) -> Option<String> {
        self.slot
            .current
            .load()
            .as_ref()
            .map(|l| l.content_hash.clone())
    }

    /// Records a failed load of `content_hash`; `delay(attempts)` is the
    /// wait before the next try. Returns the failure recorded. What serves
    /// keeps serving.
    pub fn fail(
        &self,
        content_hash: &str,
        message: String,
        precondition: bool,
        delay: impl FnOnce(u32) -> Duration,
    ) -> Failure {
        let mut state = lock(&self.slot.state);
        let attempts = match &state.failure {
            Some(f) if f.content_hash == content_hash => f.attempts + 1,
            _ => 1,
        };
        let failure = Failure {
            content_hash: content_hash.to_owned(),
            message,
            precondition,
            attempts,
            retry_at: Instant::now() + delay(attempts),
        };
        state.failure = Some(failure.clone());
        failure
    }

    /// Publishes the new instance (see [`Table::publish`]) and clears the
    /// version's failure.
    pub fn publish(self, table: &Table, loaded: Arc<Loaded>, cache_size: usize) -> Published {
        lock(&self.slot.state).failure = None;
        table.publish(&self.slot, loaded, cache_size)
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        lock(&self.slot.state).in_use = false;
    }
}
