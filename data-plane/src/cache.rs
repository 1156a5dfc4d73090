//! The worker's disk cache: one folder per model version and content hash,
//! filled through a temporary folder and one atomic rename, so a folder
//! that exists is always complete. Object keys are checked before any path
//! is built: nothing is written outside the cache root.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod download;

use hotswap_common::backoff;
use hotswap_proto::error::Report;
use hotswap_proto::v1::ModelVersion;
use hotswap_storage::Storage;
use sha2::{Digest, Sha256};

use crate::Error;

pub use download::{DownloadError, DownloadLimits};

/// Waits between tries of a failed download.
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Marks a folder as a hotswap cache, which a worker may empty.
const MARKER: &str = ".hotswap-cache";

pub struct DiskCache {
    root: PathBuf,
    storage: Arc<Storage>,
    limits: DownloadLimits,
}

impl DiskCache {
    /// Uses `root`: created if missing; emptied if it is a cache an earlier
    /// worker left (its contents are not accounted for). A non-empty folder
    /// without the cache's marker file is refused rather than emptied: a
    /// mistyped `--cache-dir` must not delete someone's files.
    pub fn new(
        root: PathBuf,
        storage: Arc<Storage>,
        limits: DownloadLimits,
    ) -> std::io::Result<DiskCache> {
        let marker = root.join(MARKER);
        if root.exists() {
            let mut entries = std::fs::read_dir(&root)?.peekable();
            if entries.peek().is_some() && !marker.exists() {
                return Err(std::io::Error::other(format!(
                    "{} is not empty and is not a hotswap cache (no {MARKER} file); \
                     give an empty or new folder",
                    root.display()
                )));
            }
            for entry in entries {
                let path = entry?.path();
                if path.is_dir() {
                    std::fs::remove_dir_all(&path)?;
                } else if path != marker {
                    std::fs::remove_file(&path)?;
                }
            }
        }
        std::fs::create_dir_all(root.join(".tmp"))?;
        std::fs::write(
            &marker,
            "hotswap worker disk cache: emptied at every worker start\n",
        )?;
        Ok(DiskCache {
            root,
            storage,
            limits,
        })
    }

    /// The folder holding `version`'s files, downloading them if needed.
    /// A download that fails for a reason that may pass (a stall, the
    /// store unreachable) is tried again after a jittered backoff, up to
    /// the limits' attempts.
    pub async fn fetch(&self, version: &ModelVersion) -> Result<PathBuf, Error> {
        let dir = self.dir_for(version);
        if tokio::fs::try_exists(&dir).await.unwrap_or(false) {
            return Ok(dir);
        }
        let what = describe(version);
        let mut delays = backoff::delays(RETRY_MIN, RETRY_MAX);
        let mut attempt = 1;
        loop {
            let tmp = self
                .root
                .join(".tmp")
                .join(uuid::Uuid::new_v4().to_string());
            let result =
                download::version(&self.storage, &self.limits, version, &what, &tmp, &dir).await;
            if tokio::fs::try_exists(&tmp).await.unwrap_or(false) {
                let _ = tokio::fs::remove_dir_all(&tmp).await;
            }
            match result {
                Ok(()) => return Ok(dir),
                Err(e) if e.may_pass() && attempt < self.limits.attempts => {
                    let delay = delays.next_delay();
                    tracing::warn!(version = %what, error = %Report(&e), attempt, retry_in = ?delay,
                        "download failed; trying again");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(source) => return Err(Error::Download { what, source }),
            }
        }
    }

    /// Deletes a version's folder (it may be in use by a loaded model: the
    /// backends read files only while loading).
    pub async fn remove(&self, dir: &Path) {
        if let Err(e) = tokio::fs::remove_dir_all(dir).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), error = %e, "could not delete a cached version");
        }
    }

    /// `root/<api>/<model>/<version>-<hash>`: names are reduced to safe
    /// characters, with a digest so that different names never collide.
    pub fn dir_for(&self, version: &ModelVersion) -> PathBuf {
        let hash: String = version.content_hash.chars().take(16).collect();
        self.root
            .join(safe_name(&version.api))
            .join(safe_name(&version.model))
            .join(format!("{}-{}", version.version, safe_name(&hash)))
    }
}

fn safe_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if clean == name && !name.is_empty() {
        return clean;
    }
    let digest = hex::encode(&Sha256::digest(name.as_bytes())[..4]);
    format!("{clean}~{digest}")
}

pub fn describe(version: &ModelVersion) -> String {
    format!(
        "{}/{} version {}",
        version.api, version.model, version.version
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotswap_proto::error::report;
    use hotswap_proto::v1::ModelFile;
    use hotswap_storage::StorageOptions;

    fn version(bucket: &Path, files: &[(&str, u64)]) -> ModelVersion {
        ModelVersion {
            api: "a".into(),
            model: "m".into(),
            version: 1,
            location: format!("file://{}/", bucket.display()),
            content_hash: "abcdef0123456789".into(),
            files: files
                .iter()
                .map(|(p, size)| ModelFile {
                    path: (*p).into(),
                    size: *size,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn downloads_are_checked_and_stay_inside_the_cache() {
        let bucket = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(bucket.path().join("sub")).unwrap();
        std::fs::write(bucket.path().join("model.onnx"), b"12345").unwrap();
        std::fs::write(bucket.path().join("sub/extra.txt"), b"xy").unwrap();
        let root = tempfile::tempdir().unwrap();
        let cache_root = root.path().join("cache");
        let cache = DiskCache::new(
            cache_root.clone(),
            Arc::new(Storage::new(StorageOptions::default())),
            DownloadLimits::default(),
        )
        .unwrap();

        let good = version(bucket.path(), &[("model.onnx", 5), ("sub/extra.txt", 2)]);
        let dir = cache.fetch(&good).await.unwrap();
        assert!(dir.starts_with(&cache_root));
        assert_eq!(std::fs::read(dir.join("sub/extra.txt")).unwrap(), b"xy");

        // A size that disagrees with the listing: nothing is kept.
        let mut wrong = version(bucket.path(), &[("model.onnx", 6)]);
        wrong.content_hash = "other".into();
        let err = report(&cache.fetch(&wrong).await.unwrap_err());
        assert!(err.contains("got 5 bytes"), "{err}");
        assert!(!cache.dir_for(&wrong).exists());

        // Keys that could leave the cache are refused before any write.
        for bad in ["../escape", "/abs", "a//b", "sub/../../x"] {
            let mut v = version(bucket.path(), &[(bad, 1)]);
            v.content_hash = format!("h{bad}");
            let err = report(&cache.fetch(&v).await.unwrap_err());
            assert!(err.contains("refused"), "{bad}: {err}");
        }
        assert!(!root.path().join("escape").exists() && !root.path().join("x").exists());
        // Temporary folders are cleaned up after failures.
        assert_eq!(
            std::fs::read_dir(cache_root.join(".tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn names_cannot_escape_or_collide() {
        assert_eq!(safe_name("iris"), "iris");
        assert!(!safe_name("..").contains('.'));
        assert!(!safe_name("a/b").contains('/'));
        assert_ne!(safe_name("a/b"), safe_name("a_b"));
        assert_ne!(safe_name(""), "");
    }
}
