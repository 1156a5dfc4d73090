//! The child side: `hotswap python-worker`. Reads frames on fd 3, runs the
//! user's predictor on its Python threads, answers on fd 3.

use std::ffi::CString;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, mpsc};

use hotswap_python::Traceback;
use hotswap_python::protocol::{
    FromChild, PROTOCOL_FD, PredictorClass, Request, ToChild, read_sync,
};
use pyo3::prelude::*;
use pyo3::types::PyModule;

use crate::body::{output_from_python, payload_to_python, strings_to_python};
use crate::client::{OnnxClient, PythonClient, TensorFlowClient};
use crate::contract::{Arguments, Contract, construct};
use crate::convert::to_python;
use crate::fd;
use crate::link::Link;
use crate::lock;

/// The process's python_client, once built (evictions reach it from the
/// reader thread).
static CLIENT: std::sync::OnceLock<Py<PythonClient>> = std::sync::OnceLock::new();

/// Runs the child until the parent closes the socket; returns the exit
/// code. A reader thread reads the socket; `threads` Python threads run the
/// calls (more than one only helps where user code releases the GIL); the
/// main thread builds the predictor, then waits.
pub fn child_main() -> i32 {
    let mut socket = fd::take_protocol_socket();
    let Ok(Some(ToChild::Init {
        source,
        file,
        config,
        cache_size,
        venv,
        class,
        threads,
        has_models,
    })) = read_sync::<ToChild>(&mut socket)
    else {
        eprintln!("python-worker: expected an init message on fd {PROTOCOL_FD}");
        return 2;
    };
    let link = match socket.try_clone() {
        Ok(writer) => Link::new(writer),
        Err(e) => {
            eprintln!("python-worker: {e}");
            return 2;
        }
    };
    // The reader starts first: the constructor may already call get_model.
    let (jobs, queue) = mpsc::channel::<Job>();
    let reader_link = link.clone();
    std::thread::spawn(move || read_frames(socket, &reader_link, jobs));
    Python::initialize();
    let loaded = Python::attach(|py| {
        use_venv(py, venv.as_deref())?;
        load(
            py,
            &source,
            &file,
            &config,
            class,
            has_models,
            &link,
            cache_size as usize,
        )
    });
    let (predictor, contract) = match loaded {
        Ok(p) => p,
        Err(Traceback(traceback)) => {
            let _ = link.send(&FromChild::InitFailed { traceback });
            return 1;
        }
    };
    if link.send(&FromChild::Ready).is_err() {
        return 1;
    }
    let (predictor, contract) = (Arc::new(predictor), Arc::new(contract));
    let queue = Arc::new(Mutex::new(queue));
    let mut workers = Vec::new();
    for _ in 0..threads.max(1) {
        let (predictor, contract) = (predictor.clone(), contract.clone());
        let (queue, link) = (queue.clone(), link.clone());
        workers.push(std::thread::spawn(move || {
            // Each thread stays attached to Python (one thread state for
            // its whole life, so `threading.local` keeps its values) and
            // lets go of the GIL while it waits or writes.
            Python::attach(|py| {
                loop {
                    let Ok(job) = py.detach(|| lock(&queue).recv()) else {
                        return;
                    };
                    let id = job.id;
                    let (answer, after) = run(py, predictor.bind(py), &contract, job);
                    let sent = py.detach(|| {
                        link.send(&answer).or_else(|e| {
                            // Too large, most likely: say so rather than go
                            // quiet.
                            link.send(&FromChild::Failed {
                                id,
                                traceback: format!("the predictor's answer could not be sent: {e}"),
                                lookup: false,
                            })
                        })
                    });
                    if sent.is_err() {
                        // The socket is gone: this process is done.
                        std::process::exit(1);
                    }
                    // After the answer is on its way, as Cortex ran it; the
                    // worker gives this thread to another call once told.
                    if let Some((args, response)) = after {
                        if let Err(e) = contract.post_predict(predictor.bind(py), &args, &response)
                        {
                            eprintln!(
                                "python-worker: post_predict raised (request {id}):\n{}",
                                traceback(py, &e).0
                            );
                        }
                        if py.detach(|| link.send(&FromChild::Freed { id })).is_err() {
                            std::process::exit(1);
                        }
                    }
                }
            });
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    0
}

/// The reader: calls go to the Python threads, model answers to the thread
/// waiting for them. When the worker hangs up, the process ends at once
/// (calls still running have nobody to answer to).
fn read_frames(mut socket: UnixStream, link: &Link, jobs: mpsc::Sender<Job>) {
    loop {
        match read_sync::<ToChild>(&mut socket) {
            Ok(Some(ToChild::Predict { id, request })) => {
                if jobs.send(Job { id, request }).is_err() {
                    std::process::exit(1);
                }
            }
            Ok(Some(ToChild::Evict {
                model,
                version,
                content_hash,
            })) => {
                if let Some(client) = CLIENT.get() {
                    let evicted =
                        Python::attach(|py| client.get().evict(py, model, version, &content_hash));
                    if let Err(e) = evicted {
                        eprintln!("python-worker: evicting a model: {e}");
                    }
                }
            }
            Ok(Some(answer @ ToChild::Model { call, .. })) => link.deliver(call, answer),
            Ok(Some(answer @ ToChild::Run { call, .. })) => link.deliver(call, answer),
            Ok(Some(ToChild::Init { .. })) => {
                eprintln!("python-worker: unexpected second init");
                std::process::exit(1);
            }
            Ok(None) => {
                link.close();
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("python-worker: reading a request: {e}");
                std::process::exit(1);
            }
        }
    }
}

struct Job {
    id: u64,
    request: Request,
}

/// What `post_predict` gets once the answer is sent: the call's arguments
/// and what `predict` returned.
type After<'py> = (Arguments<'py>, Bound<'py, PyAny>);

/// One `predict` call: the answer, and the arguments for `post_predict`
/// when the class defines it and `predict` succeeded.
fn run<'py>(
    py: Python<'py>,
    predictor: &Bound<'py, PyAny>,
    contract: &Contract,
    job: Job,
) -> (FromChild, Option<After<'py>>) {
    let call = || -> PyResult<_> {
        let args = Arguments {
            payload: payload_to_python(py, &job.request.payload)?,
            query_params: strings_to_python(py, &job.request.query_params)?,
            headers: strings_to_python(py, &job.request.headers)?,
        };
        let result = contract.predict(predictor, &args)?;
        let output = output_from_python(&result)?;
        Ok((output, args, result))
    };
    match call() {
        Ok((output, args, result)) => (
            FromChild::Answer {
                id: job.id,
                output,
                post_predict: contract.has_post_predict(),
            },
            contract.has_post_predict().then_some((args, result)),
        ),
        Err(err) => (
            FromChild::Failed {
                id: job.id,
                lookup: err.is_instance_of::<crate::client::ModelLookupError>(py),
                traceback: traceback(py, &err).0,
            },
            None,
        ),
    }
}

/// Imports the user's file as a module and builds its predictor class with
/// the arguments its constructor declares, by name: `config` and the
/// class's client (`python_client`, `onnx_client`, `tensorflow_client`).
#[allow(clippy::too_many_arguments)]
fn load(
    py: Python<'_>,
    source: &str,
    file: &str,
    config: &serde_json::Value,
    class: PredictorClass,
    has_models: bool,
    link: &Arc<Link>,
    cache_size: usize,
) -> Result<(Py<PyAny>, Contract), Traceback> {
    let run = || -> PyResult<(Py<PyAny>, Contract)> {
        let code = CString::new(source).map_err(|_| {
            pyo3::exceptions::PyValueError::new_err("the predictor file contains a NUL byte")
        })?;
        let file_name = CString::new(file).unwrap_or_else(|_| c"predictor.py".to_owned());
        let module = PyModule::from_code(py, &code, &file_name, c"predictor")?;
        let class_name = match class {
            PredictorClass::Python => "PythonPredictor",
            PredictorClass::Onnx => "ONNXPredictor",
            PredictorClass::TensorFlow => "TensorFlowPredictor",
        };
        let constructor = module.getattr(class_name).map_err(|_| {
            pyo3::exceptions::PyAttributeError::new_err(format!(
                "{file} defines no class {class_name}"
            ))
        })?;
        let config = to_python(py, config)?;
        let what = format!("{class_name}.__init__");
        let predictor = match class {
            PredictorClass::Python => {
                if has_models && !constructor.hasattr("load_model")? {
                    return Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                        "{class_name} defines no load_model(self, model_path): the API \
                         configures models, and python_client.get_model() calls it"
                    )));
                }
                let client = Bound::new(py, PythonClient::new(link.clone(), cache_size))?;
                // Built in two steps so that `__init__` can already call
                // get_model, which needs the instance's load_model.
                let predictor = constructor.call_method1("__new__", (constructor.clone(),))?;
                client.get().set_predictor(predictor.clone().unbind());
                let _ = CLIENT.set(client.clone().unbind());
                // A class without its own `__init__` takes nothing (object's
                // would take anything and then refuse it).
                let object_init = py
                    .import("builtins")?
                    .getattr("object")?
                    .getattr("__init__")?;
                if !constructor.getattr("__init__")?.is(&object_init) {
                    let init = predictor.getattr("__init__")?;
                    let offered = [("config", config), ("python_client", client.into_any())];
                    construct(&init, &what, &offered, |kwargs| init.call((), Some(kwargs)))?;
                }
                predictor
            }
            PredictorClass::Onnx => {
                let client = Bound::new(py, OnnxClient::new(link.clone()))?.into_any();
                let offered = [("onnx_client", client), ("config", config)];
                construct(&constructor, &what, &offered, |kwargs| {
                    constructor.call((), Some(kwargs))
                })?
            }
            PredictorClass::TensorFlow => {
                let client = Bound::new(py, TensorFlowClient::new(link.clone()))?.into_any();
                let offered = [("tensorflow_client", client), ("config", config)];
                construct(&constructor, &what, &offered, |kwargs| {
                    constructor.call((), Some(kwargs))
                })?
            }
        };
        let contract = Contract::of(&predictor, class_name)?;
        Ok((predictor.unbind(), contract))
    };
    run().map_err(|e| traceback(py, &e))
}

/// Makes the packages of the user's virtualenv importable. The venv must
/// come from the same Python as this binary (its site-packages folder is
/// named after the version).
fn use_venv(py: Python<'_>, venv: Option<&str>) -> Result<(), Traceback> {
    let Some(venv) = venv else { return Ok(()) };
    let run = || -> PyResult<Result<(), Traceback>> {
        let info = py.import("sys")?.getattr("version_info")?;
        let (major, minor): (u32, u32) = (
            info.getattr("major")?.extract()?,
            info.getattr("minor")?.extract()?,
        );
        let root = std::path::Path::new(venv);
        let site = root.join(format!("lib/python{major}.{minor}/site-packages"));
        if !root.join("pyvenv.cfg").is_file() {
            return Ok(Err(Traceback(format!(
                "{venv} is not a virtualenv (no pyvenv.cfg)"
            ))));
        }
        if !site.is_dir() {
            return Ok(Err(Traceback(format!(
                "{venv} was not made with Python {major}.{minor}, the Python this worker embeds \
                 (no {})",
                site.display()
            ))));
        }
        // The venv's packages come before the interpreter's own, as they
        // would in the venv's python.
        let sys_path = py.import("sys")?.getattr("path")?;
        let before: Vec<String> = sys_path.extract()?;
        py.import("site")?
            .call_method1("addsitedir", (site.display().to_string(),))?;
        let after: Vec<String> = sys_path.extract()?;
        let (added, kept): (Vec<String>, Vec<String>) =
            after.into_iter().partition(|p| !before.contains(p));
        let ordered: Vec<String> = added.into_iter().chain(kept).collect();
        sys_path.call_method1("__init__", (ordered,))?;
        Ok(Ok(()))
    };
    run().map_err(|e| traceback(py, &e))?
}

/// The full Python traceback of an exception, as Python prints it.
fn traceback(py: Python<'_>, err: &PyErr) -> Traceback {
    let formatted = py.import("traceback").and_then(|tb| {
        // The traceback travels beside the exception object in PyErr: pass
        // all three, as sys.exc_info() would give them.
        tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?
        .extract::<Vec<String>>()
    });
    Traceback(match formatted {
        Ok(lines) => lines.concat(),
        Err(_) => err.to_string(),
    })
}
