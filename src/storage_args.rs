//! Object-storage flags shared by the services that read buckets (the
//! model-store lists them, workers download from them).

use hotswap_model_store::storage::{GcsOptions, S3Options, StorageOptions};

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
    pub fn options(self) -> StorageOptions {
        StorageOptions {
            s3: S3Options {
                endpoint: self.s3_endpoint,
                ..S3Options::default()
            },
            gcs: GcsOptions {
                endpoint: self.gcs_endpoint.or_else(emulator_host),
            },
        }
    }
}

/// The variable Google's own clients read for an emulator: `host:port`.
fn emulator_host() -> Option<String> {
    let host = std::env::var("STORAGE_EMULATOR_HOST").ok()?;
    let host = host.trim();
    if host.is_empty() {
        None
    } else if host.contains("://") {
        Some(host.to_owned())
    } else {
        Some(format!("http://{host}"))
    }
}
