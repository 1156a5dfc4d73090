//! One download of a version into the disk cache: every file fetched
//! through the storage layer pinned to the listing, into a temporary
//! folder renamed into place, with bounds on waiting (for the first byte,
//! between bytes) so a store that stops answering fails the download
//! instead of holding the version forever, and progress logged for long
//! downloads.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hotswap_proto::v1::ModelVersion;
use hotswap_storage::{KeyCheck, Listed, Location, LocationError, Storage, check_key};
use tokio::io::AsyncWriteExt;

/// Bounds on one download.
#[derive(Debug, Clone)]
pub struct DownloadLimits {
    /// From asking for an object to the first bytes of its body (connecting
    /// and the response's headers included).
    pub first_byte: Duration,
    /// The longest wait for an object's next bytes.
    pub stall: Duration,
    /// Tries of a version whose download fails for a reason that may pass.
    pub attempts: u32,
    /// A download that takes longer logs its progress this often.
    pub progress_every: Duration,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        DownloadLimits {
            first_byte: Duration::from_secs(30),
            stall: Duration::from_secs(30),
            attempts: 3,
            progress_every: Duration::from_secs(10),
        }
    }
}

/// Why a version's files did not make it into the cache.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The version's location is not one the storage layer can read.
    #[error("location {location}")]
    Location {
        /// The location as the listing gave it.
        location: String,
        /// What is wrong with it.
        #[source]
        source: LocationError,
    },

    /// The store failed to list or fetch a file.
    #[error(transparent)]
    Storage(#[from] hotswap_storage::Error),

    /// A listed file's key would be written outside the version's folder.
    #[error("file path {0:?} could leave the cache; refused")]
    UnsafePath(String),

    /// A file's size differs from the listing's: the version was
    /// rewritten while it was being fetched.
    #[error("{path}: got {got} bytes, the listing said {listed}; it changed during the download")]
    SizeChanged {
        /// The file, relative to the version.
        path: String,
        /// Bytes received.
        got: u64,
        /// Bytes the listing gave.
        listed: u64,
    },

    /// Nothing arrived for too long (connecting, waiting for the first
    /// byte, or between bytes).
    #[error("{path}: no data for {waited:?} ({phase})")]
    Stalled {
        /// The file, relative to the version.
        path: String,
        /// How long nothing arrived.
        waited: Duration,
        /// What the download was waiting for.
        phase: &'static str,
    },

    /// The local disk failed; the path and error went to the log, callers
    /// get what failed and the kind of error.
    #[error("writing {what} to the worker's disk cache failed: {kind}")]
    Disk {
        /// What was being written.
        what: String,
        /// The kind of I/O error.
        kind: std::io::ErrorKind,
    },
}

impl DownloadError {
    /// Whether trying again may succeed: a stall, an unreachable store.
    /// Not for a rewrite (the next listing brings it), a refused path or a
    /// full disk.
    pub fn may_pass(&self) -> bool {
        matches!(
            self,
            DownloadError::Stalled { .. }
                | DownloadError::Storage(hotswap_storage::Error::Backend { .. })
        )
    }
}

/// Downloads `version` into `tmp`, then renames it to `dir`.
pub(super) async fn version(
    storage: &Storage,
    limits: &DownloadLimits,
    version: &ModelVersion,
    what: &str,
    tmp: &Path,
    dir: &Path,
) -> Result<(), DownloadError> {
    let location = Location::parse(&version.location, Path::new("/")).map_err(|source| {
        DownloadError::Location {
            location: version.location.clone(),
            source,
        }
    })?;
    let folder = storage.open(&location).await?;
    tokio::fs::create_dir_all(tmp)
        .await
        .map_err(|e| local_error("the cache folder", tmp, e))?;
    let mut progress = Progress::new(what, version, limits.progress_every);
    for file in &version.files {
        let KeyCheck::File = check_key(&file.path) else {
            return Err(DownloadError::UnsafePath(file.path.clone()));
        };
        let target = tmp.join(&file.path);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| local_error("the cache folder", parent, e))?;
        }
        let mut out = tokio::fs::File::create(&target)
            .await
            .map_err(|e| local_error(&file.path, &target, e))?;
        // Pinned to the listing: a rewrite since is abandoned, not cached
        // under this content hash.
        let listed = Listed {
            size: file.size,
            etag: file.etag.clone(),
        };
        let stalled = |waited, phase| DownloadError::Stalled {
            path: file.path.clone(),
            waited,
            phase,
        };
        // One deadline for the answer and its first bytes; then a bound on
        // each wait for the next.
        let first_byte = tokio::time::Instant::now() + limits.first_byte;
        let mut stream = tokio::time::timeout_at(first_byte, folder.get(&file.path, Some(&listed)))
            .await
            .map_err(|_| stalled(limits.first_byte, "waiting for the first byte"))??;
        let mut written = 0u64;
        let mut first = true;
        loop {
            let (deadline, waited, phase) = match first {
                true => (first_byte, limits.first_byte, "waiting for the first byte"),
                false => (
                    tokio::time::Instant::now() + limits.stall,
                    limits.stall,
                    "between bytes",
                ),
            };
            first = false;
            let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => return Err(stalled(waited, phase)),
                Ok(None) => break,
                Ok(Some(chunk)) => chunk?,
            };
            written += chunk.len() as u64;
            // A file that grew since it was listed is a newer upload: stop
            // early, the next event brings the right size.
            if written > file.size {
                break;
            }
            out.write_all(&chunk)
                .await
                .map_err(|e| local_error(&file.path, &target, e))?;
            progress.add(chunk.len() as u64);
        }
        if written != file.size {
            return Err(DownloadError::SizeChanged {
                path: file.path.clone(),
                got: written,
                listed: file.size,
            });
        }
        out.flush()
            .await
            .map_err(|e| local_error(&file.path, &target, e))?;
    }
    if let Some(parent) = dir.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| local_error("the cache folder", parent, e))?;
    }
    match tokio::fs::rename(tmp, dir).await {
        Ok(()) => {}
        // Another download of the same content finished first.
        Err(_) if tokio::fs::try_exists(dir).await.unwrap_or(false) => {}
        Err(e) => return Err(local_error("the cache folder", dir, e)),
    }
    progress.done();
    Ok(())
}

/// Logs a long download's progress, so an operator sees it move (or not).
struct Progress<'a> {
    what: &'a str,
    total: u64,
    bytes: u64,
    started: Instant,
    every: Duration,
    last: Instant,
}

impl<'a> Progress<'a> {
    fn new(what: &'a str, version: &ModelVersion, every: Duration) -> Progress<'a> {
        let now = Instant::now();
        Progress {
            what,
            total: version.files.iter().map(|f| f.size).sum(),
            bytes: 0,
            started: now,
            every,
            last: now,
        }
    }

    fn add(&mut self, bytes: u64) {
        self.bytes += bytes;
        if self.last.elapsed() >= self.every {
            self.last = Instant::now();
            tracing::info!(version = %self.what, bytes = self.bytes, of = self.total,
                rate = %self.rate(), "downloading");
        }
    }

    fn done(&self) {
        metrics::counter!("hotswap_download_bytes_total").increment(self.bytes);
        metrics::histogram!("hotswap_download_duration_seconds")
            .record(self.started.elapsed().as_secs_f64());
        if self.started.elapsed() >= self.every {
            tracing::info!(version = %self.what, bytes = self.bytes, took = ?self.started.elapsed(),
                rate = %self.rate(), "downloaded");
        }
    }

    fn rate(&self) -> String {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        format!("{:.1} MB/s", self.bytes as f64 / seconds / 1e6)
    }
}

/// A local disk error for callers: what failed, without the cache's paths
/// (logged here instead, for operators).
fn local_error(what: &str, path: &Path, e: std::io::Error) -> DownloadError {
    tracing::warn!(path = %path.display(), error = %e, "disk cache error");
    DownloadError::Disk {
        what: what.to_owned(),
        kind: e.kind(),
    }
}
