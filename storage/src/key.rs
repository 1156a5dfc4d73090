//! Which object keys may become file paths. Keys come from buckets anyone
//! with write access controls; a key that could climb out of a folder on a
//! worker's disk must never reach a subscriber as a path.

/// What [`check_key`] makes of an object key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// A plain relative path.
    File,
    /// `folder/`: the zero-byte objects consoles create for folders; skipped
    /// silently.
    FolderMarker,
    /// Ignored with a warning; the reason says why.
    Unsafe(&'static str),
}

/// Checks a '/'-separated key relative to a listed folder.
pub fn check_key(key: &str) -> KeyCheck {
    if key.is_empty() {
        return KeyCheck::Unsafe("empty key");
    }
    if key.starts_with('/') {
        return KeyCheck::Unsafe("absolute path");
    }
    if key.chars().any(char::is_control) {
        return KeyCheck::Unsafe("control character");
    }
    let (body, marker) = match key.strip_suffix('/') {
        Some(body) => (body, true),
        None => (key, false),
    };
    for segment in body.split('/') {
        match segment {
            "" => return KeyCheck::Unsafe("empty path segment"),
            "." | ".." => return KeyCheck::Unsafe("'.' or '..' path segment"),
            _ => {}
        }
    }
    if marker {
        KeyCheck::FolderMarker
    } else {
        KeyCheck::File
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_are_files() {
        for key in [
            "model.onnx",
            "1/model.onnx",
            "a/b/variables.data-0-of-1",
            ".hidden",
        ] {
            assert_eq!(check_key(key), KeyCheck::File, "{key}");
        }
    }

    #[test]
    fn folder_markers_are_skipped() {
        assert_eq!(check_key("1/"), KeyCheck::FolderMarker);
        assert_eq!(check_key("a/b/"), KeyCheck::FolderMarker);
    }

    #[test]
    fn escaping_keys_are_unsafe() {
        for key in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "..",
            "a/..",
            "a\u{0}b",
            "//",
            "../",
        ] {
            assert!(matches!(check_key(key), KeyCheck::Unsafe(_)), "{key:?}");
        }
    }
}
