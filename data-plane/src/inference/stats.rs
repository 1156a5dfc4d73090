//! Per model version counters behind Triton's ModelStatistics: inference
//! counts and cumulative durations, success and failure apart, a success's
//! time split into Triton's phases (queue, compute input, infer, output).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hotswap_proto::inference::{InferStatistics, ModelStatistics, StatisticDuration};

use hotswap_common::catalog::VersionKey;
use hotswap_common::lock;

/// Triton-style statistics of one model version: request counts and the
/// time spent in each phase.
#[derive(Default)]
pub struct VersionStats {
    success: Counter,
    fail: Counter,
    /// Triton's phases of a successful request, each counted once per
    /// success (perf_analyzer checks the compute counts are equal, and
    /// finds the version it measures by `queue.count` growing).
    queue: Counter,
    compute_input: Counter,
    compute_infer: Counter,
    compute_output: Counter,
    /// Milliseconds since the epoch.
    last_inference: AtomicU64,
    /// Successful calls that ran in a batch with an earlier call (dynamic
    /// batching): Triton's execution count is the successes less these.
    joined: AtomicU64,
    /// The model's recent run time (nanoseconds, an exponential moving
    /// average over about the last eight runs): decides whether a call may
    /// run on an async thread.
    recent_infer_ns: AtomicU64,
    /// The same, for Prometheus (handles registered once per version).
    exported: Option<Exported>,
}

/// A version's Prometheus series: inferences by outcome, and Triton's
/// phases as histograms.
struct Exported {
    success: metrics::Counter,
    failure: metrics::Counter,
    queue: metrics::Histogram,
    compute_input: metrics::Histogram,
    compute_infer: metrics::Histogram,
    compute_output: metrics::Histogram,
    total: metrics::Histogram,
}

impl Exported {
    fn of(key: &VersionKey) -> Exported {
        let labels = [
            ("api", key.api.clone()),
            ("model", key.model.clone()),
            ("version", key.version.to_string()),
        ];
        let outcome = |o: &'static str| {
            let mut l = labels.to_vec();
            l.push(("outcome", o.to_owned()));
            metrics::counter!("hotswap_inferences_total", &l)
        };
        let phase = |p: &'static str| {
            let mut l = labels.to_vec();
            l.push(("phase", p.to_owned()));
            metrics::histogram!("hotswap_inference_duration_seconds", &l)
        };
        Exported {
            success: outcome("success"),
            failure: outcome("failure"),
            queue: phase("queue"),
            compute_input: phase("compute_input"),
            compute_infer: phase("compute_infer"),
            compute_output: phase("compute_output"),
            total: phase("total"),
        }
    }
}

/// Runs shorter than this, on average lately, may run inline: about what
/// handing a call to a blocking thread and back costs on two cores (a
/// thread wake-up each way), and within what an async task may hold its
/// thread between awaits.
const SHORT_RUN: Duration = Duration::from_micros(50);

/// Runs measured before a version's runs count as short.
const SHORT_RUN_EVIDENCE: u64 = 32;

/// Where a successful request's time went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    /// Checking and converting the inputs.
    pub input: Duration,
    /// Waiting for a thread to run the model on.
    pub queue: Duration,
    /// The model's run.
    pub infer: Duration,
    /// Handing the outputs back.
    pub output: Duration,
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
    /// A request answered: its total time and each phase, as Triton counts
    /// them.
    pub fn success(&self, total: Duration, phases: Phases) {
        self.success.add(total);
        self.queue.add(phases.queue);
        self.compute_input.add(phases.input);
        self.compute_infer.add(phases.infer);
        self.compute_output.add(phases.output);
        if let Some(e) = &self.exported {
            e.success.increment(1);
            e.queue.record(phases.queue.as_secs_f64());
            e.compute_input.record(phases.input.as_secs_f64());
            e.compute_infer.record(phases.infer.as_secs_f64());
            e.compute_output.record(phases.output.as_secs_f64());
            e.total.record(total.as_secs_f64());
        }
        let ns = u64::try_from(phases.infer.as_nanos()).unwrap_or(u64::MAX);
        // Racing updates may lose one sample; the average stays an average.
        let recent = self.recent_infer_ns.load(Ordering::Relaxed);
        self.recent_infer_ns
            .store(recent - recent / 8 + ns / 8, Ordering::Relaxed);
        self.touch();
    }

    /// Whether this version's recent runs were short enough to run the
    /// next one without a thread hop (and enough of them were seen).
    pub fn runs_short(&self) -> bool {
        self.compute_infer.count.load(Ordering::Relaxed) >= SHORT_RUN_EVIDENCE
            && self.recent_infer_ns.load(Ordering::Relaxed) < SHORT_RUN.as_nanos() as u64
    }

    /// `calls` calls ran (and succeeded) in a batch started for another.
    pub fn ran_together(&self, calls: u64) {
        self.joined.fetch_add(calls, Ordering::Relaxed);
    }

    /// A request that failed: counted as failed only (as Triton does).
    pub fn failure(&self, total: Duration) {
        self.fail.add(total);
        if let Some(e) = &self.exported {
            e.failure.increment(1);
        }
        self.touch();
    }

    fn touch(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.last_inference.store(now, Ordering::Relaxed);
    }

    /// The statistics as `ModelStatistics` reports them for `name`.
    pub fn to_proto(&self, key: &VersionKey, name: &str) -> ModelStatistics {
        let success = self.success.get();
        ModelStatistics {
            name: name.to_owned(),
            version: key.version.to_string(),
            last_inference: self.last_inference.load(Ordering::Relaxed),
            inference_count: success.count,
            execution_count: success
                .count
                .saturating_sub(self.joined.load(Ordering::Relaxed)),
            inference_stats: Some(InferStatistics {
                success: Some(success),
                fail: Some(self.fail.get()),
                queue: Some(self.queue.get()),
                compute_input: Some(self.compute_input.get()),
                compute_infer: Some(self.compute_infer.get()),
                compute_output: Some(self.compute_output.get()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// The statistics of every version this worker has served.
#[derive(Default)]
pub struct Stats {
    versions: Mutex<HashMap<VersionKey, Arc<VersionStats>>>,
}

impl Stats {
    /// The statistics of `key`, created empty on first use.
    pub fn of(&self, key: &VersionKey) -> Arc<VersionStats> {
        lock(&self.versions)
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(VersionStats {
                    exported: Some(Exported::of(key)),
                    ..VersionStats::default()
                })
            })
            .clone()
    }

    /// The counters of a version that has served requests.
    pub fn get(&self, key: &VersionKey) -> Option<Arc<VersionStats>> {
        lock(&self.versions).get(key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What perf_analyzer requires of ModelStatistics: every phase counted
    /// once per success (`queue.count` grows with each request, compute
    /// counts equal), failures apart, and a success's time covering its
    /// phases.
    #[test]
    fn phases_count_once_per_success_and_failures_apart() {
        let stats = VersionStats::default();
        let phases = Phases {
            input: Duration::from_micros(20),
            queue: Duration::from_micros(100),
            infer: Duration::from_micros(120),
            output: Duration::from_micros(5),
        };
        for _ in 0..3 {
            stats.success(Duration::from_micros(300), phases);
        }
        stats.failure(Duration::from_micros(50));
        let key = VersionKey {
            api: "iris".to_owned(),
            model: "iris".to_owned(),
            version: 2,
        };
        let proto = stats.to_proto(&key, "iris");
        assert_eq!(proto.version, "2");
        assert_eq!(proto.inference_count, 3);
        let s = proto.inference_stats.unwrap();
        let [success, fail, queue, input, infer, output] = [
            s.success,
            s.fail,
            s.queue,
            s.compute_input,
            s.compute_infer,
            s.compute_output,
        ]
        .map(Option::unwrap);
        assert_eq!((success.count, fail.count), (3, 1));
        for phase in [queue, input, infer, output] {
            assert_eq!(phase.count, success.count);
        }
        assert_eq!(queue.ns, 300_000);
        assert!(success.ns >= queue.ns + input.ns + infer.ns + output.ns);
    }

    fn ran(stats: &VersionStats, infer: Duration) {
        let phases = Phases {
            infer,
            ..Phases::default()
        };
        stats.success(infer, phases);
    }

    /// Short only after enough short runs; a run of long ones turns it
    /// back within a few calls, however many short ones came before.
    #[test]
    fn runs_short_follows_recent_runs() {
        let stats = VersionStats::default();
        for _ in 0..SHORT_RUN_EVIDENCE - 1 {
            ran(&stats, Duration::from_micros(5));
        }
        assert!(!stats.runs_short(), "too few runs seen");
        for _ in 0..10_000 {
            ran(&stats, Duration::from_micros(5));
        }
        assert!(stats.runs_short());
        for _ in 0..4 {
            ran(&stats, Duration::from_millis(2));
        }
        assert!(!stats.runs_short(), "four 2 ms runs after 10,000 short");
        for _ in 0..64 {
            ran(&stats, Duration::from_micros(5));
        }
        assert!(stats.runs_short(), "short again");
        stats.failure(Duration::from_secs(1));
        assert!(stats.runs_short(), "failures do not count as runs");
    }
}
