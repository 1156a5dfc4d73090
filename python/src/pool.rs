//! The worker side: `processes` Python children for one predictor, calls
//! spread over the live ones, each child restarted (with backoff) when it
//! dies. Calls running on a child that dies fail with UNAVAILABLE (and are
//! not retried elsewhere: they may be what killed it); later calls go to the
//! others, then to the restarted child.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::protocol::{
    FromChild, ModelAnswer, PredictorClass, RunAnswer, ToChild, read_async, write_async,
};
use crate::error::{CallError, StartError, Traceback};
use crate::{fd, lock};
use hotswap_common::backoff;
use hotswap_proto::error::Report;

/// How long a child may take to import the user's file and build the
/// predictor.
const INIT_TIMEOUT: Duration = Duration::from_secs(120);
const RESTART_START: Duration = Duration::from_millis(100);
const RESTART_MAX: Duration = Duration::from_secs(5);

/// Answers `python_client.get_model(...)`, `onnx_client` and
/// `tensorflow_client` calls: which version a name and version mean, where
/// its files are; runs ONNX and TensorFlow models.
#[async_trait::async_trait]
pub trait ModelResolver: Send + Sync + 'static {
    /// `below`: for "latest", only versions lower than it (the child
    /// falls back past versions its `load_model` failed on).
    async fn resolve(
        &self,
        model: Option<String>,
        version: String,
        below: Option<u64>,
    ) -> ModelAnswer;

    /// `onnx_client.predict` / `tensorflow_client.predict`: runs the model
    /// on `input` (a nested list, or an object of input name -> nested
    /// list).
    async fn run_model(
        &self,
        model: Option<String>,
        version: String,
        input: serde_json::Value,
    ) -> RunAnswer;

    /// `onnx_client.get_model`: the model's inputs and outputs.
    async fn model_signature(&self, model: Option<String>, version: String) -> RunAnswer;
}

/// How a worker starts predictor processes (from its configuration).
#[derive(Debug, Clone, Default)]
pub struct ProcessConfig {
    /// The binary to run as `<exe> python-worker` [default: this process's
    /// own binary].
    pub exe: Option<PathBuf>,
    /// A virtualenv, made from the Python this binary embeds, whose
    /// packages predictors import.
    pub venv: Option<PathBuf>,
    /// Which of [`THREAD_VARS`] the user set for the worker: the processes
    /// inherit those as they are; the others are set so that the processes
    /// share the cores.
    pub user_thread_vars: Vec<String>,
}

/// The numeric libraries' thread-count variables.
pub const THREAD_VARS: [&str; 3] = ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"];

#[derive(Clone)]
pub struct PythonPredictorSpec {
    /// The user's predictor file: its contents and its name (for
    /// tracebacks).
    pub source: String,
    pub file: String,
    /// `predictor.config`, handed to the constructor.
    pub config: serde_json::Value,
    /// processes_per_replica.
    pub processes: usize,
    /// Models each process keeps loaded (0: no limit).
    pub cache_size: u32,
    /// The class the file defines and how it is built.
    pub class: PredictorClass,
    /// Python threads per process (threads_per_process).
    pub threads: u32,
    /// How the processes are started.
    pub process: ProcessConfig,
    /// Where `get_model` finds models; None: the API has none.
    pub models: Option<Arc<dyn ModelResolver>>,
}

type Reply = oneshot::Sender<Result<serde_json::Value, CallError>>;

struct Process {
    pid: u32,
    /// Frames to the child, written whole by one task: a caller that gives
    /// up mid-call never leaves half a frame on the socket.
    outbox: mpsc::UnboundedSender<ToChild>,
    pending: Mutex<HashMap<u64, Reply>>,
    next_id: AtomicU64,
    /// False once its socket closed or failed: skipped until replaced.
    alive: AtomicBool,
    /// Cancelled when the connection is over: the supervisor then makes sure
    /// the child is gone.
    gone: CancellationToken,
}

impl Process {
    /// Marks the process dead and fails its calls in flight.
    fn fail(&self) {
        self.alive.store(false, Ordering::Relaxed);
        self.gone.cancel();
        // Dropping the senders fails the callers with UNAVAILABLE.
        lock(&self.pending).clear();
    }
}

pub struct PythonPool {
    spec: Arc<PythonPredictorSpec>,
    slots: Vec<Arc<ArcSwapOption<Process>>>,
    next: AtomicUsize,
    shutdown: CancellationToken,
}

impl PythonPool {
    /// Starts every child; fails with the Python traceback when the
    /// predictor does not import or construct.
    pub async fn start(spec: PythonPredictorSpec) -> Result<PythonPool, StartError> {
        let spec = Arc::new(spec);
        let shutdown = CancellationToken::new();
        // Children already started go again if a later one fails.
        let guard = shutdown.clone().drop_guard();
        let mut slots = Vec::new();
        for _ in 0..spec.processes.max(1) {
            let slot = Arc::new(ArcSwapOption::empty());
            let (process, child) = spawn(&spec).await?;
            slot.store(Some(process));
            tokio::spawn(supervise(
                spec.clone(),
                slot.clone(),
                child,
                shutdown.clone(),
            ));
            slots.push(slot);
        }
        guard.disarm();
        Ok(PythonPool {
            spec,
            slots,
            next: AtomicUsize::new(0),
            shutdown,
        })
    }

    /// Runs `predict(payload[, query_params])` on one of the children. A
    /// call that could not be handed to a process (it just died) goes to
    /// another: it never ran there.
    pub async fn predict(
        &self,
        payload: serde_json::Value,
        query: BTreeMap<String, String>,
    ) -> Result<serde_json::Value, CallError> {
        for _ in 0..self.slots.len() {
            let Some(process) = self.pick() else { break };
            let id = process.next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            lock(&process.pending).insert(id, tx);
            let message = ToChild::Predict {
                id,
                payload: payload.clone(),
                query: query.clone(),
            };
            if process.outbox.send(message).is_err() {
                lock(&process.pending).remove(&id);
                process.alive.store(false, Ordering::Relaxed);
                continue;
            }
            return rx.await.unwrap_or_else(|_| {
                Err(CallError::ProcessDied {
                    file: self.spec.file.clone(),
                    pid: process.pid,
                })
            });
        }
        Err(CallError::NoProcess {
            file: self.spec.file.clone(),
        })
    }

    /// Tells every process that a model version changed (its current
    /// content hash) or went away (""), so cached copies go now.
    pub fn evict(&self, model: &str, version: u64, content_hash: &str) {
        for slot in &self.slots {
            if let Some(process) = slot.load_full() {
                let _ = process.outbox.send(ToChild::Evict {
                    model: model.to_owned(),
                    version,
                    content_hash: content_hash.to_owned(),
                });
            }
        }
    }

    /// Process ids of the live children (operators and tests).
    pub fn pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .filter_map(|s| s.load().as_ref().map(|p| p.pid))
            .collect()
    }

    /// A live child, in turn.
    fn pick(&self) -> Option<Arc<Process>> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|i| {
            self.slots[(start + i) % n]
                .load_full()
                .filter(|p| p.alive.load(Ordering::Relaxed))
        })
    }
}

impl Drop for PythonPool {
    fn drop(&mut self) {
        // Supervisors stop; dropping the children kills them.
        self.shutdown.cancel();
    }
}

/// Starts one child and waits for it to report ready, answering the model
/// calls its constructor makes meanwhile.
async fn spawn(
    spec: &PythonPredictorSpec,
) -> Result<(Arc<Process>, tokio::process::Child), StartError> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(StartError::SocketPair)?;
    let exe = match &spec.process.exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().map_err(|source| StartError::Spawn {
            exe: "this binary".into(),
            source,
        })?,
    };
    let mut command = tokio::process::Command::new(&exe);
    command
        .arg("python-worker")
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    // Numeric libraries start a thread per core in every process; with
    // several processes that oversubscribes the cores. Share them out,
    // unless the user chose.
    let threads = (std::thread::available_parallelism().map_or(1, |n| n.get())
        / spec.processes.max(1))
    .max(1);
    for var in THREAD_VARS {
        if !spec.process.user_thread_vars.iter().any(|v| v == var) {
            command.env(var, threads.to_string());
        }
    }
    fd::hand_over(&mut command, theirs.as_raw_fd());
    let child = command
        .spawn()
        .map_err(|source| StartError::Spawn { exe, source })?;
    drop(theirs);
    let pid = child.id().unwrap_or(0);
    let socket = |source| StartError::Socket { pid, source };
    ours.set_nonblocking(true).map_err(socket)?;
    let stream = tokio::net::UnixStream::from_std(ours).map_err(socket)?;
    let (mut reader, writer) = stream.into_split();
    let (outbox, frames) = mpsc::unbounded_channel();
    let process = Arc::new(Process {
        pid,
        outbox,
        pending: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        alive: AtomicBool::new(true),
        gone: CancellationToken::new(),
    });
    tokio::spawn(write_frames(process.clone(), writer, frames));
    let _ = process.outbox.send(ToChild::Init {
        source: spec.source.clone(),
        file: spec.file.clone(),
        config: spec.config.clone(),
        cache_size: spec.cache_size,
        venv: spec.process.venv.as_ref().map(|v| v.display().to_string()),
        class: spec.class,
        threads: spec.threads,
    });
    let started = tokio::time::timeout(INIT_TIMEOUT, async {
        loop {
            match read_async::<FromChild>(&mut reader).await {
                Ok(Some(FromChild::Ready)) => return Ok(()),
                Ok(Some(FromChild::InitFailed { traceback })) => {
                    return Err(StartError::Predictor(Traceback(traceback)));
                }
                // The constructor may ask for models (signatures, say).
                Ok(Some(call)) => answer_call(&process, &spec.models, call),
                Ok(None) => return Err(StartError::Exited { pid }),
                Err(source) => return Err(StartError::Socket { pid, source }),
            }
        }
    })
    .await;
    match started {
        Ok(result) => result?,
        Err(_) => {
            return Err(StartError::Timeout {
                pid,
                timeout: INIT_TIMEOUT,
            });
        }
    }
    tokio::spawn(read_answers(process.clone(), reader, spec.models.clone()));
    Ok((process, child))
}

/// Writes the queued frames in order; a write error ends the connection.
async fn write_frames(
    process: Arc<Process>,
    mut writer: OwnedWriteHalf,
    mut frames: mpsc::UnboundedReceiver<ToChild>,
) {
    loop {
        let frame = tokio::select! {
            () = process.gone.cancelled() => return,
            frame = frames.recv() => frame,
        };
        let Some(frame) = frame else { return };
        if write_async(&mut writer, &frame).await.is_err() {
            process.fail();
            return;
        }
    }
}

/// Answers a model call from the child, off the reading loop: a download
/// must not hold up the answers of the child's other calls.
fn answer_call(process: &Arc<Process>, models: &Option<Arc<dyn ModelResolver>>, call: FromChild) {
    let models = models.clone();
    let process = process.clone();
    let job = async move {
        let answer = match call {
            FromChild::GetModel {
                call,
                model,
                version,
                below,
            } => ToChild::Model {
                call,
                answer: match models {
                    Some(m) => m.resolve(model, version, below).await,
                    None => ModelAnswer::Missing {
                        message: NO_MODELS.to_owned(),
                        lookup: true,
                    },
                },
            },
            FromChild::RunModel {
                call,
                model,
                version,
                input,
            } => ToChild::Run {
                call,
                answer: match models {
                    Some(m) => m.run_model(model, version, input).await,
                    None => no_models(),
                },
            },
            FromChild::ModelSignature {
                call,
                model,
                version,
            } => ToChild::Run {
                call,
                answer: match models {
                    Some(m) => m.model_signature(model, version).await,
                    None => no_models(),
                },
            },
            other => {
                tracing::warn!(pid = process.pid, message = ?other, "unexpected message from a Python process");
                return;
            }
        };
        let _ = process.outbox.send(answer);
    };
    tokio::spawn(job);
}

/// Hands each answer to its caller until the child's socket closes or a
/// frame cannot be read; then the process is done for.
async fn read_answers(
    process: Arc<Process>,
    mut reader: OwnedReadHalf,
    models: Option<Arc<dyn ModelResolver>>,
) {
    loop {
        let message = match read_async::<FromChild>(&mut reader).await {
            Ok(Some(m)) => m,
            Ok(None) | Err(_) => break,
        };
        let (id, result) = match message {
            FromChild::Answer { id, output } => (id, Ok(output)),
            FromChild::Failed {
                id,
                traceback,
                lookup: true,
            } => (id, Err(CallError::Lookup(Traceback(traceback)))),
            FromChild::Failed { id, traceback, .. } => {
                (id, Err(CallError::Raised(Traceback(traceback))))
            }
            call => {
                answer_call(&process, &models, call);
                continue;
            }
        };
        if let Some(reply) = lock(&process.pending).remove(&id) {
            let _ = reply.send(result);
        }
    }
    process.fail();
}

const NO_MODELS: &str = "this API has no models (no models / multi_model_reloading section)";

fn no_models() -> RunAnswer {
    RunAnswer::Failed {
        message: NO_MODELS.to_owned(),
        lookup: true,
        invalid: false,
    }
}

/// Waits for the child to exit (or its connection to end: then it is
/// killed) and starts a new one, until shutdown.
async fn supervise(
    spec: Arc<PythonPredictorSpec>,
    slot: Arc<ArcSwapOption<Process>>,
    mut child: tokio::process::Child,
    shutdown: CancellationToken,
) {
    let mut backoff = backoff::delays(RESTART_START, RESTART_MAX);
    loop {
        let gone = slot.load_full().map(|p| p.gone.clone()).unwrap_or_default();
        let status = tokio::select! {
            () = shutdown.cancelled() => return,
            status = child.wait() => status,
            () = gone.cancelled() => {
                // A broken connection with a live child: end it.
                let _ = child.kill().await;
                child.wait().await
            }
        };
        let old = slot.swap(None);
        if let Some(old) = &old {
            old.fail();
        }
        tracing::warn!(file = %spec.file, pid = old.as_ref().map_or(0, |p| p.pid), status = ?status, "Python process exited; restarting it");
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff.next_delay()) => {}
            }
            match spawn(&spec).await {
                Ok((process, new_child)) => {
                    tracing::info!(file = %spec.file, pid = process.pid, "Python process restarted");
                    slot.store(Some(process));
                    child = new_child;
                    backoff.reset();
                    break;
                }
                Err(e) => {
                    tracing::warn!(file = %spec.file, error = %Report(&e), "Python process failed to restart");
                }
            }
        }
    }
}
