//! A local folder as a bucket: the embedded default, and what docker compose
//! mounts.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::StreamExt;
use tokio_util::io::ReaderStream;

use super::{ByteStream, Listed, ObjectMeta, ObjectStore};
use crate::Error;

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore { root }
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, Error> {
        let dir = self.root.join(prefix);
        // A walk over tens of thousands of files is blocking work.
        tokio::task::spawn_blocking(move || walk(&dir))
            .await
            .map_err(|e| Error::backend("local folder", e))?
    }

    async fn get(&self, key: &str, listed: Option<&Listed>) -> Result<ByteStream, Error> {
        let path = self.root.join(key);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => Error::ObjectNotFound {
                    key: key.to_owned(),
                },
                _ => io_error(&path, e),
            })?;
        // The open file is what is read, whatever is renamed over the path
        // meanwhile: it must be the one the listing saw, before and after.
        let changed = || Error::Changed {
            key: key.to_owned(),
        };
        let expected = listed.filter(|l| !l.etag.is_empty()).cloned();
        if let Some(listed) = &expected {
            let meta = file.metadata().await.map_err(|e| io_error(&path, e))?;
            if meta.len() != listed.size || fingerprint(&meta) != listed.etag {
                return Err(changed());
            }
        }
        let at_end = match &expected {
            Some(listed) => Some((
                file.try_clone().await.map_err(|e| io_error(&path, e))?,
                listed.etag.clone(),
                changed(),
            )),
            None => None,
        };
        let shown = path.display().to_string();
        let bytes =
            ReaderStream::new(file).map(move |r| r.map_err(|e| Error::backend(shown.clone(), e)));
        // An in-place rewrite during the read shows in the file's mtime.
        let check = futures::stream::once(async move {
            match at_end {
                Some((file, etag, changed)) => match file.metadata().await {
                    Ok(meta) if fingerprint(&meta) == etag => None,
                    _ => Some(Err(changed)),
                },
                None => None,
            }
        })
        .filter_map(futures::future::ready);
        Ok(bytes.chain(check).boxed())
    }
}

/// What changes when a file is rewritten, for want of an ETag on a disk:
/// mtime, size and inode together change on every rewrite, including an
/// atomic rename over the file.
fn fingerprint(meta: &std::fs::Metadata) -> String {
    let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
    format!("{mtime_ns:x}-{:x}-{:x}", meta.len(), meta.ino())
}

/// Lists every file below `dir`. A folder that does not exist fails the
/// listing, as a missing bucket does: an unmounted volume or a folder
/// renamed away for a moment is unknown, not empty (an emptied folder
/// lists as empty).
fn walk(dir: &Path) -> Result<Vec<ObjectMeta>, Error> {
    match std::fs::metadata(dir) {
        Err(e) => return Err(io_error(dir, e)),
        Ok(m) if !m.is_dir() => {
            return Err(Error::backend(dir.display().to_string(), "not a folder"));
        }
        Ok(_) => {}
    }
    let mut out = Vec::new();
    // Symlinked model folders are common on local disks (walkdir detects
    // loops), but a link is followed only while it stays in the listed
    // folder: one to `/` would list the whole file system on every poll,
    // and files outside are not the model's.
    let root = std::fs::canonicalize(dir).map_err(|e| io_error(dir, e))?;
    let entries = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| !e.path_is_symlink() || stays_in(e.path(), &root));
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.loop_ancestor().is_some() => {
                tracing::warn!(path = ?e.path(), "skipping symlink loop");
                continue;
            }
            Err(e) if e.io_error().map(|io| io.kind()) == Some(ErrorKind::NotFound) => {
                // Deleted between readdir and stat: it is gone, like in the
                // next listing.
                continue;
            }
            Err(e) => {
                return Err(Error::backend(dir.display().to_string(), e));
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let Some(key) = rel.to_str() else {
            tracing::warn!(path = ?entry.path(), "skipping file whose name is not UTF-8");
            continue;
        };
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.io_error().map(|io| io.kind()) == Some(ErrorKind::NotFound) => continue,
            Err(e) => {
                return Err(Error::backend(entry.path().display().to_string(), e));
            }
        };
        out.push(ObjectMeta {
            key: key.to_owned(),
            size: meta.len(),
            etag: fingerprint(&meta),
            modified: meta.modified().ok(),
        });
    }
    Ok(out)
}

/// Whether a link's target is inside `root` (a canonical path); a broken
/// link is not.
fn stays_in(link: &Path, root: &Path) -> bool {
    let inside = std::fs::canonicalize(link).is_ok_and(|target| target.starts_with(root));
    if !inside {
        tracing::debug!(link = %link.display(), "not following a link out of the listed folder");
    }
    inside
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::backend(path.display().to_string(), e)
}
