//! The model-store's one error type and its one mapping to what callers get
//! ([`ServiceError`]).

use hotswap_proto::error::{Code, ServiceError, shown};

use crate::config::ConfigError;

/// Everything that can go wrong in the model-store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API config file was refused.
    #[error("config {file}")]
    Config {
        /// The file, as given.
        file: String,
        /// What is wrong with it.
        #[source]
        source: ConfigError,
    },

    /// A bucket or folder could not be listed or read. The backend's detail
    /// is logged; callers only see the location.
    #[error(transparent)]
    Storage(#[from] hotswap_storage::Error),

    /// A call named an API the config does not have.
    #[error("api `{}` not found; apis: {}", shown(.api), hotswap_common::list(.known))]
    ApiNotFound {
        /// The name the call gave.
        api: String,
        /// The APIs there are.
        known: Vec<String>,
    },

    /// A call named a model its API does not have (yet).
    #[error("model `{}` not found in api `{api}`; models: {}", shown(.model), hotswap_common::list(.known))]
    ModelNotFound {
        /// The API.
        api: String,
        /// The name the call gave.
        model: String,
        /// The API's models.
        known: Vec<String>,
    },

    /// A malformed request; the message says what is wrong.
    #[error("{0}")]
    InvalidArgument(String),

    /// The store is stopping: Watch streams end, new calls are refused.
    #[error("model-store is shutting down")]
    ShuttingDown,

    /// The gRPC server itself failed (bind, transport).
    #[error(transparent)]
    Server(#[from] hotswap_common::ServerError),
}

impl ServiceError for Error {
    fn code(&self) -> Code {
        match self {
            Error::ApiNotFound { .. }
            | Error::ModelNotFound { .. }
            | Error::Storage(hotswap_storage::Error::ObjectNotFound { .. }) => Code::NotFound,
            Error::InvalidArgument(_)
            | Error::Storage(hotswap_storage::Error::UnsafeKey { .. })
            | Error::Config { .. } => Code::InvalidArgument,
            Error::Storage(
                hotswap_storage::Error::Backend { .. } | hotswap_storage::Error::Changed { .. },
            )
            | Error::ShuttingDown => Code::Unavailable,
            Error::Server(_) => Code::Internal,
        }
    }

    fn public_message(&self) -> String {
        match self {
            Error::Storage(hotswap_storage::Error::Backend { location, .. }) => {
                format!("storage at {location} is unavailable")
            }
            Error::Server(_) => "internal error".to_owned(),
            other => hotswap_proto::error::report(other),
        }
    }
}
