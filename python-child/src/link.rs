//! The child's end of the socket, shared by its Python threads: answers
//! and requests go out through one writer; `get_model` and the model clients'
//! requests wait for the answer with the same call number, which the
//! child's reader hands over.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use hotswap_python::protocol::{FromChild, ToChild, write_sync};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::lock;

pub struct Link {
    writer: Mutex<UnixStream>,
    waiting: Mutex<HashMap<u64, mpsc::Sender<ToChild>>>,
    next_call: AtomicU64,
}

impl Link {
    pub fn new(writer: UnixStream) -> Arc<Link> {
        Arc::new(Link {
            writer: Mutex::new(writer),
            waiting: Mutex::new(HashMap::new()),
            next_call: AtomicU64::new(0),
        })
    }

    pub fn send(&self, message: &FromChild) -> std::io::Result<()> {
        write_sync(&mut *lock(&self.writer), message)
    }

    /// Sends the request `make(call)` and waits for its answer, with the
    /// GIL released meanwhile.
    pub fn request(
        &self,
        py: Python<'_>,
        make: impl FnOnce(u64) -> FromChild,
    ) -> PyResult<ToChild> {
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        lock(&self.waiting).insert(call, tx);
        let request = make(call);
        py.detach(move || -> std::io::Result<ToChild> {
            self.send(&request)?;
            rx.recv().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the worker closed the connection",
                )
            })
        })
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// Hands an answer to the thread waiting for it (called by the reader).
    pub fn deliver(&self, call: u64, answer: ToChild) {
        if let Some(tx) = lock(&self.waiting).remove(&call) {
            let _ = tx.send(answer);
        }
    }

    /// The worker hung up: nobody will get an answer.
    pub fn close(&self) {
        lock(&self.waiting).clear();
    }
}
