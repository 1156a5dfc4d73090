//! The TensorFlow SavedModels the tests publish: the iris-like example
//! (examples/iris-tensorflow) and the fixtures in fixtures/tensorflow, both
//! made by the scripts beside them. A SavedModel is a folder, so it goes
//! into a bucket file by file.

use std::path::{Path, PathBuf};

use crate::bucket::TestBucket;
use crate::process::workspace_root;

/// The iris-like SavedModel whose answer is label `label` (0, 1 or 2) for
/// the iris input the ONNX tests use: the example's version `label + 1`.
pub fn iris(label: usize) -> PathBuf {
    workspace_root().join(format!(
        "examples/iris-tensorflow/models/iris/{}",
        label + 1
    ))
}

/// A fixture from integration-tests/fixtures/tensorflow (see
/// make_fixtures.py).
pub fn fixture(name: &str) -> PathBuf {
    workspace_root().join(format!("integration-tests/fixtures/tensorflow/{name}"))
}

/// Writes every file of the SavedModel folder `dir` under `prefix` (a
/// version folder such as "iris/1"). Variables first and the graph last,
/// as an exporter that writes in place would.
pub async fn put(bucket: &TestBucket, prefix: &str, dir: &Path) {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("read the SavedModel folder"))
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect();
    files.sort_by_key(|p| (p.ends_with("saved_model.pb"), p.clone()));
    for file in files {
        let rel = file.strip_prefix(dir).expect("inside the folder");
        let key = format!("{prefix}/{}", rel.display());
        bucket
            .put(&key, std::fs::read(&file).expect("read a SavedModel file"))
            .await;
    }
}
