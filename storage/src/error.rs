//! The storage crate's one error type. The backend's own error is kept as
//! the source: callers decide how much of it to show (the model-store logs
//! it and tells clients only the location).

/// A backend failure of any kind (SDK, HTTP, file system).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bucket or folder could not be listed or read.
    #[error("{location}")]
    Backend {
        location: String,
        #[source]
        source: BoxError,
    },

    #[error("object {key:?} not found")]
    ObjectNotFound { key: String },

    #[error("object key {key:?} could leave its folder; refused")]
    UnsafeKey { key: String },

    /// The object is not what the listing saw (rewritten since): the
    /// download is abandoned, and the next listing brings the new content.
    #[error("object {key:?} changed since it was listed")]
    Changed { key: String },
}

impl Error {
    pub(crate) fn backend(location: impl Into<String>, source: impl Into<BoxError>) -> Error {
        Error::Backend {
            location: location.into(),
            source: source.into(),
        }
    }
}
