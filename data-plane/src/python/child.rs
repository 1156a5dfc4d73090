//! The child side: `hotswap python-worker`. Reads frames on fd 3, runs the
//! user's `PythonPredictor` on its one Python thread, answers on fd 3.

use std::ffi::CString;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

use super::client::{DEFERRED, OnnxClient, PythonClient};
use super::convert::{from_python, to_python};
use super::protocol::PredictorClass;
use super::protocol::{FromChild, ToChild, read_sync, write_sync};

/// The file descriptor the parent hands the socket on.
pub const PROTOCOL_FD: i32 = 3;

/// Runs the child until the parent closes the socket; returns the exit
/// code.
pub fn child_main() -> i32 {
    // Whatever prints to stdout (user code, C extensions) goes to stderr:
    // the worker collects stderr as the predictor's log.
    // SAFETY: dup2 on the process's own standard descriptors.
    unsafe {
        libc::dup2(2, 1);
    }
    // SAFETY: the parent passes one end of a socket pair as fd 3 and keeps
    // nothing else there; this process owns it from now on.
    let mut socket = unsafe { UnixStream::from_raw_fd(PROTOCOL_FD) };
    let init = match read_sync::<ToChild>(&mut socket) {
        Ok(Some(ToChild::Init {
            source,
            file,
            config,
            cache_size,
            venv,
            class,
        })) => (source, file, config, cache_size, venv, class),
        Ok(_) | Err(_) => {
            eprintln!("python-worker: expected an init message on fd {PROTOCOL_FD}");
            return 2;
        }
    };
    let client_socket = match socket.try_clone() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("python-worker: {e}");
            return 2;
        }
    };
    Python::initialize();
    let class = init.5;
    let predictor = Python::attach(|py| {
        use_venv(py, init.4.as_deref())?;
        load(
            py,
            &init.0,
            &init.1,
            &init.2,
            class,
            client_socket,
            init.3 as usize,
        )
    });
    let (predictor, takes_query) = match predictor {
        Ok(p) => p,
        Err(traceback) => {
            let _ = write_sync(&mut socket, &FromChild::InitFailed { traceback });
            return 1;
        }
    };
    if write_sync(&mut socket, &FromChild::Ready).is_err() {
        return 1;
    }
    loop {
        // Requests that arrived while get_model waited come first.
        let deferred = DEFERRED.with(|d| d.borrow_mut().pop_front());
        let next = match deferred {
            Some(m) => Ok(Some(m)),
            None => read_sync::<ToChild>(&mut socket),
        };
        let message = match next {
            Ok(Some(m)) => m,
            // The worker closed the socket: it is stopping or replacing us.
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("python-worker: reading a request: {e}");
                return 1;
            }
        };
        let (id, payload, query) = match message {
            ToChild::Predict { id, payload, query } => (id, payload, query),
            // An answer nobody waits for any more.
            ToChild::Model(_) | ToChild::Onnx(_) => continue,
            ToChild::Init { .. } => {
                eprintln!("python-worker: unexpected second init");
                return 1;
            }
        };
        let answer = Python::attach(|py| {
            let call = || -> PyResult<serde_json::Value> {
                let payload = to_python(py, &payload)?;
                let result = if takes_query {
                    let q = PyDict::new(py);
                    for (k, v) in &query {
                        q.set_item(k, v)?;
                    }
                    predictor.call_method1(py, "predict", (payload, q))?
                } else {
                    predictor.call_method1(py, "predict", (payload,))?
                };
                from_python(result.bind(py))
            };
            match call() {
                Ok(output) => FromChild::Answer { id, output },
                Err(err) => FromChild::Failed {
                    id,
                    lookup: err.is_instance_of::<pyo3::exceptions::PyLookupError>(py),
                    traceback: traceback(py, &err),
                },
            }
        });
        if write_sync(&mut socket, &answer).is_err() {
            return 1;
        }
    }
}

/// Imports the user's file as a module, builds `PythonPredictor(config,
/// python_client)` or `ONNXPredictor(onnx_client, config)`, and tells
/// whether its `predict` takes query params.
fn load(
    py: Python<'_>,
    source: &str,
    file: &str,
    config: &serde_json::Value,
    class: PredictorClass,
    socket: UnixStream,
    cache_size: usize,
) -> Result<(Py<PyAny>, bool), String> {
    let run = || -> PyResult<(Py<PyAny>, bool)> {
        let code = CString::new(source).map_err(|_| {
            pyo3::exceptions::PyValueError::new_err("the predictor file contains a NUL byte")
        })?;
        let file_name = CString::new(file).unwrap_or_else(|_| c"predictor.py".to_owned());
        let module = PyModule::from_code(py, &code, &file_name, c"predictor")?;
        let class_name = match class {
            PredictorClass::Python => "PythonPredictor",
            PredictorClass::Onnx => "ONNXPredictor",
        };
        let constructor = module.getattr(class_name).map_err(|_| {
            pyo3::exceptions::PyAttributeError::new_err(format!(
                "{file} defines no class {class_name}"
            ))
        })?;
        let config = to_python(py, config)?;
        let predictor = match class {
            PredictorClass::Python => {
                let client = Bound::new(py, PythonClient::new(socket, cache_size))?;
                let predictor = constructor.call1((config, client.clone()))?;
                client.borrow_mut().predictor = Some(predictor.clone().unbind());
                predictor
            }
            PredictorClass::Onnx => {
                let client = Bound::new(py, OnnxClient::new(socket))?;
                constructor.call1((client, config))?
            }
        };
        let inspect = py.import("inspect")?;
        let parameters = inspect
            .call_method1("signature", (predictor.getattr("predict")?,))?
            .getattr("parameters")?
            .len()?;
        Ok((predictor.unbind(), parameters >= 2))
    };
    run().map_err(|e| traceback(py, &e))
}

/// Makes the packages of the user's virtualenv importable. The venv must
/// come from the same Python as this binary (its site-packages folder is
/// named after the version).
fn use_venv(py: Python<'_>, venv: Option<&str>) -> Result<(), String> {
    let Some(venv) = venv else { return Ok(()) };
    let run = || -> PyResult<Result<(), String>> {
        let info = py.import("sys")?.getattr("version_info")?;
        let (major, minor): (u32, u32) = (
            info.getattr("major")?.extract()?,
            info.getattr("minor")?.extract()?,
        );
        let root = std::path::Path::new(venv);
        let site = root.join(format!("lib/python{major}.{minor}/site-packages"));
        if !root.join("pyvenv.cfg").is_file() {
            return Ok(Err(format!("{venv} is not a virtualenv (no pyvenv.cfg)")));
        }
        if !site.is_dir() {
            return Ok(Err(format!(
                "{venv} was not made with Python {major}.{minor}, the Python this worker embeds \
                 (no {})",
                site.display()
            )));
        }
        py.import("site")?
            .call_method1("addsitedir", (site.display().to_string(),))?;
        Ok(Ok(()))
    };
    run().map_err(|e| traceback(py, &e))?
}

/// The full Python traceback of an exception, as Python prints it.
fn traceback(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|tb| {
        // The traceback travels beside the exception object in PyErr: pass
        // all three, as sys.exc_info() would give them.
        tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?
        .extract::<Vec<String>>()
    });
    match formatted {
        Ok(lines) => lines.concat(),
        Err(_) => err.to_string(),
    }
}
