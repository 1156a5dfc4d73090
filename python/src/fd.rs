//! The one libc call the worker side needs, fenced here: the rest of the
//! crate has no unsafe code. The worker hands a child one end of a socket
//! pair as [`PROTOCOL_FD`] (the child's side is in `hotswap-python-child`).

#![allow(unsafe_code)]

use std::os::fd::RawFd;

use crate::protocol::PROTOCOL_FD;

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
