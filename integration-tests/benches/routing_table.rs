//! Routing at scale, in process: the control plane's registry and router
//! with 100 simulated workers (reached through the worker trait, never
//! called) and 10,000 models, while registrations and reports churn. It
//! reports the routing decision's latency (p50, p99, p99.9, max) and its
//! allocations, the registry's memory, and the time a report takes to
//! apply, with and without a change to the routing table; for models held
//! by three workers each and for every worker holding every model.
//!
//! Run with `cargo bench -p hotswap-integration-tests --bench routing_table`
//! (`-- --quick` for fewer decisions).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hotswap_common::catalog::VersionKey;
use hotswap_control_plane::registry::{Registry, Route};
use hotswap_control_plane::router::Router;
use hotswap_control_plane::worker::{BoxError, Connect, WorkerApi, WorkerError};
use hotswap_integration_tests::counting::{self, Counting};
use hotswap_proto::inference as pb;
use hotswap_proto::v1::{HeldVersion, PredictRequest, PredictResponse, WorkerReport};

#[global_allocator]
static ALLOC: Counting = Counting;

const WORKERS: usize = 100;
const MODELS: usize = 10_000;

/// A worker that exists only in the registry: routing never calls it.
struct Simulated;

fn never<T>() -> Result<T, WorkerError> {
    Err(WorkerError::Unreachable("a simulated worker".into()))
}

#[async_trait]
impl WorkerApi for Simulated {
    async fn predict(&self, _: Arc<PredictRequest>) -> Result<PredictResponse, WorkerError> {
        never()
    }
    async fn model_infer(
        &self,
        _: Arc<pb::ModelInferRequest>,
    ) -> Result<pb::ModelInferResponse, WorkerError> {
        never()
    }
    async fn model_metadata(
        &self,
        _: pb::ModelMetadataRequest,
    ) -> Result<pb::ModelMetadataResponse, WorkerError> {
        never()
    }
    async fn model_config(
        &self,
        _: pb::ModelConfigRequest,
    ) -> Result<pb::ModelConfigResponse, WorkerError> {
        never()
    }
    async fn model_statistics(
        &self,
        _: pb::ModelStatisticsRequest,
    ) -> Result<pb::ModelStatisticsResponse, WorkerError> {
        never()
    }
}

struct Simulate;

impl Connect for Simulate {
    fn connect(&self, _: &str, _: u32) -> Result<Arc<dyn WorkerApi>, BoxError> {
        Ok(Arc::new(Simulated))
    }
}

fn key(model: usize) -> VersionKey {
    VersionKey {
        api: format!("api-{model}"),
        model: "m".into(),
        version: 1,
    }
}

fn report(worker: usize, models: &[usize]) -> WorkerReport {
    WorkerReport {
        worker_id: format!("worker-{worker}"),
        address: format!("10.0.{}.{}:7000", worker / 250, worker % 250),
        held: models
            .iter()
            .map(|&m| {
                let k = key(m);
                HeldVersion {
                    api: k.api,
                    model: k.model,
                    version: k.version,
                }
            })
            .collect(),
        ready: true,
        ..Default::default()
    }
}

/// A layout: which models each worker holds.
struct Layout {
    name: &'static str,
    held: Vec<Vec<usize>>,
}

fn layouts() -> [Layout; 2] {
    [
        Layout {
            name: "3 workers per model",
            held: (0..WORKERS)
                .map(|w| {
                    (0..MODELS)
                        .filter(|m| (m + WORKERS - w) % WORKERS < 3)
                        .collect()
                })
                .collect(),
        },
        Layout {
            name: "every worker every model",
            held: (0..WORKERS).map(|_| (0..MODELS).collect()).collect(),
        },
    ]
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let decisions = if quick { 200_000 } else { 2_000_000 };
    println!();
    println!(
        "| layout | registry memory | report, no change p50 / p99 | report, one route changed p50 / p99 | decision p50 / p99 / p99.9 / max (churning) | allocations per decision |"
    );
    println!("|---|---|---|---|---|---|");
    for layout in layouts() {
        measure(&layout, decisions);
    }
}

fn measure(layout: &Layout, decisions: usize) {
    let before = counting::live_bytes();
    let registry = Arc::new(Registry::new(Arc::new(Simulate)));
    let sessions: Vec<u64> = (0..WORKERS).map(|_| registry.session()).collect();
    let reports: Vec<WorkerReport> = (0..WORKERS).map(|w| report(w, &layout.held[w])).collect();
    for (w, r) in reports.iter().enumerate() {
        registry.report(sessions[w], r).expect("registered");
    }
    let memory = counting::live_bytes().saturating_sub(before);
    let router = Arc::new(Router::new(registry.clone()));

    // Applying reports: a heartbeat that says what the last one said, and
    // one that adds a model (then one that takes it away again).
    let mut same = Vec::new();
    let mut changed = Vec::new();
    for i in 0..200 {
        let w = i % WORKERS;
        let start = Instant::now();
        registry.report(sessions[w], &reports[w]).unwrap();
        same.push(nanos(start.elapsed()));
        let mut more = layout.held[w].clone();
        let extra = (layout.held[w].last().copied().unwrap_or(0) + 1 + i) % MODELS;
        if !more.contains(&extra) {
            more.push(extra);
        } else {
            more.retain(|m| *m != extra);
        }
        let grown = report(w, &more);
        let start = Instant::now();
        registry.report(sessions[w], &grown).unwrap();
        changed.push(nanos(start.elapsed()));
        registry.report(sessions[w], &reports[w]).unwrap();
    }
    same.sort_unstable();
    changed.sort_unstable();

    // Decisions while another thread keeps reporting: heartbeats, changes,
    // and a worker leaving and registering again.
    let routes: Vec<Route> = (0..MODELS).map(|m| Route::Version(key(m))).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (registry, stop, reports) = (registry.clone(), stop.clone(), reports.clone());
        let held = layout.held.clone();
        std::thread::spawn(move || {
            let mut sessions = sessions;
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let w = i % WORKERS;
                match i % 3 {
                    0 => registry.report(sessions[w], &reports[w]).unwrap(),
                    1 => {
                        let fewer = &held[w][..held[w].len().saturating_sub(1)];
                        registry.report(sessions[w], &report(w, fewer)).unwrap();
                        registry.report(sessions[w], &reports[w]).unwrap();
                    }
                    _ => {
                        registry.end(sessions[w], &reports[w].worker_id);
                        sessions[w] = registry.session();
                        registry.report(sessions[w], &reports[w]).unwrap();
                    }
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            i
        })
    };
    let mut times = Vec::with_capacity(decisions);
    let mut chosen = 0usize;
    let mut pick = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..decisions {
        pick ^= pick << 13;
        pick ^= pick >> 7;
        pick ^= pick << 17;
        let route = &routes[(pick % MODELS as u64) as usize];
        let start = Instant::now();
        let worker = router.choose(route, None);
        times.push(nanos(start.elapsed()));
        chosen += usize::from(worker.is_some());
    }
    stop.store(true, Ordering::Relaxed);
    let churned = churn.join().expect("churn thread");
    assert_eq!(chosen, decisions, "every route has a holder");
    times.sort_unstable();

    // Allocations of a decision, with nothing else running.
    let allocated = counting::allocations();
    for route in routes.iter().cycle().take(100_000) {
        std::hint::black_box(router.choose(route, None));
    }
    let per_decision = (counting::allocations() - allocated) as f64 / 100_000.0;

    println!(
        "| {} | {:.1} MB | {:.1} / {:.1} µs | {:.2} / {:.2} ms | {} / {} / {} / {} ns ({churned} reports meanwhile) | {per_decision:.2} |",
        layout.name,
        memory as f64 / 1e6,
        percentile(&same, 0.5) as f64 / 1e3,
        percentile(&same, 0.99) as f64 / 1e3,
        percentile(&changed, 0.5) as f64 / 1e6,
        percentile(&changed, 0.99) as f64 / 1e6,
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&times, 0.999),
        times.last().copied().unwrap_or(0),
    );
}
