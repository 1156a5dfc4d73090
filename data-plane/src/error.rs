//! The data-plane's one error type and its one mapping to gRPC status.

use tonic::Status;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A request named something that does not exist; the message lists
    /// what does.
    #[error("{0}")]
    NotFound(String),

    /// The request itself is wrong (input names, datatypes, shapes, JSON).
    #[error("{0}")]
    InvalidArgument(String),

    /// The version exists but cannot be served: it is INVALID in the
    /// model-store, or its last load failed.
    #[error("{0}")]
    FailedPrecondition(String),

    /// Downloading a version's files failed.
    #[error("download of {what}: {message}")]
    Download { what: String, message: String },

    /// The backend could not load a version.
    #[error("load of {what}: {message}")]
    Load { what: String, message: String },

    /// The backend failed while running a model on valid input.
    #[error("inference failed: {0}")]
    Inference(String),

    /// Something the request needs is down for now (a Python process
    /// restarting); a retry may succeed.
    #[error("{0}")]
    Unavailable(String),

    /// A Python process died while running the request. UNAVAILABLE, and
    /// marked so that the control plane does not run it again elsewhere
    /// (it may be what killed the process).
    #[error("{0}")]
    ProcessDied(String),

    #[error("worker is shutting down")]
    ShuttingDown,

    /// The worker has not received the model index yet.
    #[error("worker is not ready: the model index has not arrived from the model-store yet")]
    NotReady,

    /// The gRPC server itself failed (bind, transport).
    #[error("server: {0}")]
    Server(String),
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidArgument(message.into())
    }
}

/// Metadata on a status that a front door must not retry on another
/// worker.
pub const NO_RETRY: &str = "hotswap-no-retry";

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        if let Error::ProcessDied(message) = &err {
            let mut status = Status::unavailable(message.clone());
            status
                .metadata_mut()
                .insert(NO_RETRY, tonic::metadata::MetadataValue::from_static("1"));
            return status;
        }
        match &err {
            Error::NotFound(_) => Status::not_found(err.to_string()),
            Error::InvalidArgument(_) => Status::invalid_argument(err.to_string()),
            Error::FailedPrecondition(_) => Status::failed_precondition(err.to_string()),
            // The version could not be brought up on this worker; another
            // worker (or a retry after the backoff) may succeed.
            Error::Download { .. }
            | Error::Load { .. }
            | Error::Unavailable(_)
            | Error::ProcessDied(_)
            | Error::ShuttingDown
            | Error::NotReady => Status::unavailable(err.to_string()),
            Error::Inference(_) => Status::internal(err.to_string()),
            Error::Server(_) => Status::internal("internal error"),
        }
    }
}

/// "a, b, c", or "(none)".
pub(crate) fn list<S: AsRef<str>>(names: &[S]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
