//! The model-store's one error type and its one mapping to gRPC status.

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config {file}: {message}")]
    Config { file: String, message: String },

    /// A bucket or folder could not be listed or read. The message may carry
    /// backend detail: it is logged, and callers only see the location.
    #[error("{location}: {message}")]
    Storage { location: String, message: String },

    #[error("object {key:?} not found")]
    ObjectNotFound { key: String },

    #[error("object key {key:?} could leave its folder; refused")]
    UnsafeKey { key: String },

    #[error("api `{api}` not found; apis: {}", list(known))]
    ApiNotFound { api: String, known: Vec<String> },

    #[error("model `{model}` not found in api `{api}`; models: {}", list(known))]
    ModelNotFound {
        api: String,
        model: String,
        known: Vec<String>,
    },

    #[error("{0}")]
    InvalidArgument(String),

    #[error("model-store is shutting down")]
    ShuttingDown,

    /// The gRPC server itself failed (bind, transport).
    #[error("server: {0}")]
    Server(String),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        match &err {
            Error::ApiNotFound { .. }
            | Error::ModelNotFound { .. }
            | Error::ObjectNotFound { .. } => Status::not_found(err.to_string()),
            Error::InvalidArgument(_) | Error::UnsafeKey { .. } | Error::Config { .. } => {
                Status::invalid_argument(err.to_string())
            }
            Error::Storage { location, .. } => {
                Status::unavailable(format!("storage at {location} is unavailable"))
            }
            Error::ShuttingDown => Status::unavailable(err.to_string()),
            Error::Server(_) => Status::internal("internal error"),
        }
    }
}
