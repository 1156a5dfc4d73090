//! One Python child process: started with the protocol socket on fd 3,
//! fed whole frames by one writer task, its answers and model calls read by
//! one reader task. What its messages mean for the calls in flight (an
//! answer, a thread free again) is [`Process::receive`], apart from the
//! I/O.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::supervise::{Launch, Launched};
use super::{ModelResolver, PythonPredictorSpec, THREAD_VARS};
use crate::error::{CallError, StartError, Traceback};
use crate::protocol::{
    FromChild, ModelAnswer, Output, RunAnswer, ToChild, read_async, write_async,
};
use crate::{fd, lock};

/// How long a child may take to import the user's file and build the
/// predictor.
const INIT_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) type Reply = oneshot::Sender<Result<Output, CallError>>;

pub(super) struct Process {
    pub(super) pid: u32,
    /// Frames to the child, written whole by one task: a caller that gives
    /// up mid-call never leaves half a frame on the socket.
    pub(super) outbox: mpsc::UnboundedSender<ToChild>,
    pub(super) pending: Mutex<HashMap<u64, Reply>>,
    /// Per call in flight: told when its Python thread is free again (at
    /// its answer, or after its `post_predict`).
    pub(super) freeing: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    pub(super) next_id: AtomicU64,
    /// False once its socket closed or failed: skipped until replaced.
    pub(super) alive: AtomicBool,
    /// Calls running in it; at most `threads` (its Python threads), so
    /// nothing waits inside a process that may be stuck.
    pub(super) busy: AtomicUsize,
    /// Cancelled when the connection is over: the supervisor then makes sure
    /// the child is gone.
    pub(super) gone: CancellationToken,
}

impl Process {
    /// A process just started, with `outbox` to its writer.
    pub(super) fn new(pid: u32, outbox: mpsc::UnboundedSender<ToChild>) -> Arc<Process> {
        Arc::new(Process {
            pid,
            outbox,
            pending: Mutex::new(HashMap::new()),
            freeing: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            alive: AtomicBool::new(true),
            busy: AtomicUsize::new(0),
            gone: CancellationToken::new(),
        })
    }

    /// Call `id`'s thread in the child is free again.
    fn freed(&self, id: u64) {
        if let Some(tell) = lock(&self.freeing).remove(&id) {
            let _ = tell.send(());
        }
    }

    /// Marks the process dead and fails its calls in flight; the
    /// supervisor then kills it (if it still runs) and starts another.
    pub(super) fn fail(&self) {
        self.alive.store(false, Ordering::Relaxed);
        self.gone.cancel();
        // Dropping the senders fails the callers with UNAVAILABLE.
        lock(&self.pending).clear();
        lock(&self.freeing).clear();
    }

    /// Takes in what the child said about a call: its answer goes to its
    /// caller, and its Python thread is free again at the answer, or, when
    /// `post_predict` runs after it, at [`FromChild::Freed`]; a call that
    /// raised has nothing more to run. Model calls from the child are
    /// returned, for the caller to answer.
    pub(super) fn receive(&self, message: FromChild) -> Option<FromChild> {
        let (id, result) = match message {
            FromChild::Freed { id } => {
                self.freed(id);
                return None;
            }
            FromChild::Answer {
                id,
                output,
                post_predict,
            } => {
                if !post_predict {
                    self.freed(id);
                }
                (id, Ok(output))
            }
            FromChild::Failed {
                id,
                traceback,
                lookup: true,
            } => (id, Err(CallError::Lookup(Traceback(traceback)))),
            FromChild::Failed { id, traceback, .. } => {
                (id, Err(CallError::Raised(Traceback(traceback))))
            }
            call => return Some(call),
        };
        if result.is_err() {
            self.freed(id);
        }
        if let Some(reply) = lock(&self.pending).remove(&id) {
            let _ = reply.send(result);
        }
        None
    }
}

/// Starts a predictor's child processes (`hotswap python-worker`).
pub(super) struct Children(pub(super) Arc<PythonPredictorSpec>);

#[async_trait::async_trait]
impl Launch for Children {
    async fn launch(&self) -> Result<Launched, StartError> {
        let (process, child) = spawn(&self.0).await?;
        Ok((process, Box::new(child)))
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
        .kill_on_drop(true)
        // Nothing of the worker's environment but what it chose to pass.
        .env_clear()
        .envs(spec.process.inherited_env.iter().cloned());
    // Numeric libraries start a thread per core in every process; with
    // several processes that oversubscribes the cores. Share them out,
    // unless the user chose.
    let threads = (std::thread::available_parallelism().map_or(1, |n| n.get())
        / spec.processes.max(1))
    .max(1);
    for var in THREAD_VARS {
        let chosen =
            spec.process.inherited_env.iter().any(|(v, _)| v == var) || spec.env.contains_key(var);
        if !chosen {
            command.env(var, threads.to_string());
        }
    }
    command.envs(&spec.env);
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
    let process = Process::new(pid, outbox);
    tokio::spawn(write_frames(process.clone(), writer, frames));
    let _ = process.outbox.send(ToChild::Init {
        source: spec.source.clone(),
        file: spec.file.clone(),
        config: spec.config.clone(),
        cache_size: spec.cache_size,
        venv: spec.process.venv.as_ref().map(|v| v.display().to_string()),
        class: spec.class,
        threads: spec.threads,
        has_models: spec.models.is_some(),
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
        if let Some(call) = process.receive(message) {
            answer_call(&process, &models, call);
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
