//! How service errors reach callers, without tying the service traits to a
//! transport: each crate's error type says which [`Code`] it is and what the
//! caller may read ([`ServiceError`], one impl per crate); the gRPC adapters
//! turn that into a `tonic::Status` in one place ([`to_status`]).

use std::error::Error as StdError;
use std::fmt;

/// The gRPC status codes, as the service traits speak of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The caller gave up on the call.
    Cancelled,
    /// An error with no better code (also a peer's `Ok` read as an error).
    Unknown,
    /// The request is wrong whatever the server's state: a bad name, shape
    /// or value.
    InvalidArgument,
    /// The call's deadline passed before it finished.
    DeadlineExceeded,
    /// What the request names (an API, a model, a version) does not exist.
    NotFound,
    /// What the request would create exists already.
    AlreadyExists,
    /// The caller is known but may not do this.
    PermissionDenied,
    /// A limit was reached: request size, queue, memory.
    ResourceExhausted,
    /// The server is not in a state to do this (a model not loaded, say).
    FailedPrecondition,
    /// The call was cut short by a conflict, such as a swap under it.
    Aborted,
    /// A value outside the range the operation accepts.
    OutOfRange,
    /// The server does not offer this method or feature.
    Unimplemented,
    /// The server broke one of its own invariants; the detail is in its logs.
    Internal,
    /// The server (or the worker behind it) cannot answer now; a retry may
    /// succeed.
    Unavailable,
    /// Data was lost or corrupted.
    DataLoss,
    /// The call carries no valid credentials.
    Unauthenticated,
}

/// A service's error as the caller sees it.
pub trait ServiceError: StdError + Send + Sync + Sized + 'static {
    /// The status code the caller gets.
    fn code(&self) -> Code;

    /// The message the caller gets: the error and its causes, unless the
    /// error keeps its detail for the logs (internal failures).
    fn public_message(&self) -> String {
        report(self)
    }

    /// Whether a front door must not run the call again on another worker
    /// (the call may be what broke the first one).
    fn no_retry(&self) -> bool {
        false
    }
}

/// Metadata on a status that a front door must not retry on another
/// worker (see [`ServiceError::no_retry`]).
pub const NO_RETRY: &str = "hotswap-no-retry";

/// How much of a caller's own string (a name, a version, a value) an error
/// message repeats.
pub const ECHO_LIMIT: usize = 200;

/// The longest message a status carries. It travels in an HTTP/2 trailer,
/// percent-encoded (up to three bytes a byte), and a trailer over the
/// peer's header-list limit (16 KiB for tonic) breaks the whole connection,
/// with every other call on it.
pub const MESSAGE_LIMIT: usize = 4096;

/// A caller's string as an error message repeats it: whole when short,
/// else its start, an ellipsis and its length. Names come from requests,
/// and a message must stay short whatever a caller sends.
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= ECHO_LIMIT {
        return text.into();
    }
    format!("{}… ({} bytes)", head(text, ECHO_LIMIT), text.len()).into()
}

/// The longest prefix of `text` within `max` bytes, cut at a character.
fn head(text: &str, max: usize) -> &str {
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// The longest suffix of `text` within `max` bytes, cut at a character.
fn tail(text: &str, max: usize) -> &str {
    let mut cut = text.len().saturating_sub(max);
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    &text[cut..]
}

/// A message within [`MESSAGE_LIMIT`]: a long one (a deep Python traceback,
/// say) keeps its start and its end, where the exception is.
pub fn bounded(message: String) -> String {
    if message.len() <= MESSAGE_LIMIT {
        return message;
    }
    let keep_head = MESSAGE_LIMIT / 4;
    let keep_tail = MESSAGE_LIMIT - keep_head - 64;
    format!(
        "{}\n… ({} bytes cut) …\n{}",
        head(&message, keep_head),
        message.len() - keep_head - keep_tail,
        tail(&message, keep_tail)
    )
}

/// The status a caller gets for `err`.
pub fn to_status<E: ServiceError>(err: &E) -> tonic::Status {
    let mut status = tonic::Status::new(err.code().into(), bounded(err.public_message()));
    if err.no_retry() {
        status
            .metadata_mut()
            .insert(NO_RETRY, tonic::metadata::MetadataValue::from_static("1"));
    }
    status
}

/// An error and its causes on one line ("a: b: c"), as logs and callers
/// read them. Each error's own Display names only itself; its cause is its
/// `source()`.
pub fn report(err: &(dyn StdError + 'static)) -> String {
    Report(err).to_string()
}

/// [`report`] as a Display value, for log fields: `error = %Report(&e)`.
pub struct Report<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut current = Some(self.0);
        let mut first = true;
        while let Some(err) = current {
            let text = err.to_string();
            if !text.is_empty() {
                if !first {
                    f.write_str(": ")?;
                }
                f.write_str(&text)?;
                first = false;
            }
            current = err.source();
        }
        Ok(())
    }
}

impl From<Code> for tonic::Code {
    fn from(code: Code) -> tonic::Code {
        match code {
            Code::Cancelled => tonic::Code::Cancelled,
            Code::Unknown => tonic::Code::Unknown,
            Code::InvalidArgument => tonic::Code::InvalidArgument,
            Code::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            Code::NotFound => tonic::Code::NotFound,
            Code::AlreadyExists => tonic::Code::AlreadyExists,
            Code::PermissionDenied => tonic::Code::PermissionDenied,
            Code::ResourceExhausted => tonic::Code::ResourceExhausted,
            Code::FailedPrecondition => tonic::Code::FailedPrecondition,
            Code::Aborted => tonic::Code::Aborted,
            Code::OutOfRange => tonic::Code::OutOfRange,
            Code::Unimplemented => tonic::Code::Unimplemented,
            Code::Internal => tonic::Code::Internal,
            Code::Unavailable => tonic::Code::Unavailable,
            Code::DataLoss => tonic::Code::DataLoss,
            Code::Unauthenticated => tonic::Code::Unauthenticated,
        }
    }
}

impl Code {
    /// The code of a status a peer answered with (`Ok` is not an error:
    /// it reads as Unknown).
    pub fn of(code: tonic::Code) -> Code {
        match code {
            tonic::Code::Cancelled => Code::Cancelled,
            tonic::Code::InvalidArgument => Code::InvalidArgument,
            tonic::Code::DeadlineExceeded => Code::DeadlineExceeded,
            tonic::Code::NotFound => Code::NotFound,
            tonic::Code::AlreadyExists => Code::AlreadyExists,
            tonic::Code::PermissionDenied => Code::PermissionDenied,
            tonic::Code::ResourceExhausted => Code::ResourceExhausted,
            tonic::Code::FailedPrecondition => Code::FailedPrecondition,
            tonic::Code::Aborted => Code::Aborted,
            tonic::Code::OutOfRange => Code::OutOfRange,
            tonic::Code::Unimplemented => Code::Unimplemented,
            tonic::Code::Internal => Code::Internal,
            tonic::Code::Unavailable => Code::Unavailable,
            tonic::Code::DataLoss => Code::DataLoss,
            tonic::Code::Unauthenticated => Code::Unauthenticated,
            tonic::Code::Ok | tonic::Code::Unknown => Code::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner;

    #[test]
    fn long_strings_are_cut() {
        assert_eq!(shown("iris"), "iris");
        let long = "é".repeat(1000);
        let cut = shown(&long);
        assert!(
            cut.len() < ECHO_LIMIT + 20 && cut.ends_with("… (2000 bytes)"),
            "{cut}"
        );
        let message = format!("Traceback\n{}\nValueError: boom", "x".repeat(100_000));
        let kept = bounded(message);
        assert!(kept.len() <= MESSAGE_LIMIT, "{}", kept.len());
        assert!(kept.starts_with("Traceback") && kept.ends_with("ValueError: boom"));
        assert_eq!(bounded("short".to_owned()), "short");
    }

    #[test]
    fn reports_join_the_chain() {
        assert_eq!(report(&Outer(Inner)), "outer: inner");
    }

    #[test]
    fn every_code_maps_back_to_itself() {
        for code in [
            Code::Cancelled,
            Code::Unknown,
            Code::InvalidArgument,
            Code::DeadlineExceeded,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::ResourceExhausted,
            Code::FailedPrecondition,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unimplemented,
            Code::Internal,
            Code::Unavailable,
            Code::DataLoss,
            Code::Unauthenticated,
        ] {
            assert_eq!(Code::of(code.into()), code);
        }
    }
}
