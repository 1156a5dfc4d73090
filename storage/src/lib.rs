//! Object storage behind one trait: a local folder, S3 and GCS, and the
//! locations that name them. The model-store lists through it; workers
//! download through it. Object keys are checked here before they become
//! paths anywhere.

#![forbid(unsafe_code)]

mod error;
mod fs;
mod gcs;
mod key;
pub mod location;
mod s3;

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use tokio::sync::OnceCell;

pub use error::{BoxError, Error};
pub use gcs::{GcsOptions, client as gcs_client};
pub use key::{KeyCheck, check_key};
pub use location::{Location, LocationError};
pub use s3::{S3Options, client as s3_client};

/// One object as a listing reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Relative to the listed prefix, '/'-separated.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// ETag (S3), generation (GCS) or a metadata fingerprint (local folder):
    /// whatever changes when the object is rewritten.
    pub etag: String,
    /// When it was last written, if the backend says.
    pub modified: Option<SystemTime>,
}

/// An object's bytes, as they arrive.
pub type ByteStream = BoxStream<'static, Result<Bytes, Error>>;

/// An object as a listing saw it: a download that names it gets those
/// bytes or fails with [`Error::Changed`], never a newer upload (which the
/// next listing announces under its own content hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The size the listing saw.
    pub size: u64,
    /// [`ObjectMeta::etag`] from the listing; empty: nothing is pinned here
    /// (the caller still compares the bytes it got with `size`).
    pub etag: String,
}

/// A bucket (or a local root folder).
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Every object under `prefix` (empty or ending in '/'), keys relative to
    /// it. Pages through the whole listing and fails rather than return part
    /// of it: a partial listing would read as deleted models.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, Error>;

    /// The bytes of the object at `key` (a full key, prefix included); with
    /// `listed`, only if it is still the object the listing saw.
    async fn get(&self, key: &str, listed: Option<&Listed>) -> Result<ByteStream, Error>;
}

/// Endpoint and credential settings for the cloud backends.
#[derive(Debug, Clone, Default)]
pub struct StorageOptions {
    /// How S3 is reached.
    pub s3: S3Options,
    /// How GCS is reached.
    pub gcs: GcsOptions,
}

/// A [`Location`] opened on its backend.
#[derive(Clone)]
pub struct Folder {
    /// The location opened.
    pub location: Location,
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl Folder {
    /// Every object under the folder, keys relative to it.
    pub async fn list(&self) -> Result<Vec<ObjectMeta>, Error> {
        self.store.list(&self.prefix).await
    }

    /// The bytes of `rel`, a path relative to the folder (with `listed`,
    /// pinned to what a listing saw); a path that could leave the folder is
    /// refused before any request is made.
    pub async fn get(&self, rel: &str, listed: Option<&Listed>) -> Result<ByteStream, Error> {
        match check_key(rel) {
            KeyCheck::File => {
                self.store
                    .get(&format!("{}{rel}", self.prefix), listed)
                    .await
            }
            KeyCheck::FolderMarker | KeyCheck::Unsafe(_) => Err(Error::UnsafeKey {
                key: rel.to_owned(),
            }),
        }
    }
}

/// Opens locations, sharing one client per cloud.
pub struct Storage {
    options: StorageOptions,
    s3: OnceCell<aws_sdk_s3::Client>,
    gcs: OnceCell<gcloud_storage::client::Client>,
}

impl Storage {
    /// Storage with these settings; clients are made on first use.
    pub fn new(options: StorageOptions) -> Storage {
        Storage {
            options,
            s3: OnceCell::new(),
            gcs: OnceCell::new(),
        }
    }

    /// The folder at `location`, on its backend's client.
    pub async fn open(&self, location: &Location) -> Result<Folder, Error> {
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match location {
            Location::Local(root) => (Arc::new(fs::LocalStore::new(root.clone())), String::new()),
            Location::S3 { bucket, prefix } => {
                let client = self
                    .s3
                    .get_or_init(|| s3::client(&self.options.s3))
                    .await
                    .clone();
                (
                    Arc::new(s3::S3Store::new(client, bucket.clone())),
                    prefix.clone(),
                )
            }
            Location::Gcs { bucket, prefix } => {
                let client = self
                    .gcs
                    .get_or_try_init(|| gcs::client(&self.options.gcs))
                    .await?
                    .clone();
                (
                    Arc::new(gcs::GcsStore::new(client, bucket.clone())),
                    prefix.clone(),
                )
            }
        };
        Ok(Folder {
            location: location.clone(),
            store,
            prefix,
        })
    }
}

/// Strips `prefix` from a full key; listings only return keys under it.
fn relative(key: &str, prefix: &str) -> Option<String> {
    key.strip_prefix(prefix).map(str::to_owned)
}
