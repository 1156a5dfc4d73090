//! The file-descriptor and libc calls the Python host needs, fenced here:
//! the rest of the crate has no unsafe code. The worker hands a child one
//! end of a socket pair as fd 3; the child takes it, keeps its stdout off
//! the protocol, and keeps the socket from its own children.

#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;

/// The file descriptor the parent hands the socket on.
pub const PROTOCOL_FD: RawFd = 3;

/// Makes `command`'s process get `theirs` as [`PROTOCOL_FD`] and die with
/// this one.
pub fn hand_over(command: &mut tokio::process::Command, theirs: RawFd) {
    // SAFETY: only async-signal-safe calls (prctl, fcntl, dup2) between
    // fork and exec.
    unsafe {
        command.pre_exec(move || {
            // The child dies with the worker.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if theirs == PROTOCOL_FD {
                // Already in place: only clear close-on-exec.
                if libc::fcntl(PROTOCOL_FD, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(theirs, PROTOCOL_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// In the child: sends whatever prints to stdout (user code, C extensions)
/// to stderr, which the worker collects as the predictor's log; takes the
/// protocol socket; keeps it from processes the user's code starts (its
/// closing is how the worker sees this process end).
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
