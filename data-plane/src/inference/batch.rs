//! Dynamic batching (`server_side_batching`, per API): calls to one loaded
//! version that arrive within `batch_interval` of the first are joined
//! along their first dimension, run once, and split back, up to
//! `max_batch_size` rows in all (a call's own rows count toward it). One
//! batch runs at a time per version, as one model instance does in Triton:
//! while it runs the next one fills, so batches grow with the load, and a
//! lone call waits at most `batch_interval`. A filling batch also closes
//! shortly before the earliest deadline of the calls waiting, so that a
//! caller whose deadline is shorter than the interval is answered, not
//! timed out.
//!
//! Only calls that can share a run are joined: the same outputs asked for,
//! and inputs alike but for the first dimension. A joined run that fails is
//! repeated for each call alone, so an input the model refuses fails its
//! own caller only.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotswap_common::catalog::VersionKey;
use hotswap_proto::v1::Api;
use tokio::sync::{mpsc, oneshot};
// Tokio's clock for the waits, so that tests can pause it.
use tokio::time::Instant as Clock;

use super::stats::VersionStats;
use crate::Error;
use crate::backend::Model;
use crate::signature::Signature;
use crate::tensor::Tensor;

/// How long before the earliest caller deadline a filling batch closes:
/// time for the run and the answer's way back, so the call is answered
/// rather than timed out (a batched run of a small model takes well under
/// a millisecond; the caller's deadline is measured from when the worker
/// received the call).
const DEADLINE_MARGIN: Duration = Duration::from_millis(5);

/// An API's `server_side_batching`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Rows per run, at most.
    pub max_rows: usize,
    /// How long the first call of a batch waits for others.
    pub interval: Duration,
}

impl Batching {
    /// The API's batching, when it asks for batches of more than one row.
    pub fn of(api: &Api) -> Option<Batching> {
        let b = api.server_side_batching.as_ref()?;
        (b.max_batch_size > 1).then(|| Batching {
            max_rows: b.max_batch_size as usize,
            interval: b
                .batch_interval
                .and_then(|d| Duration::try_from(d).ok())
                .unwrap_or_default(),
        })
    }
}

/// Why a model cannot be batched, if it cannot: every input and output
/// needs a first dimension of any size (the batch).
pub fn unbatchable(signature: &Signature) -> Option<String> {
    signature
        .inputs
        .iter()
        .chain(&signature.outputs)
        .find(|s| s.shape.first() != Some(&-1))
        .map(|s| {
            format!(
                "`{}` has shape {}, not a first dimension of any size",
                s.name,
                crate::signature::shape_text(&s.shape)
            )
        })
}

/// Outputs, when the run began, how long it took (as `worker::run`).
pub type Ran = Result<(Vec<Tensor>, Instant, Duration), Error>;

struct Job {
    inputs: Vec<Tensor>,
    outputs: Vec<String>,
    rows: usize,
    /// On tokio's clock, as the timer that closes its batch.
    arrived: Clock,
    /// The caller's deadline, if it set one.
    deadline: Option<Clock>,
    reply: oneshot::Sender<Ran>,
}

impl Job {
    /// Whether the two can share a run.
    fn joins(&self, other: &Job) -> bool {
        self.outputs == other.outputs
            && self.inputs.len() == other.inputs.len()
            && self.inputs.iter().zip(&other.inputs).all(|(a, b)| {
                a.name == b.name && a.dtype() == b.dtype() && a.shape[1..] == b.shape[1..]
            })
    }
}

/// A version's batching queue. Dropped with the loaded instance, which
/// ends its task once the queue is empty.
pub struct Batcher {
    jobs: mpsc::UnboundedSender<Job>,
    settings: Batching,
}

impl Batcher {
    /// The batching queue of a loaded version, when its API asks for
    /// batches (`server_side_batching`) and the model has a batch
    /// dimension (else a warning, and calls run one by one).
    pub fn for_version(
        api: &Api,
        loaded: &crate::models::Loaded,
        stats: Arc<VersionStats>,
    ) -> Option<Batcher> {
        let settings = Batching::of(api)?;
        if let Some(why) = unbatchable(loaded.model.signature()) {
            tracing::warn!(version = %loaded.key, reason = %why,
                "server_side_batching is off for this version: calls run one by one");
            return None;
        }
        Some(Batcher::start(
            loaded.model.clone(),
            settings,
            &loaded.key,
            stats,
        ))
    }

    /// Starts the batching task of one loaded version (on the current
    /// runtime); `stats` counts the calls that ran in another's run.
    pub fn start(
        model: Arc<dyn Model>,
        settings: Batching,
        key: &VersionKey,
        stats: Arc<VersionStats>,
    ) -> Batcher {
        let (jobs, queue) = mpsc::unbounded_channel();
        let size = metrics::histogram!("hotswap_batch_size",
            "api" => key.api.clone(), "model" => key.model.clone());
        tokio::spawn(
            Queue {
                model,
                settings,
                queue,
                waiting: VecDeque::new(),
                size,
                stats,
            }
            .run(),
        );
        Batcher { jobs, settings }
    }

    /// The batching settings it was started with.
    pub fn settings(&self) -> Batching {
        self.settings
    }

    /// The rows of a call that may join a batch: every input has the same
    /// first dimension, at most `max_batch_size`. Larger calls run alone.
    pub fn rows(&self, inputs: &[Tensor]) -> Option<usize> {
        let first = usize::try_from(*inputs.first()?.shape.first()?).ok()?;
        let alike = inputs
            .iter()
            .all(|t| t.shape.first().and_then(|d| usize::try_from(*d).ok()) == Some(first));
        (alike && first >= 1 && first <= self.settings.max_rows).then_some(first)
    }

    /// Runs a call (of `rows` rows, from [`Batcher::rows`]) in the next
    /// batch that can take it; `deadline` is its caller's, if it set one.
    pub async fn run(
        &self,
        inputs: Vec<Tensor>,
        outputs: Vec<String>,
        rows: usize,
        deadline: Option<Instant>,
    ) -> Ran {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            inputs,
            outputs,
            rows,
            arrived: Clock::now(),
            deadline: deadline.map(Clock::from_std),
            reply,
        };
        if self.jobs.send(job).is_err() {
            return Err(Error::Inference("the batching queue stopped".to_owned()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(Error::Inference("the batching queue stopped".to_owned())))
    }
}

struct Queue {
    model: Arc<dyn Model>,
    settings: Batching,
    queue: mpsc::UnboundedReceiver<Job>,
    /// Calls received and not run yet, oldest first.
    waiting: VecDeque<Job>,
    size: metrics::Histogram,
    stats: Arc<VersionStats>,
}

impl Queue {
    async fn run(mut self) {
        loop {
            if self.waiting.is_empty() {
                match self.queue.recv().await {
                    Some(job) => self.waiting.push_back(job),
                    None => return,
                }
            }
            // A caller that gave up (deadline, disconnect) is not run.
            self.waiting.retain(|j| !j.reply.is_closed());
            if self.waiting.is_empty() {
                continue;
            }
            let batch = self.gather().await;
            self.execute(batch).await;
        }
    }

    /// The next batch: the oldest call and the calls that can join it,
    /// waiting for more until the batch is full, the oldest call has
    /// waited `batch_interval` (no wait when it waited that long already,
    /// behind the run before), or a waiting call's deadline is near.
    async fn gather(&mut self) -> Vec<Job> {
        let rows = |waiting: &VecDeque<Job>| -> usize {
            let first = &waiting[0];
            waiting
                .iter()
                .filter(|j| first.joins(j))
                .map(|j| j.rows)
                .sum()
        };
        while rows(&self.waiting) < self.settings.max_rows {
            match tokio::time::timeout_at(self.closes_at(), self.queue.recv()).await {
                Ok(Some(job)) => self.waiting.push_back(job),
                // Closed (the version is being dropped) or time is up.
                Ok(None) | Err(_) => break,
            }
        }
        let first = self.waiting.pop_front().expect("a call is waiting");
        let mut taken = first.rows;
        let mut batch = vec![first];
        let mut rest = VecDeque::with_capacity(self.waiting.len());
        for job in self.waiting.drain(..) {
            if taken + job.rows <= self.settings.max_rows && batch[0].joins(&job) {
                taken += job.rows;
                batch.push(job);
            } else {
                rest.push_back(job);
            }
        }
        self.waiting = rest;
        batch
    }

    /// When the filling batch closes: `batch_interval` after its oldest
    /// call arrived, or [`DEADLINE_MARGIN`] before the earliest deadline of
    /// the calls waiting. Those that cannot join it count too: they run
    /// only after it, so its wait is theirs.
    fn closes_at(&self) -> Clock {
        let interval = self.waiting[0].arrived + self.settings.interval;
        self.waiting
            .iter()
            .filter_map(|j| j.deadline)
            .map(|d| d.checked_sub(DEADLINE_MARGIN).unwrap_or(d))
            .fold(interval, Clock::min)
    }

    async fn execute(&self, batch: Vec<Job>) {
        let rows: usize = batch.iter().map(|j| j.rows).sum();
        let calls = batch.len() as u64;
        self.size.record(rows as f64);
        if batch.len() == 1 {
            let job = batch.into_iter().next().expect("one call");
            let ran = alone(&self.model, job.inputs, job.outputs).await;
            let _ = job.reply.send(ran);
            return;
        }
        let joined = join(&batch);
        let outputs = batch[0].outputs.clone();
        let model = self.model.clone();
        let ran = tokio::task::spawn_blocking(move || {
            let began = Instant::now();
            let r = model.infer(joined, &outputs);
            (r, began, began.elapsed())
        })
        .await;
        let split = match ran {
            Ok((Ok(out), began, took)) => {
                split(out, &batch, rows).map(|parts| (parts, began, took))
            }
            _ => None,
        };
        match split {
            Some((parts, began, took)) => {
                for (job, part) in batch.into_iter().zip(parts) {
                    let _ = job.reply.send(Ok((part, began, took)));
                }
                self.stats.ran_together(calls - 1);
            }
            // The joined run failed (or its outputs do not split by rows):
            // each call runs alone, and only a call that fails alone fails.
            None => {
                for job in batch {
                    let ran = alone(&self.model, job.inputs, job.outputs).await;
                    let _ = job.reply.send(ran);
                }
            }
        }
    }
}

/// One call's run, on a blocking thread.
async fn alone(model: &Arc<dyn Model>, inputs: Vec<Tensor>, outputs: Vec<String>) -> Ran {
    let model = model.clone();
    match tokio::task::spawn_blocking(move || {
        let began = Instant::now();
        let r = model.infer(inputs, &outputs);
        (r, began, began.elapsed())
    })
    .await
    {
        Ok((Ok(out), began, took)) => Ok((out, began, took)),
        Ok((Err(e), _, _)) => Err(e),
        // A backend panic fails this call only.
        Err(e) => Err(Error::Inference(format!("backend panicked: {e}"))),
    }
}

/// The calls' inputs joined along the first dimension (the calls can all
/// join the first: same names, types and other dimensions).
fn join(batch: &[Job]) -> Vec<Tensor> {
    let rows: usize = batch.iter().map(|j| j.rows).sum();
    (0..batch[0].inputs.len())
        .map(|i| {
            let first = &batch[0].inputs[i];
            let mut data = first.data.clone();
            for job in &batch[1..] {
                let appended = data.append(&job.inputs[i].data);
                debug_assert!(appended, "joined calls have the same element types");
            }
            let mut shape = first.shape.clone();
            shape[0] = rows as i64;
            Tensor {
                name: first.name.clone(),
                shape,
                data,
            }
        })
        .collect()
}

/// A joined run's outputs cut back into each call's rows; None when an
/// output's first dimension is not the batch's rows.
fn split(outputs: Vec<Tensor>, batch: &[Job], rows: usize) -> Option<Vec<Vec<Tensor>>> {
    let mut parts: Vec<Vec<Tensor>> = batch.iter().map(|_| Vec::new()).collect();
    for out in outputs {
        if out.shape.first() != Some(&(rows as i64)) || out.data.len() % rows != 0 {
            return None;
        }
        let per_row = out.data.len() / rows;
        let mut at = 0;
        for (job, part) in batch.iter().zip(parts.iter_mut()) {
            let mut shape = out.shape.clone();
            shape[0] = job.rows as i64;
            part.push(Tensor {
                name: out.name.clone(),
                shape,
                data: out.data.slice(at * per_row..(at + job.rows) * per_row),
            });
            at += job.rows;
        }
    }
    Some(parts)
}

#[cfg(test)]
mod tests;
