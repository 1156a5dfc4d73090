//! The storage crate's one error type. The backend's own error is kept as
//! the source: callers decide how much of it to show (the model-store logs
//! it and tells clients only the location).

/// A backend failure of any kind (SDK, HTTP, file system).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong reading storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bucket or folder could not be listed or read.
    #[error("{location}")]
    Backend {
        /// What could not be reached (`s3://bucket/prefix/`, a folder).
        location: String,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },

    /// No object under that key (deleted since it was listed, say).
    #[error("object {key:?} not found")]
    ObjectNotFound {
        /// The key, relative to the folder.
        key: String,
    },

    /// A key that would climb out of its folder on a worker's disk.
    #[error("object key {key:?} could leave its folder; refused")]
    UnsafeKey {
        /// The key as the bucket holds it.
        key: String,
    },

    /// The object is not what the listing saw (rewritten since): the
    /// download is abandoned, and the next listing brings the new content.
    #[error("object {key:?} changed since it was listed")]
    Changed {
        /// The key, relative to the folder.
        key: String,
    },
}

impl Error {
    pub(crate) fn backend(location: impl Into<String>, source: impl Into<BoxError>) -> Error {
        Error::Backend {
            location: location.into(),
            source: source.into(),
        }
    }
}
