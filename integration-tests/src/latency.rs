//! What the benchmarks measure and report: latencies summed up as p50, p99
//! and throughput, and the in-process baseline (a backend called straight
//! from threads) that served paths are compared with.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotswap_data_plane::backend::Model;
use hotswap_data_plane::tensor::{Tensor, TensorData};

/// Latency percentiles and throughput of a run.
pub struct Stats {
    /// The median latency.
    pub p50: Duration,
    /// The 99th percentile latency.
    pub p99: Duration,
    /// Calls per second.
    pub per_second: f64,
}

/// Percentiles of `latencies` and calls per second over `wall`.
pub fn summarize(mut latencies: Vec<Duration>, wall: Duration) -> Stats {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        per_second: latencies.len() as f64 / wall.as_secs_f64(),
    }
}

/// `d` in microseconds, for reports.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// `total` calls of the iris-like model's input straight into the backend,
/// from `concurrency` threads.
pub fn in_process<M: Model>(model: &Arc<M>, concurrency: usize, total: usize) -> Stats {
    in_process_with(model, concurrency, total, || {
        Tensor::new(
            "input",
            vec![1, 4],
            TensorData::F32(vec![5.1, 3.5, 1.4, 0.2]),
        )
        .unwrap()
    })
}

/// As [`in_process`], each call's input made by `input` (inside the timed
/// call, as a server makes it from the request).
pub fn in_process_with<M: Model>(
    model: &Arc<M>,
    concurrency: usize,
    total: usize,
    input: impl Fn() -> Tensor + Clone + Send + 'static,
) -> Stats {
    let per_thread = total / concurrency;
    let start = Instant::now();
    let threads: Vec<_> = (0..concurrency)
        .map(|_| {
            let model = model.clone();
            let input = input.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::with_capacity(per_thread);
                for _ in 0..per_thread {
                    let t = Instant::now();
                    model.infer(vec![input()], &[]).expect("infer");
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let all = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    summarize(all, start.elapsed())
}

/// How long a load runs: a number of calls in all, or a time.
#[derive(Clone, Copy)]
pub enum Until {
    /// This many calls in all.
    Calls(usize),
    /// Calls until this much time has passed.
    Elapsed(Duration),
}

/// Calls `call` without pause from one task per client until `until`,
/// timing each call. A task passes `call` a clone of its client (gRPC
/// clients are handles, cheap to clone), so the calls of one task share its
/// connection.
pub async fn concurrent<C, F, Fut>(clients: Vec<C>, until: Until, call: F) -> Stats
where
    C: Clone + Send + 'static,
    F: Fn(C) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks = clients.len();
    let handles: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    match until {
                        Until::Calls(total) if latencies.len() >= total / tasks => break,
                        Until::Elapsed(d) if start.elapsed() >= d => break,
                        _ => {}
                    }
                    let t = Instant::now();
                    call(client.clone()).await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.expect("client task"));
    }
    summarize(all, start.elapsed())
}
