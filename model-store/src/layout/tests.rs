use std::path::Path;

use super::*;

fn object(key: &str) -> ObjectMeta {
    ObjectMeta {
        key: key.to_owned(),
        size: key.len() as u64,
        etag: format!("etag-{key}"),
        modified: Some(UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)),
    }
}

fn listing(keys: &[&str]) -> Vec<ObjectMeta> {
    keys.iter().map(|k| object(k)).collect()
}

fn single(model: &str, at: &str) -> SourceConfig {
    SourceConfig {
        model: Some(model.to_owned()),
        location: Location::parse(at, Path::new("/")).unwrap(),
        signature_key: None,
        version_labels: Default::default(),
        traffic: Default::default(),
        version_policy: Default::default(),
    }
}

fn dir(at: &str) -> SourceConfig {
    SourceConfig {
        model: None,
        ..single("unused", at)
    }
}

/// (model, version, versioned, valid, location, files)
fn summary(versions: &[ModelVersion]) -> Vec<(String, u64, bool, bool, String, Vec<String>)> {
    versions
        .iter()
        .map(|v| {
            (
                v.model.clone(),
                v.version,
                v.versioned,
                v.state == VersionState::Valid as i32,
                v.location.clone(),
                v.files.iter().map(|f| f.path.clone()).collect(),
            )
        })
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

#[test]
fn an_unversioned_model_is_version_1() {
    let v = versions(
        "api",
        Layout::Onnx,
        &single("iris", "s3://b/iris"),
        &listing(&["model.onnx", "labels.txt"]),
    );
    assert_eq!(
        summary(&v),
        [(
            "iris".into(),
            1,
            false,
            true,
            "s3://b/iris/".into(),
            s(&["labels.txt", "model.onnx"])
        )]
    );
}

#[test]
fn integer_folders_are_versions_and_hidden_entries_are_ignored() {
    let v = versions(
        "api",
        Layout::Onnx,
        &single("iris", "s3://b/iris"),
        &listing(&[
            "1/model.onnx",
            "10/model.onnx",
            "2/a.onnx",
            "2/b.onnx",
            ".DS_Store",
        ]),
    );
    assert_eq!(
        summary(&v),
        [
            (
                "iris".into(),
                1,
                true,
                true,
                "s3://b/iris/1/".into(),
                s(&["model.onnx"])
            ),
            (
                "iris".into(),
                2,
                true,
                false,
                "s3://b/iris/2/".into(),
                s(&["a.onnx", "b.onnx"])
            ),
            (
                "iris".into(),
                10,
                true,
                true,
                "s3://b/iris/10/".into(),
                s(&["model.onnx"])
            ),
        ]
    );
    assert!(v[1].reason.contains("found 2"), "{}", v[1].reason);
}

#[test]
fn a_dir_gives_one_model_per_sub_folder() {
    let v = versions(
        "api",
        Layout::TensorFlow,
        &dir("gs://b/models"),
        &listing(&[
            "README.md",
            ".cache/x",
            "text-generator/saved_model.pb",
            "text-generator/variables/variables.index",
            "text-generator/variables/variables.data-00000-of-00001",
            "sentiment/24753823/saved_model.pb",
            "sentiment/24753823/variables/variables.index",
            "sentiment/24753823/variables/variables.data-00000-of-00001",
            "sentiment/26234288/saved_model.pb",
        ]),
    );
    let got = summary(&v);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].0, "sentiment");
    assert_eq!((got[0].1, got[0].3), (24753823, true));
    assert_eq!(got[0].4, "gs://b/models/sentiment/24753823/");
    assert_eq!((got[1].1, got[1].3), (26234288, false));
    assert!(v[1].reason.contains("variables/variables.index"));
    assert_eq!(
        (got[2].0.as_str(), got[2].1, got[2].2, got[2].3),
        ("text-generator", 1, false, true)
    );
}

#[test]
fn version_folders_beside_other_entries_are_one_unversioned_model() {
    let onnx = versions(
        "api",
        Layout::Onnx,
        &single("m", "/m"),
        &listing(&["1/model.onnx", "notes.txt"]),
    );
    assert_eq!(onnx.len(), 1);
    assert!(!onnx[0].versioned);
    assert_eq!(onnx[0].state, VersionState::Invalid as i32);
    assert!(
        onnx[0]
            .reason
            .contains("version folders (1) sit beside other entries (notes.txt)"),
        "{}",
        onnx[0].reason
    );
    let python = versions(
        "api",
        Layout::Python,
        &single("m", "/m"),
        &listing(&["1/model.pkl", "notes.txt"]),
    );
    assert_eq!(python[0].state, VersionState::Valid as i32);
    assert!(
        python[0]
            .reason
            .contains("version folders (1) sit beside other entries (notes.txt)"),
        "a valid version says how it was read: {}",
        python[0].reason
    );
}

#[test]
fn non_canonical_numbers_are_not_versions() {
    for name in ["07", "+7", "1.0", "v1", "99999999999999999999999"] {
        assert_eq!(version_number(name), None, "{name}");
    }
    assert_eq!(version_number("0"), Some(0));
    assert_eq!(version_number("1523423423"), Some(1523423423));
}

#[test]
fn the_content_hash_follows_files_and_location() {
    let a = versions(
        "api",
        Layout::Onnx,
        &single("m", "/m"),
        &listing(&["model.onnx"]),
    );
    let same = versions(
        "api",
        Layout::Onnx,
        &single("m", "/m"),
        &listing(&["model.onnx"]),
    );
    assert_eq!(a[0].content_hash, same[0].content_hash);

    let mut rewritten = listing(&["model.onnx"]);
    rewritten[0].etag = "other".into();
    let b = versions("api", Layout::Onnx, &single("m", "/m"), &rewritten);
    assert_ne!(a[0].content_hash, b[0].content_hash);

    let mut touched = listing(&["model.onnx"]);
    touched[0].modified = Some(UNIX_EPOCH);
    let c = versions("api", Layout::Onnx, &single("m", "/m"), &touched);
    assert_ne!(a[0].content_hash, c[0].content_hash);

    // The same files moved into a version folder are a different version.
    let moved = versions(
        "api",
        Layout::Onnx,
        &single("m", "/m"),
        &listing(&["1/model.onnx"]),
    );
    assert_ne!(a[0].content_hash, moved[0].content_hash);
}

#[test]
fn an_empty_listing_has_no_versions() {
    assert!(versions("api", Layout::Python, &single("m", "/m"), &[]).is_empty());
    assert!(versions("api", Layout::Python, &dir("/m"), &listing(&["loose-file"])).is_empty());
}
