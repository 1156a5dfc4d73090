//! The control plane's one error type and its one mapping to gRPC status.

use tonic::{Code, Status};

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Name and version resolution against the catalog (NOT_FOUND listing
    /// what exists, not ready, ...): the same rules and messages as a
    /// worker's.
    #[error(transparent)]
    Catalog(#[from] hotswap_data_plane::Error),

    #[error("no worker is registered to serve {0}")]
    NoWorkers(String),

    /// A worker's own answer, passed on as it came.
    #[error("{message}")]
    Worker { code: Code, message: String },

    /// The worker chosen for a call could not take it (gone, restarting,
    /// connection cut); the transport's detail is logged, not returned.
    #[error("worker for {0} is unavailable; try again")]
    WorkerUnavailable(String),

    #[error("deadline exceeded before a worker answered")]
    DeadlineExceeded,

    #[error("{0}")]
    InvalidArgument(String),

    #[error("control plane is shutting down")]
    ShuttingDown,

    /// The gRPC server itself failed (bind, transport).
    #[error("server: {0}")]
    Server(String),
}

impl Error {
    pub fn from_status(status: &Status) -> Error {
        Error::Worker {
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        match err {
            Error::Catalog(e) => e.into(),
            Error::NoWorkers(_) | Error::ShuttingDown | Error::WorkerUnavailable(_) => {
                Status::unavailable(err.to_string())
            }
            Error::DeadlineExceeded => Status::deadline_exceeded(err.to_string()),
            Error::Worker { code, message } => Status::new(code, message),
            Error::InvalidArgument(m) => Status::invalid_argument(m),
            Error::Server(_) => Status::internal("internal error"),
        }
    }
}
