//! The control plane's one error type and its one mapping to what callers
//! get ([`ServiceError`]).

use hotswap_common::catalog::CatalogError;
use hotswap_common::client::PeerStatus;
use hotswap_proto::error::{Code, ServiceError};

use crate::worker::BoxError;

/// Everything a control-plane call or the control plane itself can fail
/// with; [`ServiceError`] turns it into what callers see.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Name resolution against the catalog (NOT_FOUND listing what exists,
    /// not ready): the same rules and messages as a worker's.
    #[error(transparent)]
    Catalog(#[from] CatalogError),

    /// A model with no version at all.
    #[error("{0}")]
    NotFound(String),

    /// A model whose versions are all INVALID.
    #[error("{0}")]
    FailedPrecondition(String),

    /// No registered worker serves the named model or API.
    #[error("no worker is registered to serve {0}")]
    NoWorkers(String),

    /// A worker's own answer, passed on as it came.
    #[error("{message}")]
    Worker {
        /// The worker's status code.
        code: Code,
        /// The worker's message.
        message: String,
    },

    /// The worker chosen for a call could not take it (gone, restarting,
    /// connection cut); the transport's detail is logged, not returned.
    #[error("worker for {0} is unavailable; try again")]
    WorkerUnavailable(String),

    /// The call's deadline passed before any worker answered.
    #[error("deadline exceeded before a worker answered")]
    DeadlineExceeded,

    /// The request itself is wrong.
    #[error("{0}")]
    InvalidArgument(String),

    /// A request whose routing fields could be read but not the rest:
    /// tonic's own refusal of a message it cannot decode (INTERNAL, as a
    /// worker answers it).
    #[error("{0}")]
    Undecodable(String),

    /// An input (or payload, or body) over the workers' request limit,
    /// refused before it is forwarded, with a worker's own message.
    #[error(transparent)]
    TooLarge(#[from] hotswap_proto::limit::TooLarge),

    /// A worker registered an address the control plane cannot call.
    #[error("worker address {address}")]
    WorkerAddress {
        /// The address as the worker gave it.
        address: String,
        /// Why it cannot be called.
        #[source]
        source: BoxError,
    },

    /// Another registration stream holds this worker id.
    #[error(
        "worker id `{0}` is registered by another connection (an id belongs to the stream that \
         registered it, until that stream ends)"
    )]
    WorkerIdTaken(String),

    /// A registration beyond the limit on registered workers.
    #[error("{max} workers are registered already (--max-workers)")]
    TooManyWorkers {
        /// The limit (`--max-workers`).
        max: usize,
    },

    /// A worker's report names more routes than one worker may have.
    #[error(
        "a report names {routes} model versions and predictor APIs; at most {max} are taken \
         (--max-routes-per-worker)"
    )]
    TooManyRoutes {
        /// How many the report named.
        routes: usize,
        /// The limit (`--max-routes-per-worker`).
        max: usize,
    },

    /// A worker advertised an address this control plane itself listens
    /// on: calls routed there would come back here.
    #[error("worker address {0} is this control plane's own listener")]
    OwnAddress(String),

    /// A worker's registration stream failed.
    #[error("registration stream")]
    ReportStream(#[source] PeerStatus),

    /// The control plane is stopping and takes no new calls.
    #[error("control plane is shutting down")]
    ShuttingDown,

    /// The gRPC server itself failed (bind, transport).
    #[error(transparent)]
    Server(#[from] hotswap_common::ServerError),
}

impl ServiceError for Error {
    fn code(&self) -> Code {
        match self {
            Error::Catalog(CatalogError::NotFound(_)) | Error::NotFound(_) => Code::NotFound,
            Error::Catalog(CatalogError::Unservable(_)) => Code::FailedPrecondition,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::Catalog(CatalogError::NotReady)
            | Error::NoWorkers(_)
            | Error::ShuttingDown
            | Error::WorkerUnavailable(_)
            | Error::ReportStream(_) => Code::Unavailable,
            Error::DeadlineExceeded => Code::DeadlineExceeded,
            Error::Worker { code, .. } => *code,
            Error::InvalidArgument(_)
            | Error::TooLarge(_)
            | Error::WorkerAddress { .. }
            | Error::OwnAddress(_) => Code::InvalidArgument,
            Error::WorkerIdTaken(_) => Code::AlreadyExists,
            Error::TooManyWorkers { .. } | Error::TooManyRoutes { .. } => Code::ResourceExhausted,
            Error::Server(_) | Error::Undecodable(_) => Code::Internal,
        }
    }

    fn public_message(&self) -> String {
        match self {
            Error::Server(_) => "internal error".to_owned(),
            other => hotswap_proto::error::report(other),
        }
    }
}
