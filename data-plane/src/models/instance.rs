//! A loaded model version: what the models room hands the inference room.
//! Requests clone the `Arc` they found and finish on it; it is freed when
//! the last holder drops it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use hotswap_common::catalog::VersionKey;

use crate::backend::Model;
use crate::inference::Batcher;

/// A loaded model version.
pub struct Loaded {
    /// Which version this is.
    pub key: VersionKey,
    /// The content it was loaded from.
    pub content_hash: String,
    /// The backend's instance.
    pub model: Arc<dyn Model>,
    /// The version's dynamic batching queue, made by the inference room on
    /// first use (None: its API does not batch, or the model cannot be
    /// batched). Dropped with the instance, which ends the queue's task.
    pub(crate) batcher: OnceLock<Option<Batcher>>,
    /// The table's count of instances not yet freed.
    live: Arc<AtomicUsize>,
}

impl Loaded {
    /// Wraps a freshly loaded model, counted in `live` until dropped.
    pub(super) fn new(
        key: VersionKey,
        content_hash: String,
        model: Arc<dyn Model>,
        live: Arc<AtomicUsize>,
    ) -> Loaded {
        live.fetch_add(1, Ordering::SeqCst);
        Loaded {
            key,
            content_hash,
            model,
            batcher: OnceLock::new(),
            live,
        }
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}
