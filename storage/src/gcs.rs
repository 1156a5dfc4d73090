//! Google Cloud Storage through the community `gcloud-storage` crate (JSON
//! API). The official `google-cloud-storage` crate lists objects over gRPC
//! (StorageControl), which no emulator here serves, so its listing could not
//! be tested; this crate lists, reads and writes against fake-gcs-server and
//! is what production runs too.

use std::sync::Once;
use std::time::SystemTime;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use gcloud_storage::client::{Client, ClientConfig};
use gcloud_storage::http::Error as GcsError;
use gcloud_storage::http::objects::download::Range;
use gcloud_storage::http::objects::get::GetObjectRequest;
use gcloud_storage::http::objects::list::ListObjectsRequest;

use super::{ByteStream, Listed, ObjectMeta, ObjectStore, relative};
use crate::Error;

/// Where the GCS client connects. Credentials come from the standard Google
/// chain (GOOGLE_APPLICATION_CREDENTIALS, gcloud's user credentials, the
/// metadata server); without any, requests are anonymous (public buckets).
#[derive(Debug, Clone, Default)]
pub struct GcsOptions {
    /// A GCS-compatible endpoint such as an emulator
    /// (`http://127.0.0.1:4443`). Emulators take anonymous requests, so no
    /// credentials are looked up when it is set.
    pub endpoint: Option<String>,
}

/// Objects per listing page: the JSON API's maximum.
const PAGE_SIZE: i32 = 1000;

/// A GCS client: anonymous against an emulator `endpoint`, otherwise with
/// Google's application default credentials.
pub async fn client(options: &GcsOptions) -> Result<Client, Error> {
    install_crypto_provider();
    let config = match &options.endpoint {
        Some(endpoint) => ClientConfig {
            storage_endpoint: endpoint.trim_end_matches('/').to_owned(),
            ..ClientConfig::default()
        }
        .anonymous(),
        None => match ClientConfig::default().with_auth().await {
            Ok(config) => config,
            Err(e) => {
                tracing::warn!(error = %e, "no Google credentials found; GCS requests are anonymous");
                ClientConfig::default().anonymous()
            }
        },
    };
    Ok(Client::new(config))
}

/// reqwest is built without a bundled crypto provider (its default would
/// compile aws-lc from C); ring, which the S3 client already uses, serves.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed one: that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The HTTP status of a failed request, however the crate reports it.
fn status(err: &GcsError) -> Option<u16> {
    match err {
        GcsError::Response(r) => Some(r.code),
        GcsError::HttpClient(e) | GcsError::RawResponse(e, _) => e.status().map(|s| s.as_u16()),
        _ => None,
    }
}

pub struct GcsStore {
    client: Client,
    bucket: String,
}

impl GcsStore {
    pub fn new(client: Client, bucket: String) -> GcsStore {
        GcsStore { client, bucket }
    }

    fn error(&self, err: GcsError) -> Error {
        Error::backend(format!("gs://{}", self.bucket), err)
    }
}

#[async_trait]
impl ObjectStore for GcsStore {
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, Error> {
        let mut out = Vec::new();
        let mut page_token = None;
        loop {
            let request = ListObjectsRequest {
                bucket: self.bucket.clone(),
                prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
                max_results: Some(PAGE_SIZE),
                page_token: page_token.take(),
                ..ListObjectsRequest::default()
            };
            let page = self
                .client
                .list_objects(&request)
                .await
                .map_err(|e| self.error(e))?;
            for object in page.items.unwrap_or_default() {
                let Some(key) = relative(&object.name, prefix) else {
                    continue;
                };
                out.push(ObjectMeta {
                    key,
                    size: object.size.max(0) as u64,
                    // The generation changes on every rewrite of the object.
                    etag: object.generation.to_string(),
                    modified: object.updated.map(SystemTime::from),
                });
            }
            match page.next_page_token {
                Some(token) if !token.is_empty() => page_token = Some(token),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn get(&self, key: &str, listed: Option<&Listed>) -> Result<ByteStream, Error> {
        // The listing's etag is the generation, which changes on every
        // rewrite of the object: asking for that generation gets exactly
        // the listed bytes, or 404 once it was replaced (kept, with object
        // versioning on: then those bytes, as listed).
        let generation: Option<i64> = listed.and_then(|l| l.etag.parse().ok());
        let request = GetObjectRequest {
            bucket: self.bucket.clone(),
            object: key.to_owned(),
            generation,
            ..GetObjectRequest::default()
        };
        let stream = self
            .client
            .download_streamed_object(&request, &Range::default())
            .await
            .map_err(|e| match status(&e) {
                // The listed generation is gone: replaced or deleted.
                Some(404) if generation.is_some() => Error::Changed {
                    key: key.to_owned(),
                },
                Some(404) => Error::ObjectNotFound {
                    key: key.to_owned(),
                },
                _ => self.error(e),
            })?;
        let location = format!("gs://{}/{key}", self.bucket);
        Ok(stream
            .map_err(move |e| Error::backend(location.clone(), e))
            .boxed())
    }
}
