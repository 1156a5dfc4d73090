//! A bucket a test writes models into, on one of the three backends, and
//! the storage options that make the model-store read it.

use std::net::SocketAddr;

use gcloud_storage::client::Client as GcsClient;
use gcloud_storage::http::buckets::insert::InsertBucketRequest;
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::list::ListObjectsRequest;
use gcloud_storage::http::objects::upload::{Media, UploadObjectRequest, UploadType};
use hotswap_storage::{GcsOptions, S3Options, StorageOptions, gcs_client, s3_client};

use crate::emulator::Emulator;

/// Which kind of store a test bucket lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A local folder.
    Local,
    /// An S3 emulator.
    S3,
    /// A GCS emulator.
    Gcs,
}

/// The bucket name tests use on the emulators.
pub const BUCKET: &str = "models";

// One per test, never moved around in bulk: the size of the GCS client
// does not matter.
#[allow(clippy::large_enum_variant)]
/// A bucket of models for one test, removed with it.
pub enum TestBucket {
    /// A temporary folder.
    Local {
        /// The folder, deleted on drop.
        root: tempfile::TempDir,
    },
    /// A bucket on an S3 emulator of its own.
    S3 {
        /// A client to the emulator.
        client: aws_sdk_s3::Client,
        /// The emulator process.
        emulator: Emulator,
    },
    /// A bucket on a GCS emulator of its own.
    Gcs {
        /// A client to the emulator.
        client: GcsClient,
        /// The emulator process.
        emulator: Emulator,
    },
}

impl TestBucket {
    /// A fresh, empty bucket (its emulator started when one is needed).
    pub async fn new(backend: Backend) -> TestBucket {
        let bucket = TestBucket::without_bucket(backend).await;
        bucket.create_bucket().await;
        bucket
    }

    /// The backend running, but the bucket not created yet (S3, GCS).
    pub async fn without_bucket(backend: Backend) -> TestBucket {
        match backend {
            Backend::Local => TestBucket::Local {
                root: tempfile::tempdir().expect("temp dir"),
            },
            // The same client set-up the model-store uses, pointed at the
            // emulator.
            Backend::S3 => {
                let emulator = Emulator::s3();
                let client = s3_client(&s3_options(&emulator)).await;
                TestBucket::S3 { client, emulator }
            }
            Backend::Gcs => {
                let emulator = Emulator::gcs();
                let client = gcs_client(&gcs_options(&emulator))
                    .await
                    .expect("gcs client");
                TestBucket::Gcs { client, emulator }
            }
        }
    }

    /// Creates [`BUCKET`] on the emulator (nothing to do for a folder).
    pub async fn create_bucket(&self) {
        match self {
            TestBucket::Local { .. } => {}
            TestBucket::S3 { client, .. } => {
                client
                    .create_bucket()
                    .bucket(BUCKET)
                    .send()
                    .await
                    .expect("create S3 bucket");
            }
            TestBucket::Gcs { client, .. } => {
                client
                    .insert_bucket(&InsertBucketRequest {
                        name: BUCKET.to_owned(),
                        ..InsertBucketRequest::default()
                    })
                    .await
                    .expect("create GCS bucket");
            }
        }
    }

    /// The URI of `prefix` in this bucket, as an API config names it.
    pub fn uri(&self, prefix: &str) -> String {
        match self {
            TestBucket::Local { root } => format!("file://{}/{prefix}", root.path().display()),
            TestBucket::S3 { .. } => format!("s3://{BUCKET}/{prefix}"),
            TestBucket::Gcs { .. } => format!("gs://{BUCKET}/{prefix}"),
        }
    }

    /// Storage options pointing the model-store at this bucket's emulator.
    pub fn storage_options(&self) -> StorageOptions {
        match self {
            TestBucket::Local { .. } => StorageOptions::default(),
            TestBucket::S3 { emulator, .. } => StorageOptions {
                s3: s3_options(emulator),
                ..StorageOptions::default()
            },
            TestBucket::Gcs { emulator, .. } => StorageOptions {
                gcs: gcs_options(emulator),
                ..StorageOptions::default()
            },
        }
    }

    /// The emulator's URL; None for a folder.
    pub fn emulator_endpoint(&self) -> Option<&str> {
        match self {
            TestBucket::Local { .. } => None,
            TestBucket::S3 { emulator, .. } | TestBucket::Gcs { emulator, .. } => {
                Some(&emulator.endpoint)
            }
        }
    }

    /// The emulator's socket address, for a proxy put in front of it.
    pub fn emulator_addr(&self) -> SocketAddr {
        self.emulator_endpoint()
            .expect("a bucket on an emulator")
            .trim_start_matches("http://")
            .parse()
            .expect("emulator address")
    }

    /// Writes an object.
    pub async fn put(&self, key: &str, body: impl Into<Vec<u8>>) {
        let body = body.into();
        match self {
            TestBucket::Local { root } => {
                let path = root.path().join(key);
                tokio::fs::create_dir_all(path.parent().expect("key has a folder"))
                    .await
                    .expect("create folders");
                // Write beside, then rename: a reader never sees half a file,
                // and an in-place update gets a new inode as uploads do.
                let tmp = path.with_extension("part~");
                tokio::fs::write(&tmp, body).await.expect("write file");
                tokio::fs::rename(&tmp, &path).await.expect("rename file");
            }
            TestBucket::S3 { client, .. } => {
                client
                    .put_object()
                    .bucket(BUCKET)
                    .key(key)
                    .body(body.into())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
            }
            TestBucket::Gcs { client, .. } => {
                let request = UploadObjectRequest {
                    bucket: BUCKET.to_owned(),
                    ..UploadObjectRequest::default()
                };
                client
                    .upload_object(
                        &request,
                        body,
                        &UploadType::Simple(Media::new(key.to_owned())),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
            }
        }
    }

    /// Deletes an object.
    pub async fn delete(&self, key: &str) {
        match self {
            TestBucket::Local { root } => {
                tokio::fs::remove_file(root.path().join(key))
                    .await
                    .unwrap_or_else(|e| panic!("delete {key}: {e}"));
            }
            TestBucket::S3 { client, .. } => {
                client
                    .delete_object()
                    .bucket(BUCKET)
                    .key(key)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("delete {key}: {e:?}"));
            }
            TestBucket::Gcs { client, .. } => {
                client
                    .delete_object(&DeleteObjectRequest {
                        bucket: BUCKET.to_owned(),
                        object: key.to_owned(),
                        ..DeleteObjectRequest::default()
                    })
                    .await
                    .unwrap_or_else(|e| panic!("delete {key}: {e:?}"));
            }
        }
    }

    /// Deletes every object under `prefix` (a folder, on a disk).
    pub async fn delete_prefix(&self, prefix: &str) {
        match self {
            TestBucket::Local { root } => {
                tokio::fs::remove_dir_all(root.path().join(prefix))
                    .await
                    .unwrap_or_else(|e| panic!("delete {prefix}: {e}"));
            }
            _ => {
                for key in self.keys(prefix).await {
                    self.delete(&key).await;
                }
            }
        }
    }

    async fn keys(&self, prefix: &str) -> Vec<String> {
        match self {
            TestBucket::Local { .. } => unreachable!("local folders delete recursively"),
            TestBucket::S3 { client, .. } => client
                .list_objects_v2()
                .bucket(BUCKET)
                .prefix(prefix)
                .send()
                .await
                .expect("list")
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .collect(),
            TestBucket::Gcs { client, .. } => client
                .list_objects(&ListObjectsRequest {
                    bucket: BUCKET.to_owned(),
                    prefix: Some(prefix.to_owned()),
                    ..ListObjectsRequest::default()
                })
                .await
                .expect("list")
                .items
                .unwrap_or_default()
                .into_iter()
                .map(|o| o.name)
                .collect(),
        }
    }
}

/// moto accepts any credentials; static ones keep the AWS chain (and its
/// instance-metadata lookups) out of tests.
fn s3_options(emulator: &Emulator) -> S3Options {
    S3Options {
        endpoint: Some(emulator.endpoint.clone()),
        region: Some("us-east-1".to_owned()),
        credentials: Some(("test".to_owned(), "test".to_owned())),
    }
}

fn gcs_options(emulator: &Emulator) -> GcsOptions {
    GcsOptions {
        endpoint: Some(emulator.endpoint.clone()),
    }
}
