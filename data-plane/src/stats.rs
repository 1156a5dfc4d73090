//! Per model version counters behind Triton's ModelStatistics: inference
//! counts and cumulative durations, success and failure apart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hotswap_proto::inference::{InferStatistics, ModelStatistics, StatisticDuration};

use hotswap_common::catalog::VersionKey;
use hotswap_common::lock;

#[derive(Default)]
pub struct VersionStats {
    success: Counter,
    fail: Counter,
    compute_infer: Counter,
    /// Milliseconds since the epoch.
    last_inference: AtomicU64,
}

#[derive(Default)]
struct Counter {
    count: AtomicU64,
    ns: AtomicU64,
}

impl Counter {
    fn add(&self, d: Duration) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.ns.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn get(&self) -> StatisticDuration {
        StatisticDuration {
            count: self.count.load(Ordering::Relaxed),
            ns: self.ns.load(Ordering::Relaxed),
        }
    }
}

impl VersionStats {
    pub fn record(&self, total: Duration, compute: Option<Duration>, ok: bool) {
        if ok {
            self.success.add(total);
        } else {
            self.fail.add(total);
        }
        if let Some(c) = compute {
            self.compute_infer.add(c);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.last_inference.store(now, Ordering::Relaxed);
    }

    pub fn to_proto(&self, key: &VersionKey, name: &str) -> ModelStatistics {
        let success = self.success.get();
        ModelStatistics {
            name: name.to_owned(),
            version: key.version.to_string(),
            last_inference: self.last_inference.load(Ordering::Relaxed),
            inference_count: success.count,
            execution_count: success.count,
            inference_stats: Some(InferStatistics {
                success: Some(success),
                fail: Some(self.fail.get()),
                compute_infer: Some(self.compute_infer.get()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

#[derive(Default)]
pub struct Stats {
    versions: Mutex<HashMap<VersionKey, Arc<VersionStats>>>,
}

impl Stats {
    pub fn of(&self, key: &VersionKey) -> Arc<VersionStats> {
        lock(&self.versions).entry(key.clone()).or_default().clone()
    }

    /// The counters of a version that has served requests.
    pub fn get(&self, key: &VersionKey) -> Option<Arc<VersionStats>> {
        lock(&self.versions).get(key).cloned()
    }
}
