//! Where models live: a local folder, or a bucket and prefix on S3 or GCS.
//! Parsed once from the config; printed as a URI in every message that
//! leaves the model-store, and parsed back from that URI by subscribers.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Why a location could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// Nothing written.
    #[error("must not be empty")]
    Empty,
    /// `file://` followed by a relative path.
    #[error("{0:?}: a file:// URI needs an absolute path (file:///...)")]
    RelativeFileUri(String),
    /// A scheme other than `s3`, `gs` or `file`.
    #[error("{text:?}: unsupported scheme {scheme:?}; use s3://, gs://, file:// or a local path")]
    UnsupportedScheme {
        /// The location as written.
        text: String,
        /// The scheme found.
        scheme: String,
    },
    /// `s3://` or `gs://` with nothing after it.
    #[error("the URI names no bucket")]
    NoBucket,
    /// A bucket name the cloud would refuse.
    #[error("{0:?} is not a valid bucket name")]
    BadBucket(String),
    /// A prefix that could not name one folder unambiguously.
    #[error("prefix {0:?} has an empty, '.' or '..' segment")]
    BadPrefix(String),
}

/// A folder of models: local, or a bucket and prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// An absolute, lexically normalized folder.
    Local(PathBuf),
    /// An S3 bucket; `prefix` is empty or ends with '/'.
    S3 {
        /// The bucket's name.
        bucket: String,
        /// Where in the bucket; empty or ending with '/'.
        prefix: String,
    },
    /// A GCS bucket; `prefix` as for S3.
    Gcs {
        /// The bucket's name.
        bucket: String,
        /// Where in the bucket; empty or ending with '/'.
        prefix: String,
    },
}

impl Location {
    /// Parses `s3://bucket/prefix`, `gs://bucket/prefix`, `file:///abs/path`
    /// or a plain path (relative ones are resolved against `base`).
    pub fn parse(text: &str, base: &Path) -> Result<Location, LocationError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(LocationError::Empty);
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = bucket_and_prefix(rest)?;
            return Ok(Location::S3 { bucket, prefix });
        }
        if let Some(rest) = text.strip_prefix("gs://") {
            let (bucket, prefix) = bucket_and_prefix(rest)?;
            return Ok(Location::Gcs { bucket, prefix });
        }
        if let Some(rest) = text.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(LocationError::RelativeFileUri(text.to_owned()));
            }
            return Ok(Location::Local(normalize(Path::new(rest))));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(LocationError::UnsupportedScheme {
                text: text.to_owned(),
                scheme: scheme.to_owned(),
            });
        }
        Ok(Location::Local(normalize(&base.join(text))))
    }

    /// Whether `other` is this location or a folder inside it: the same
    /// backend and bucket, and a path or prefix that extends this one by
    /// whole segments (both are normalized: no `..` is left in either).
    pub fn contains(&self, other: &Location) -> bool {
        match (self, other) {
            (Location::Local(root), Location::Local(path)) => path.starts_with(root),
            (
                Location::S3 { bucket, prefix },
                Location::S3 {
                    bucket: b,
                    prefix: p,
                },
            )
            | (
                Location::Gcs { bucket, prefix },
                Location::Gcs {
                    bucket: b,
                    prefix: p,
                },
            ) => bucket == b && p.starts_with(prefix.as_str()),
            _ => false,
        }
    }

    /// The location of a sub-folder, `rel` being '/'-separated and already
    /// checked to stay inside (see `storage::check_key`).
    pub fn child(&self, rel: &str) -> Location {
        let rel = rel.trim_matches('/');
        if rel.is_empty() {
            return self.clone();
        }
        match self {
            Location::Local(root) => Location::Local(root.join(rel)),
            Location::S3 { bucket, prefix } => Location::S3 {
                bucket: bucket.clone(),
                prefix: format!("{prefix}{rel}/"),
            },
            Location::Gcs { bucket, prefix } => Location::Gcs {
                bucket: bucket.clone(),
                prefix: format!("{prefix}{rel}/"),
            },
        }
    }
}

/// Always ends with '/', so that joining a relative file path is plain
/// concatenation.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(root) => {
                let root = root.display().to_string();
                let root = root.trim_end_matches('/');
                write!(f, "file://{root}/")
            }
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Location::Gcs { bucket, prefix } => write!(f, "gs://{bucket}/{prefix}"),
        }
    }
}

fn bucket_and_prefix(rest: &str) -> Result<(String, String), LocationError> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(LocationError::NoBucket);
    }
    if bucket.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(LocationError::BadBucket(bucket.to_owned()));
    }
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return Ok((bucket.to_owned(), String::new()));
    }
    if prefix
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(LocationError::BadPrefix(prefix.to_owned()));
    }
    Ok((bucket.to_owned(), format!("{prefix}/")))
}

/// Lexical normalization (no file system access): the folder may not exist
/// yet, and a later `..` must not depend on symlinks at parse time.
fn normalize(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_whole_segments_of_the_same_bucket_only() {
        let at = |text: &str| Location::parse(text, Path::new("/")).unwrap();
        let root = at("s3://models/zoo");
        assert!(root.contains(&at("s3://models/zoo/a/1/")));
        assert!(root.contains(&at("s3://models/zoo")));
        assert!(!root.contains(&at("s3://models/zookeeper/1/")));
        assert!(!root.contains(&at("s3://other/zoo/a/")));
        assert!(!root.contains(&at("gs://models/zoo/a/")));
        assert!(at("s3://models").contains(&at("s3://models/anything/")));
        let local = at("file:///srv/models/iris");
        assert!(local.contains(&at("file:///srv/models/iris/2/")));
        assert!(!local.contains(&at("file:///srv/models/iris2/")));
        assert!(!local.contains(&at("file:///srv/models/iris/../../../etc/")));
        assert!(!local.contains(&at("file:///etc/")));
        assert!(!local.contains(&at("s3://srv/models/iris/")));
    }

    #[test]
    fn parses_each_scheme_and_prints_a_uri() {
        let base = Path::new("/etc/hotswap");
        let cases = [
            ("s3://bkt/models/iris", "s3://bkt/models/iris/"),
            ("s3://bkt/models/iris/", "s3://bkt/models/iris/"),
            ("s3://bkt", "s3://bkt/"),
            ("gs://bkt/a/b", "gs://bkt/a/b/"),
            ("file:///srv/models/", "file:///srv/models/"),
            ("models/iris", "file:///etc/hotswap/models/iris/"),
            ("../models", "file:///etc/models/"),
            ("/abs/./x/../y", "file:///abs/y/"),
        ];
        for (text, uri) in cases {
            let loc = Location::parse(text, base).unwrap();
            assert_eq!(loc.to_string(), uri, "{text}");
            // Subscribers parse the printed URI back.
            assert_eq!(Location::parse(&loc.to_string(), base).unwrap(), loc);
        }
    }

    #[test]
    fn rejects_bad_locations_with_a_reason() {
        let base = Path::new("/");
        for (text, needle) in [
            ("", "empty"),
            ("s3://", "no bucket"),
            ("s3:///prefix", "no bucket"),
            ("gs://b/a//c", "empty"),
            ("s3://b/a/../c", "'..'"),
            ("http://host/x", "unsupported scheme"),
            ("file://relative/x", "absolute"),
        ] {
            let err = Location::parse(text, base).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn child_extends_the_prefix() {
        let s3 = Location::parse("s3://b/models", Path::new("/")).unwrap();
        assert_eq!(s3.child("iris/3").to_string(), "s3://b/models/iris/3/");
        let local = Location::parse("/srv", Path::new("/")).unwrap();
        assert_eq!(local.child("iris/").to_string(), "file:///srv/iris/");
        assert_eq!(local.child("").to_string(), "file:///srv/");
    }
}
