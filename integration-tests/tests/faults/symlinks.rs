//! Symbolic links in a local model folder are followed only while they stay
//! in the folder the config names: a link to a folder outside (or to `/`)
//! would list files that are not the model's, on every poll. Links inside
//! still work.

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::store::{StoreServer, Watcher, file_paths};
use hotswap_integration_tests::worker::iris;

#[tokio::test]
async fn links_out_of_the_bucket_are_not_followed() {
    let bucket = TestBucket::new(Backend::Local).await;
    let TestBucket::Local { root } = &bucket else {
        unreachable!("a local bucket")
    };
    bucket.put("iris/1/model.onnx", iris(0)).await;
    bucket
        .put("iris/.shared/labels.txt", "setosa versicolor virginica")
        .await;
    bucket
        .put("elsewhere/notes.txt", "beside the model folder")
        .await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "not the bucket's").unwrap();
    let link = |target: &std::path::Path, at: &str| {
        std::os::unix::fs::symlink(target, root.path().join(at)).unwrap();
    };
    // Out of the model folder: not followed.
    link(outside.path(), "iris/1/outside");
    link(&root.path().join("elsewhere"), "iris/1/beside");
    link(std::path::Path::new("/"), "iris/1/everything");
    // Inside it: a linked folder holds the model's files, and a linked
    // version folder is a version.
    link(&root.path().join("iris/.shared"), "iris/1/labels");
    link(&root.path().join("iris/1"), "iris/2");
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: '{}'}}}}}}",
        bucket.uri("iris")
    );
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let mut w = Watcher::synced(&store).await;
    w.until("iris 1 and 2", |w| {
        w.has("iris", "iris", 1) && w.has("iris", "iris", 2)
    })
    .await;
    for version in [1, 2] {
        let files = file_paths(w.get("iris", "iris", version).unwrap());
        assert_eq!(
            files,
            vec!["labels/labels.txt", "model.onnx"],
            "version {version}"
        );
    }
}
