//! S3 and S3-compatible stores through `aws-sdk-s3`.

use std::time::SystemTime;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use futures::StreamExt;

use super::{ByteStream, Listed, ObjectMeta, ObjectStore, relative};
use crate::Error;

/// Where the S3 client connects and as whom. Unset fields come from the
/// standard AWS chain (environment, profile, web identity, container and
/// instance metadata), as every AWS tool does.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// An S3-compatible endpoint (emulator, MinIO, ...). Setting it also
    /// switches to path-style addressing, which such stores expect.
    pub endpoint: Option<String>,
    /// The region to sign with, instead of the chain's.
    pub region: Option<String>,
    /// Static access key and secret, instead of the credential chain.
    pub credentials: Option<(String, String)>,
}

/// Region used when neither the options nor the chain name one: S3 signs
/// with a region, and us-east-1 is what the global endpoint answers as.
const FALLBACK_REGION: &str = "us-east-1";

/// Connecting to S3 takes less than this, or fails.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// An S3 client over rustls, with a bounded connect time.
pub async fn client(options: &S3Options) -> Client {
    // rustls with ring: no C toolchain beyond what cargo needs, no OpenSSL.
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    // A store that does not accept the connection fails fast (the request
    // as a whole is bounded by its callers: listing and download limits).
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(timeouts);
    if let Some(endpoint) = &options.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some((key, secret)) = &options.credentials {
        loader = loader.credentials_provider(Credentials::new(
            key.clone(),
            secret.clone(),
            None,
            None,
            "hotswap-static",
        ));
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        config = config.region(Region::new(FALLBACK_REGION));
    }
    if options.endpoint.is_some() {
        config = config.force_path_style(true);
    }
    Client::from_conf(config.build())
}

/// What S3 said, as its error code and message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct S3Failure(String);

pub struct S3Store {
    client: Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: Client, bucket: String) -> S3Store {
        S3Store { client, bucket }
    }

    fn error<E, R>(&self, err: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        // The SDK's own Display is a bare "service error"; the code and
        // message (or, without them, the whole chain) say what happened.
        let source = match err.code() {
            Some(code) => S3Failure(format!("{code}: {}", err.message().unwrap_or_default())),
            None => S3Failure(DisplayErrorContext(&err).to_string()),
        };
        Error::backend(format!("s3://{}", self.bucket), source)
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, Error> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(e))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| relative(k, prefix)) else {
                    continue;
                };
                out.push(ObjectMeta {
                    key,
                    size: object.size().unwrap_or(0).max(0) as u64,
                    etag: object
                        .e_tag()
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_owned(),
                    modified: object
                        .last_modified()
                        .and_then(|t| SystemTime::try_from(*t).ok()),
                });
            }
        }
        Ok(out)
    }

    async fn get(&self, key: &str, listed: Option<&Listed>) -> Result<ByteStream, Error> {
        let mut request = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(etag) = listed.map(|l| &l.etag).filter(|e| !e.is_empty()) {
            request = request.if_match(format!("\"{etag}\""));
        }
        let response = request.send().await.map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                Error::ObjectNotFound {
                    key: key.to_owned(),
                }
            } else if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) {
                Error::Changed {
                    key: key.to_owned(),
                }
            } else {
                self.error(e)
            }
        })?;
        let location = format!("s3://{}/{key}", self.bucket);
        let body = response.body;
        Ok(futures::stream::unfold(Some(body), move |body| {
            let location = location.clone();
            async move {
                let mut body = body?;
                match body.next().await {
                    Some(Ok(bytes)) => Some((Ok(bytes), Some(body))),
                    Some(Err(e)) => Some((Err(Error::backend(location, e)), None)),
                    None => None,
                }
            }
        })
        .boxed())
    }
}
