//! Object-storage flags shared by the services that read buckets (the
//! model-store lists them, workers download from them).

use hotswap_storage::{GcsOptions, S3Options, StorageOptions};

use crate::environment::Environment;

#[derive(clap::Args)]
pub struct StorageArgs {
    /// An S3-compatible endpoint (emulator, MinIO); also switches to
    /// path-style requests. Credentials and region come from the AWS chain.
    #[arg(long, env = "HOTSWAP_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// A GCS-compatible endpoint; STORAGE_EMULATOR_HOST is honoured too.
    #[arg(long, env = "HOTSWAP_GCS_ENDPOINT")]
    gcs_endpoint: Option<String>,
}

impl StorageArgs {
    pub fn options(self, env: &Environment) -> StorageOptions {
        StorageOptions {
            s3: S3Options {
                endpoint: self.s3_endpoint,
                ..S3Options::default()
            },
            gcs: GcsOptions {
                endpoint: self
                    .gcs_endpoint
                    .or_else(|| emulator_host(env.gcs_emulator_host.as_deref()?)),
            },
        }
    }
}

/// The variable Google's own clients read for an emulator: `host:port`.
fn emulator_host(host: &str) -> Option<String> {
    let host = host.trim();
    if host.is_empty() {
        None
    } else if host.contains("://") {
        Some(host.to_owned())
    } else {
        Some(format!("http://{host}"))
    }
}
