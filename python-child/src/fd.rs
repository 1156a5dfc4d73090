//! The file-descriptor and libc calls the child needs, fenced here: the
//! rest of the crate has no unsafe code. The worker hands the child one end
//! of a socket pair as [`PROTOCOL_FD`]; the child takes it, keeps its
//! stdout off the protocol, and keeps the socket from its own children.

#![allow(unsafe_code)]

use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

use hotswap_python::protocol::PROTOCOL_FD;

/// Sends whatever prints to stdout (user code, C extensions) to stderr,
/// which the worker collects as the predictor's log; takes the protocol
/// socket; keeps it from processes the user's code starts (its closing is
/// how the worker sees this process end).
pub fn take_protocol_socket() -> UnixStream {
    // SAFETY: dup2 on the process's own standard descriptors; the parent
    // passes one end of a socket pair as fd 3 and keeps nothing else there,
    // so this process owns it from now on; fcntl on that descriptor.
    unsafe {
        libc::dup2(2, 1);
        libc::fcntl(PROTOCOL_FD, libc::F_SETFD, libc::FD_CLOEXEC);
        UnixStream::from_raw_fd(PROTOCOL_FD)
    }
}

/// Returns freed heap pages to the system (after a model is dropped).
pub fn trim_heap() {
    // SAFETY: malloc_trim only returns free heap pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
