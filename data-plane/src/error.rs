//! The data-plane's one error type and its one mapping to what callers get
//! ([`ServiceError`]: code, message, whether a front door may retry).

use std::path::PathBuf;

use hotswap_common::catalog::CatalogError;
use hotswap_proto::error::{Code, ServiceError};
use hotswap_python::CallError;

use crate::backend::LoadError;
use crate::cache::DownloadError;

/// Everything a data-plane call or the worker itself can fail with;
/// [`ServiceError`] turns it into what callers see.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Names that do not resolve against the catalog, or no catalog yet.
    #[error(transparent)]
    Catalog(#[from] CatalogError),

    /// A request named something that does not exist; the message lists
    /// what does.
    #[error("{0}")]
    NotFound(String),

    /// The request itself is wrong (input names, datatypes, shapes, JSON).
    #[error("{0}")]
    InvalidArgument(String),

    /// The version exists but cannot be served: it is INVALID in the
    /// model-store, or it needs what this worker lacks.
    #[error("{0}")]
    FailedPrecondition(String),

    /// Downloading a version's files failed.
    #[error("download of {what}")]
    Download {
        /// The model version.
        what: String,
        /// Why.
        #[source]
        source: DownloadError,
    },

    /// A version whose location is outside its API's declared sources.
    #[error("{what}: location {location} is outside the sources its API declares; not fetched")]
    Undeclared {
        /// The model version.
        what: String,
        /// Its location.
        location: String,
    },

    /// The backend could not load a version.
    #[error("load of {what}")]
    Load {
        /// The model version.
        what: String,
        /// Why.
        #[source]
        source: LoadError,
    },

    /// A load that failed earlier, answered again until its retry (the
    /// error itself went to the log when it happened).
    #[error("load of {what}: {message}")]
    LoadFailed {
        /// The model version.
        what: String,
        /// The earlier error, as text.
        message: String,
    },

    /// The backend failed while running a model on valid input.
    #[error("inference failed: {0}")]
    Inference(String),

    /// A predictor class's call failed (its process died, timed out, ...).
    #[error(transparent)]
    Predictor(#[from] CallError),

    /// A predictor raised: the exception's line and a request id (the
    /// traceback went to the log under that id). NOT_FOUND for a
    /// `hotswap.ModelLookupError`.
    #[error("{message}")]
    PredictorRaised {
        /// Whether it was a `hotswap.ModelLookupError`.
        lookup: bool,
        /// What callers are told.
        message: String,
    },

    /// Something the request needs is down for now (a Python predictor
    /// starting); a retry may succeed.
    #[error("{0}")]
    Unavailable(String),

    /// The worker is stopping and takes no new calls.
    #[error("worker is shutting down")]
    ShuttingDown,

    /// The disk cache's folder could not be prepared.
    #[error("cache folder {}", .path.display())]
    CacheFolder {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The gRPC server itself failed (bind, transport).
    #[error(transparent)]
    Server(#[from] hotswap_common::ServerError),
}

impl Error {
    /// A request error ([`Error::InvalidArgument`]) with `message`.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidArgument(message.into())
    }
}

impl ServiceError for Error {
    fn code(&self) -> Code {
        match self {
            Error::Catalog(CatalogError::NotFound(_)) | Error::NotFound(_) => Code::NotFound,
            Error::Catalog(CatalogError::Unservable(_)) => Code::FailedPrecondition,
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::FailedPrecondition(_) | Error::Undeclared { .. } => Code::FailedPrecondition,
            // The version could not be brought up on this worker; another
            // worker (or a retry after the backoff) may succeed.
            Error::Catalog(CatalogError::NotReady)
            | Error::Download { .. }
            | Error::Load { .. }
            | Error::LoadFailed { .. }
            | Error::Unavailable(_)
            | Error::ShuttingDown => Code::Unavailable,
            Error::PredictorRaised { lookup: true, .. } => Code::NotFound,
            Error::PredictorRaised { lookup: false, .. } => Code::Internal,
            Error::Predictor(e) => match e {
                CallError::Lookup(_) => Code::NotFound,
                CallError::Raised(_) => Code::Internal,
                CallError::ProcessDied { .. } | CallError::NoProcess { .. } => Code::Unavailable,
                CallError::TimedOut { .. } => Code::DeadlineExceeded,
                CallError::Busy { .. } => Code::ResourceExhausted,
            },
            Error::Inference(_) | Error::CacheFolder { .. } | Error::Server(_) => Code::Internal,
        }
    }

    fn public_message(&self) -> String {
        match self {
            Error::CacheFolder { .. } | Error::Server(_) => "internal error".to_owned(),
            other => hotswap_proto::error::report(other),
        }
    }

    /// A call that was running when its Python process died, or that ran
    /// past its time limit, may be what broke the process: once is enough.
    fn no_retry(&self) -> bool {
        matches!(
            self,
            Error::Predictor(CallError::ProcessDied { .. } | CallError::TimedOut { .. })
        )
    }
}
