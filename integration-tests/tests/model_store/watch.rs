//! What a Watch subscriber is sent: the missed events on resume, a
//! snapshot otherwise, and never an unsafe key.

use std::time::Duration;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::store::{Seen, StoreServer, Watcher, file_paths, is_valid};
use hotswap_integration_tests::wait::WAIT;
use hotswap_proto::v1::EventKind;

use crate::support::put_all;

/// Scenario 5: resuming with after_revision gets exactly the missed events; an
/// expired revision or another incarnation gets a snapshot.
pub async fn resume(backend: Backend) {
    let bucket = TestBucket::new(backend).await;
    put_all(&bucket, &["iris/1/model.onnx"]).await;
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: \"{}\"}}}}}}",
        bucket.uri("iris")
    );
    // History of 2 events: enough to resume over two, not over three.
    let server = StoreServer::start(&bucket, &config, |c| c.history_limit = 2).await;
    let first = Watcher::synced(&server).await;
    let (incarnation, r0) = (first.incarnation.clone(), first.revision);
    drop(first);

    let mut live = Watcher::synced(&server).await;
    bucket.put("iris/2/model.onnx", "v2").await;
    bucket.put("iris/3/model.onnx", "v3").await;
    live.until("2 and 3", |w| {
        w.has("iris", "iris", 2) && w.has("iris", "iris", 3)
    })
    .await;
    assert_eq!(live.revision, r0 + 2);

    let mut resumed = Watcher::connect(&server, &incarnation, r0).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        match resumed.next(WAIT).await.expect("an event") {
            Seen::Event(kind, v) => got.push((kind, v.version)),
            other => panic!("expected the missed events, got {other:?}"),
        }
    }
    assert_eq!(got, [(EventKind::Added, 2), (EventKind::Added, 3)]);
    assert_eq!(resumed.revision, r0 + 2);
    resumed.assert_quiet(Duration::from_millis(500)).await;

    // Up to date: nothing to replay, and later events follow.
    let mut current = Watcher::connect(&server, &incarnation, r0 + 2).await;
    bucket.put("iris/4/model.onnx", "v4").await;
    match current.next(WAIT).await.expect("event 4") {
        Seen::Event(EventKind::Added, v) => assert_eq!(v.version, 4),
        other => panic!("expected version 4 added, got {other:?}"),
    }
    assert_eq!(current.revision, r0 + 3);

    // r0 is now three events back, beyond the history of two.
    let mut expired = Watcher::connect(&server, &incarnation, r0).await;
    let seen = expired.next(WAIT).await.expect("a snapshot");
    assert!(matches!(seen, Seen::Snapshot(r) if r == r0 + 3), "{seen:?}");
    assert_eq!(expired.view.len(), 4);

    let mut stranger = Watcher::connect(&server, "another-process", r0 + 3).await;
    let seen = stranger.next(WAIT).await.expect("a snapshot");
    assert!(matches!(seen, Seen::Snapshot(_)), "{seen:?}");
    assert_eq!(stranger.view, expired.view);
    server.stop().await;
}

/// Object keys that could climb out of a folder on a worker's disk are
/// ignored and never reach a subscriber as a path (object stores only: a
/// disk cannot hold such names).
pub async fn unsafe_keys_never_reach_subscribers(backend: Backend) {
    let bucket = TestBucket::new(backend).await;
    put_all(
        &bucket,
        &[
            "zoo/ok/1/model.onnx",
            "zoo/ok/1//model.onnx",
            "zoo/ok/2/../../../../etc/model.onnx",
            "zoo/evil/1/./model.onnx",
            "zoo//x/1/model.onnx",
            "zoo/ok/3/",
        ],
    )
    .await;
    let config = format!(
        "- {{name: zoo, predictor: {{type: onnx, models: {{dir: \"{}\"}}}}}}",
        bucket.uri("zoo")
    );
    // The store really holds those keys as written.
    let storage = hotswap_storage::Storage::new(bucket.storage_options());
    let zoo =
        hotswap_storage::Location::parse(&bucket.uri("zoo"), std::path::Path::new("/")).unwrap();
    let mut raw: Vec<String> = storage
        .open(&zoo)
        .await
        .unwrap()
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    raw.sort();
    assert_eq!(
        raw,
        [
            "/x/1/model.onnx",
            "evil/1/./model.onnx",
            "ok/1//model.onnx",
            "ok/1/model.onnx",
            "ok/2/../../../../etc/model.onnx",
            "ok/3/"
        ]
    );

    let server = StoreServer::start(&bucket, &config, |_| {}).await;
    let w = Watcher::synced(&server).await;
    let keys: Vec<_> = w.view.keys().cloned().collect();
    assert_eq!(keys, [("zoo".to_owned(), "ok".to_owned(), 1)]);
    let ok = w.get("zoo", "ok", 1).unwrap();
    assert_eq!(file_paths(ok), ["model.onnx"]);
    assert!(is_valid(ok));
    server.stop().await;
}
