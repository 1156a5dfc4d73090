//! Changes in a bucket reach subscribers: new, rewritten and deleted
//! versions, restructured models, and an upload over several polls.

use std::time::Duration;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::store::{StoreServer, Watcher, file_paths, is_valid};
use hotswap_proto::v1::EventKind;

use crate::support::{contents, kinds, put_all, put_saved_model};

/// Scenario 2: new version, in-place rewrite, version deleted, model folder deleted,
/// unversioned model restructured into versions.
pub async fn changes(backend: Backend) {
    let bucket = TestBucket::new(backend).await;
    put_all(
        &bucket,
        &[
            "iris/1/model.onnx",
            "zoo/a/1/model.onnx",
            "zoo/a/2/model.onnx",
            "zoo/b/model.onnx",
            "flat/model.onnx",
        ],
    )
    .await;
    let config = format!(
        r#"
- {{name: iris, predictor: {{type: onnx, models: {{path: "{iris}"}}}}}}
- {{name: zoo, predictor: {{type: onnx, models: {{dir: "{zoo}"}}}}}}
- {{name: flat, predictor: {{type: onnx, models: {{path: "{flat}"}}}}}}
"#,
        iris = bucket.uri("iris"),
        zoo = bucket.uri("zoo"),
        flat = bucket.uri("flat"),
    );
    let server = StoreServer::start(&bucket, &config, |_| {}).await;
    let mut w = Watcher::synced(&server).await;
    assert_eq!(w.view.len(), 5);

    bucket.put("iris/2/model.onnx", "v2").await;
    let events = w.until("iris 2 added", |w| w.has("iris", "iris", 2)).await;
    assert_eq!(
        kinds(&events),
        [(EventKind::Added, "iris".into(), 2)].into()
    );
    let before = w.get("iris", "iris", 2).unwrap().clone();
    assert_eq!(before.files[0].size, 2);

    bucket.put("iris/2/model.onnx", "v2, retrained").await;
    let events = w
        .until("iris 2 updated", |w| {
            w.get("iris", "iris", 2)
                .is_some_and(|v| v.content_hash != before.content_hash)
        })
        .await;
    assert_eq!(
        kinds(&events),
        [(EventKind::Updated, "iris".into(), 2)].into()
    );
    let after = w.get("iris", "iris", 2).unwrap();
    assert_eq!(after.files[0].size, "v2, retrained".len() as u64);
    assert_ne!(after.files[0].etag, before.files[0].etag);

    bucket.delete("iris/1/model.onnx").await;
    let events = w
        .until("iris 1 removed", |w| !w.has("iris", "iris", 1))
        .await;
    assert_eq!(
        kinds(&events),
        [(EventKind::Removed, "iris".into(), 1)].into()
    );

    bucket.delete_prefix("zoo/a/").await;
    let events = w
        .until("zoo/a removed", |w| {
            !w.has("zoo", "a", 1) && !w.has("zoo", "a", 2)
        })
        .await;
    assert_eq!(
        kinds(&events),
        [
            (EventKind::Removed, "a".into(), 1),
            (EventKind::Removed, "a".into(), 2)
        ]
        .into()
    );
    assert!(w.has("zoo", "b", 1), "the other model stays");

    // Unversioned -> versioned: the model's version 1 moves into 1/, and 2/
    // appears. Subscribers see version 1 updated (new location) and 2 added,
    // never a removal.
    bucket.put("flat/1/model.onnx", "flat v1").await;
    bucket.put("flat/2/model.onnx", "flat v2").await;
    bucket.delete("flat/model.onnx").await;
    let events = w
        .until("flat restructured", |w| {
            w.get("flat", "flat", 1).is_some_and(|v| v.versioned) && w.has("flat", "flat", 2)
        })
        .await;
    let flat: Vec<(EventKind, u64)> = events.iter().map(|(k, v)| (*k, v.version)).collect();
    assert!(flat.contains(&(EventKind::Added, 2)), "{flat:?}");
    assert!(
        flat.iter()
            .all(|e| *e == (EventKind::Added, 2) || *e == (EventKind::Updated, 1)),
        "{flat:?}"
    );
    let v1 = w.get("flat", "flat", 1).unwrap();
    assert_eq!(
        (v1.location.as_str(), file_paths(v1)),
        (bucket.uri("flat/1/").as_str(), vec!["model.onnx"])
    );
    assert!(is_valid(v1));
    server.stop().await;
}

/// Scenario 3: a version whose files arrive over several polls is announced once,
/// complete.
pub async fn slow_upload_is_announced_once(backend: Backend) {
    let bucket = TestBucket::new(backend).await;
    put_saved_model(&bucket, "tf/1").await;
    let config = format!(
        "- {{name: tf, predictor: {{type: tensorflow, models: {{path: \"{}\"}}}}}}",
        bucket.uri("tf")
    );
    // Polls every 100 ms; files arrive 250 ms apart, well inside the 2 s
    // settle interval, so the version is incomplete for several polls.
    let settle = Duration::from_secs(2);
    let server = StoreServer::start(&bucket, &config, |c| c.poll.settle = settle).await;
    let mut w = Watcher::synced(&server).await;
    assert_eq!(w.view.len(), 1);

    let files = [
        "tf/2/saved_model.pb",
        "tf/2/variables/variables.index",
        "tf/2/variables/variables.data-00000-of-00002",
        "tf/2/variables/variables.data-00001-of-00002",
        "tf/2/assets/vocab.txt",
    ];
    for file in files {
        bucket.put(file, contents(file)).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let events = w.until("version 2", |w| w.has("tf", "tf", 2)).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (kind, v2) = &events[0];
    assert_eq!(*kind, EventKind::Added);
    assert!(is_valid(v2), "{}", v2.reason);
    assert_eq!(
        file_paths(v2),
        [
            "assets/vocab.txt",
            "saved_model.pb",
            "variables/variables.data-00000-of-00002",
            "variables/variables.data-00001-of-00002",
            "variables/variables.index",
        ]
    );
    w.assert_quiet(settle + Duration::from_millis(500)).await;
    server.stop().await;
}
