//! The pool's state machine with stand-in processes (no child, no Python):
//! the test plays each process's part, reading the calls the pool sends it
//! and answering them as a child would. Time is tokio's paused clock, so
//! the call time limit passes at once and exactly.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

use super::process::Process;
use super::supervise::{Exit, Launch, Launched};
use super::{ProcessConfig, PythonPool, PythonPredictorSpec};
use crate::error::{CallError, StartError};
use crate::protocol::{FromChild, Output, Payload, PredictorClass, Request, ToChild};

/// The call time limit of every pool here.
const LIMIT: Duration = Duration::from_secs(10);

/// Starts stand-in processes and hands each to the test.
struct StandIns {
    started: mpsc::UnboundedSender<StandIn>,
    next_pid: AtomicU32,
    /// Starts fail while set (a predictor that cannot come back).
    refuse: AtomicBool,
}

#[async_trait::async_trait]
impl Launch for StandIns {
    async fn launch(&self) -> Result<Launched, StartError> {
        let pid = self.next_pid.fetch_add(1, Ordering::SeqCst);
        if self.refuse.load(Ordering::SeqCst) {
            return Err(StartError::Exited { pid });
        }
        let (outbox, frames) = mpsc::unbounded_channel();
        let process = Process::new(pid, outbox);
        let ended = CancellationToken::new();
        let killed = Arc::new(AtomicBool::new(false));
        let _ = self.started.send(StandIn {
            process: process.clone(),
            frames,
            ended: ended.clone(),
            killed: killed.clone(),
        });
        Ok((process, Box::new(Ends { ended, killed })))
    }
}

/// The operating system's side of a stand-in: it ends when the test ends
/// it or the pool kills it.
struct Ends {
    ended: CancellationToken,
    killed: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Exit for Ends {
    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.ended.cancelled().await;
        Ok(ExitStatus::from_raw(0))
    }

    async fn kill(&mut self) -> std::io::Result<()> {
        self.killed.store(true, Ordering::SeqCst);
        self.ended.cancel();
        Ok(())
    }
}

/// A stand-in process as the test drives it.
struct StandIn {
    process: Arc<Process>,
    /// What the pool sent it.
    frames: mpsc::UnboundedReceiver<ToChild>,
    ended: CancellationToken,
    killed: Arc<AtomicBool>,
}

impl StandIn {
    fn pid(&self) -> u32 {
        self.process.pid
    }

    /// The id of the next call the pool sends this process.
    async fn next_call(&mut self) -> u64 {
        match timeout(Duration::from_secs(1), self.frames.recv()).await {
            Ok(Some(ToChild::Predict { id, .. })) => id,
            other => panic!("expected a call on process {}, got {other:?}", self.pid()),
        }
    }

    /// No call reaches this process for a while (well within the limit).
    async fn idle(&mut self) -> bool {
        timeout(Duration::from_secs(1), self.frames.recv())
            .await
            .is_err()
    }

    /// Answers call `id`; `post_predict`: the class's `post_predict` runs
    /// next on its thread.
    fn answer(&self, id: u64, post_predict: bool) {
        let answer = FromChild::Answer {
            id,
            output: output(id),
            post_predict,
        };
        assert!(self.process.receive(answer).is_none());
    }

    /// Call `id`'s `post_predict` is over.
    fn freed(&self, id: u64) {
        assert!(self.process.receive(FromChild::Freed { id }).is_none());
    }

    /// The process exits on its own (a crash).
    fn exit(&self) {
        self.ended.cancel();
    }

    fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

struct Harness {
    pool: Arc<PythonPool>,
    started: mpsc::UnboundedReceiver<StandIn>,
    launcher: Arc<StandIns>,
}

/// A pool of `processes` stand-ins with `threads` each, at most
/// `max_queued` calls waiting.
async fn pool(processes: usize, threads: u32, max_queued: usize) -> Harness {
    let spec = PythonPredictorSpec {
        source: String::new(),
        file: "predictor.py".to_owned(),
        config: serde_json::Value::Null,
        processes,
        cache_size: 0,
        class: PredictorClass::Python,
        threads,
        process: ProcessConfig {
            call_timeout: LIMIT,
            max_queued,
            ..ProcessConfig::default()
        },
        models: None,
        env: BTreeMap::new(),
    };
    let (tell, started) = mpsc::unbounded_channel();
    let launcher = Arc::new(StandIns {
        started: tell,
        next_pid: AtomicU32::new(100),
        refuse: AtomicBool::new(false),
    });
    let pool = PythonPool::start_with(Arc::new(spec), launcher.clone())
        .await
        .expect("stand-ins start");
    Harness {
        pool: Arc::new(pool),
        started,
        launcher,
    }
}

impl Harness {
    /// The next process the pool starts (restarts wait out a backoff of a
    /// few seconds at most).
    async fn started(&mut self) -> StandIn {
        match timeout(Duration::from_secs(30), self.started.recv()).await {
            Ok(Some(process)) => process,
            _ => panic!("no process started"),
        }
    }

    /// A call in its own task, as a request handler makes it.
    fn call(&self) -> JoinHandle<Result<Output, CallError>> {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let request = Request {
                payload: Payload::Json(serde_json::json!({"x": 1})),
                query_params: BTreeMap::new(),
                headers: BTreeMap::new(),
            };
            pool.predict(request).await
        })
    }
}

fn output(id: u64) -> Output {
    Output::Json {
        value: serde_json::json!(id),
    }
}

/// What a call came to, within a bound (a broken pool would leave it
/// waiting for good).
async fn outcome(call: JoinHandle<Result<Output, CallError>>) -> Result<Output, CallError> {
    match timeout(LIMIT * 6, call).await {
        Ok(result) => result.expect("the call's task"),
        Err(_) => panic!("the call never ended"),
    }
}

/// Lets the pool's tasks run (a moment of the paused clock).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_call_claims_a_thread_and_frees_it_at_its_answer() {
    let mut h = pool(1, 1, 8).await;
    let mut p = h.started().await;
    let first = h.call();
    let id = p.next_call().await;
    let second = h.call();
    assert!(p.idle().await, "a second call went to the busy thread");
    p.answer(id, false);
    assert_eq!(outcome(first).await.unwrap(), output(id));
    let id2 = p.next_call().await;
    p.answer(id2, false);
    assert_eq!(outcome(second).await.unwrap(), output(id2));
}

#[tokio::test(start_paused = true)]
async fn a_thread_running_post_predict_stays_claimed_until_freed() {
    let mut h = pool(1, 1, 8).await;
    let mut p = h.started().await;
    let first = h.call();
    let id = p.next_call().await;
    let second = h.call();
    p.answer(id, true);
    // The caller has its answer before post_predict ends.
    assert_eq!(outcome(first).await.unwrap(), output(id));
    assert!(
        p.idle().await,
        "the thread went to another call while post_predict ran"
    );
    p.freed(id);
    let id2 = p.next_call().await;
    p.answer(id2, false);
    assert_eq!(outcome(second).await.unwrap(), output(id2));
}

#[tokio::test(start_paused = true)]
async fn a_post_predict_past_the_limit_gets_its_process_replaced() {
    let mut h = pool(1, 1, 8).await;
    let mut p = h.started().await;
    let first = h.call();
    let id = p.next_call().await;
    let second = h.call();
    let answered = Instant::now();
    p.answer(id, true);
    assert_eq!(outcome(first).await.unwrap(), output(id));
    // post_predict never ends: within another call time limit its process
    // goes, and the waiting call runs on the new one.
    let mut q = h.started().await;
    let replaced = answered.elapsed();
    assert!(
        replaced >= LIMIT && replaced < LIMIT * 2,
        "replaced after {replaced:?}"
    );
    assert!(p.killed(), "the stuck process was left running");
    let id2 = q.next_call().await;
    q.answer(id2, false);
    assert_eq!(outcome(second).await.unwrap(), output(id2));
    assert!(p.idle().await, "a call went to the replaced process");
}

#[tokio::test(start_paused = true)]
async fn a_call_past_its_time_limit_times_out_and_its_process_is_replaced() {
    let mut h = pool(1, 1, 8).await;
    let mut p = h.started().await;
    let sent = Instant::now();
    let call = h.call();
    p.next_call().await;
    match outcome(call).await {
        Err(CallError::TimedOut { limit, .. }) => assert_eq!(limit, LIMIT),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(sent.elapsed(), LIMIT);
    settle().await;
    assert!(p.killed(), "the stuck process was left running");
    let mut q = h.started().await;
    let replaced = sent.elapsed();
    // After the restart backoff's first delay.
    assert!(
        replaced < LIMIT + Duration::from_secs(1),
        "replaced after {replaced:?}"
    );
    assert_eq!(h.pool.pids(), [q.pid()]);
    let next = h.call();
    let id = q.next_call().await;
    q.answer(id, false);
    assert_eq!(outcome(next).await.unwrap(), output(id));
}

#[tokio::test(start_paused = true)]
async fn a_process_that_dies_fails_its_calls_and_is_replaced() {
    let mut h = pool(1, 1, 8).await;
    let mut p = h.started().await;
    let call = h.call();
    p.next_call().await;
    p.exit();
    match outcome(call).await {
        Err(CallError::ProcessDied { pid, .. }) => assert_eq!(pid, p.pid()),
        other => panic!("expected the process's death, got {other:?}"),
    }
    let mut q = h.started().await;
    assert!(!p.killed());
    assert_eq!(h.pool.pids(), [q.pid()]);
    let next = h.call();
    let id = q.next_call().await;
    q.answer(id, false);
    assert_eq!(outcome(next).await.unwrap(), output(id));
}

#[tokio::test(start_paused = true)]
async fn with_no_process_a_call_waits_at_most_the_time_limit() {
    let mut h = pool(1, 1, 8).await;
    let p = h.started().await;
    h.launcher.refuse.store(true, Ordering::SeqCst);
    p.exit();
    settle().await;
    let asked = Instant::now();
    match outcome(h.call()).await {
        Err(CallError::NoProcess { .. }) => {}
        other => panic!("expected no process, got {other:?}"),
    }
    let waited = asked.elapsed();
    assert!(
        waited >= LIMIT && waited < LIMIT + Duration::from_secs(1),
        "waited {waited:?}"
    );
    // The restarts go on; once one succeeds, calls run again.
    h.launcher.refuse.store(false, Ordering::SeqCst);
    let mut q = h.started().await;
    let next = h.call();
    let id = q.next_call().await;
    q.answer(id, false);
    assert_eq!(outcome(next).await.unwrap(), output(id));
}

#[tokio::test(start_paused = true)]
async fn calls_beyond_the_queue_bound_are_refused() {
    let mut h = pool(1, 1, 2).await;
    let mut p = h.started().await;
    let first = h.call();
    let id = p.next_call().await;
    let waiting = [h.call(), h.call()];
    settle().await;
    match outcome(h.call()).await {
        Err(CallError::Busy { queued, .. }) => assert_eq!(queued, 2),
        other => panic!("expected a refusal, got {other:?}"),
    }
    p.answer(id, false);
    assert!(outcome(first).await.is_ok());
    for call in waiting {
        let id = p.next_call().await;
        p.answer(id, false);
        assert_eq!(outcome(call).await.unwrap(), output(id));
    }
}

#[tokio::test(start_paused = true)]
async fn a_process_takes_as_many_calls_as_it_has_threads() {
    let mut h = pool(1, 2, 8).await;
    let mut p = h.started().await;
    let calls = [h.call(), h.call()];
    let ids = [p.next_call().await, p.next_call().await];
    let third = h.call();
    assert!(
        p.idle().await,
        "a third call went to a process of two threads"
    );
    p.answer(ids[1], false);
    let id3 = p.next_call().await;
    p.answer(ids[0], false);
    p.answer(id3, false);
    for (call, id) in calls.into_iter().zip(ids) {
        assert_eq!(outcome(call).await.unwrap(), output(id));
    }
    assert_eq!(outcome(third).await.unwrap(), output(id3));
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_leaves_its_thread_claimed_until_the_call_ends() {
    let mut h = pool(1, 1, 8).await;
    let mut p = h.started().await;
    let first = h.call();
    let id = p.next_call().await;
    // The request is cancelled (its client went away); its call still runs.
    first.abort();
    let second = h.call();
    assert!(
        p.idle().await,
        "the thread of a running call went to another"
    );
    p.answer(id, false);
    let id2 = p.next_call().await;
    p.answer(id2, false);
    assert_eq!(outcome(second).await.unwrap(), output(id2));
}

#[tokio::test(start_paused = true)]
async fn calls_go_to_the_live_process_while_the_others_restart() {
    let mut h = pool(3, 1, 8).await;
    let p = h.started().await;
    let r = h.started().await;
    let mut q = h.started().await;
    h.launcher.refuse.store(true, Ordering::SeqCst);
    p.exit();
    r.exit();
    settle().await;
    for _ in 0..4 {
        let call = h.call();
        let id = q.next_call().await;
        q.answer(id, false);
        assert_eq!(outcome(call).await.unwrap(), output(id));
    }
    assert_eq!(h.pool.pids(), [q.pid()]);
}
