//! The model-store scenarios, each run against a local folder, moto (S3)
//! and fake-gcs-server (GCS), through a real gRPC Watch client.

use std::collections::BTreeSet;
use std::time::Duration;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::store::{Seen, StoreServer, WAIT, Watcher, file_paths, is_valid};
use hotswap_proto::v1::{EventKind, GetModelRequest, ListModelsRequest, ModelVersion};

const SAVED_MODEL: [&str; 3] = [
    "saved_model.pb",
    "variables/variables.index",
    "variables/variables.data-00000-of-00001",
];

fn contents(key: &str) -> String {
    format!("contents of {key}")
}

async fn put_all(bucket: &TestBucket, keys: &[&str]) {
    for key in keys {
        bucket.put(key, contents(key)).await;
    }
}

async fn put_saved_model(bucket: &TestBucket, folder: &str) {
    for file in SAVED_MODEL {
        let key = format!("{folder}/{file}");
        bucket.put(&key, contents(&key)).await;
    }
}

fn kinds(events: &[(EventKind, ModelVersion)]) -> BTreeSet<(EventKind, String, u64)> {
    events
        .iter()
        .map(|(k, v)| (*k, v.model.clone(), v.version))
        .collect()
}

/// 1. The seed's layouts produce the expected snapshot.
pub async fn seed_layouts(backend: Backend) {
    let bucket = TestBucket::new(backend).await;
    put_all(
        &bucket,
        &[
            "single/model.onnx",
            "versioned/1/model.onnx",
            "versioned/2/model.onnx",
        ],
    )
    .await;
    put_saved_model(&bucket, "tf/a").await;
    put_saved_model(&bucket, "tf/b/1").await;
    put_saved_model(&bucket, "tf/b/2").await;
    put_all(
        &bucket,
        &[
            "py/text-generator/model.pkl",
            "py/text-generator/data.txt",
            "py/sentiment/24753823/model.pkl",
            "py/sentiment/24753823/data.txt",
            "py/sentiment/26234288/model.pkl",
        ],
    )
    .await;
    let config = format!(
        r#"
- name: single
  predictor: {{type: onnx, models: {{path: "{single}"}}}}
- name: versioned
  predictor: {{type: onnx, models: {{path: "{versioned}"}}}}
- name: multi
  predictor:
    type: tensorflow
    models:
      paths:
        - {{name: a, path: "{a}"}}
        - {{name: b, path: "{b}"}}
- name: mixed
  predictor: {{type: python, path: predictor.py, multi_model_reloading: {{dir: "{py}"}}}}
"#,
        single = bucket.uri("single/"),
        versioned = bucket.uri("versioned"),
        a = bucket.uri("tf/a"),
        b = bucket.uri("tf/b/"),
        py = bucket.uri("py"),
    );
    let server = StoreServer::start(&bucket, &config, |_| {}).await;
    let watcher = Watcher::synced(&server).await;

    // (api, model, version, versioned, valid, location, files)
    #[allow(clippy::type_complexity)]
    let got: Vec<(String, String, u64, bool, bool, String, Vec<&str>)> = watcher
        .view
        .values()
        .map(|v| {
            (
                v.api.clone(),
                v.model.clone(),
                v.version,
                v.versioned,
                is_valid(v),
                v.location.clone(),
                file_paths(v),
            )
        })
        .collect();
    let tf = SAVED_MODEL_SORTED.to_vec();
    let row = |api: &str, model: &str, version, versioned, at: &str, files: Vec<&'static str>| {
        (
            api.to_owned(),
            model.to_owned(),
            version,
            versioned,
            true,
            bucket.uri(at),
            files,
        )
    };
    let expected = vec![
        row(
            "mixed",
            "sentiment",
            24753823,
            true,
            "py/sentiment/24753823/",
            vec!["data.txt", "model.pkl"],
        ),
        row(
            "mixed",
            "sentiment",
            26234288,
            true,
            "py/sentiment/26234288/",
            vec!["model.pkl"],
        ),
        row(
            "mixed",
            "text-generator",
            1,
            false,
            "py/text-generator/",
            vec!["data.txt", "model.pkl"],
        ),
        row("multi", "a", 1, false, "tf/a/", tf.clone()),
        row("multi", "b", 1, true, "tf/b/1/", tf.clone()),
        row("multi", "b", 2, true, "tf/b/2/", tf),
        row("single", "single", 1, false, "single/", vec!["model.onnx"]),
        row(
            "versioned",
            "versioned",
            1,
            true,
            "versioned/1/",
            vec!["model.onnx"],
        ),
        row(
            "versioned",
            "versioned",
            2,
            true,
            "versioned/2/",
            vec!["model.onnx"],
        ),
    ];
    assert_eq!(got, expected);
    for v in watcher.view.values() {
        assert_eq!(v.content_hash.len(), 64, "sha-256 hex");
        let prefix = v
            .location
            .strip_prefix(&bucket.uri(""))
            .expect("location in the bucket");
        for f in &v.files {
            let written = contents(&format!("{prefix}{}", f.path));
            assert_eq!(f.size, written.len() as u64, "{f:?}");
            assert!(!f.etag.is_empty() && f.modified.is_some(), "{f:?}");
        }
    }

    // The operator view agrees.
    let mut client = server.client().await;
    let list = client
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.revision, watcher.revision);
    let names: Vec<&str> = list
        .apis
        .iter()
        .map(|a| a.api.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(names, ["single", "versioned", "multi", "mixed"]);
    let versioned = &list.apis[1].models[0];
    assert_eq!(
        (versioned.model.as_str(), versioned.latest),
        ("versioned", Some(2))
    );
    assert!(
        list.apis
            .iter()
            .all(|a| a.sources.iter().all(|s| s.healthy))
    );
    let b = client
        .get_model(GetModelRequest {
            api: "multi".into(),
            model: "b".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((b.latest, b.versions.len()), (Some(2), 2));
    let missing = client
        .get_model(GetModelRequest {
            api: "multi".into(),
            model: "c".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert_eq!(
        missing.message(),
        "model `c` not found in api `multi`; models: a, b"
    );
    server.stop().await;
}

const SAVED_MODEL_SORTED: [&str; 3] = [
    "saved_model.pb",
    "variables/variables.data-00000-of-00001",
    "variables/variables.index",
];

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

/// 4. Invalid layouts are published INVALID with the reason.
pub async fn invalid_layouts(backend: Backend) {
    let bucket = TestBucket::new(backend).await;
    put_all(
        &bucket,
        &[
            "onnx/none/1/model.txt",
            "onnx/two/1/a.onnx",
            "onnx/two/1/b.onnx",
            "onnx/ok/1/model.onnx",
            "onnx/mixed/1/model.onnx",
            "onnx/mixed/README.md",
            "tf/pb-only/1/saved_model.pb",
            "tf/no-pb/1/variables/variables.index",
            "tf/no-pb/1/variables/variables.data-00000-of-00001",
            "tf/onnx/1/model.onnx",
            "py/anything/1/weights.bin",
        ],
    )
    .await;
    put_saved_model(&bucket, "tf/ok/1").await;
    let config = format!(
        r#"
- {{name: onnx, predictor: {{type: onnx, models: {{dir: "{onnx}"}}}}}}
- {{name: tf, predictor: {{type: tensorflow, models: {{dir: "{tf}"}}}}}}
- {{name: inf, predictor: {{type: tensorflow, models: {{dir: "{tf}"}}}}, compute: {{inf: 1}}}}
- {{name: py, predictor: {{type: python, path: p.py, multi_model_reloading: {{dir: "{py}"}}}}}}
"#,
        onnx = bucket.uri("onnx"),
        tf = bucket.uri("tf"),
        py = bucket.uri("py"),
    );
    let server = StoreServer::start(&bucket, &config, |_| {}).await;
    let w = Watcher::synced(&server).await;
    let check = |api: &str, model: &str, valid: bool, reason: &str| {
        let v = w
            .view
            .values()
            .find(|v| v.api == api && v.model == model)
            .unwrap_or_else(|| panic!("{api}/{model} missing: {:?}", w.view.keys()));
        assert_eq!(is_valid(v), valid, "{api}/{model}: {}", v.reason);
        assert!(
            v.reason.contains(reason),
            "{api}/{model}: {:?} lacks {reason:?}",
            v.reason
        );
        if valid {
            assert_eq!(v.reason, "");
        }
    };
    check("onnx", "none", false, "found none (files: model.txt)");
    check("onnx", "two", false, "found 2 (a.onnx, b.onnx)");
    check("onnx", "ok", true, "");
    check(
        "onnx",
        "mixed",
        false,
        "version folders (1) sit beside other entries (README.md)",
    );
    check("tf", "ok", true, "");
    check(
        "tf",
        "pb-only",
        false,
        "missing variables/variables.index, variables/variables.data-*",
    );
    check("tf", "no-pb", false, "missing saved_model.pb");
    check("tf", "onnx", false, "missing saved_model.pb");
    // The same folders on Inferentia: saved_model.pb alone is the layout.
    check("inf", "pb-only", true, "");
    check("inf", "ok", true, "");
    check("inf", "no-pb", false, "expected saved_model.pb");
    check("inf", "onnx", false, "expected saved_model.pb");
    check("py", "anything", true, "");
    server.stop().await;
}

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

/// Downloads through the same storage layer: bytes, a missing object, and a
/// path that would leave the folder.
pub async fn read_objects(backend: Backend) {
    use futures::TryStreamExt;
    use hotswap_storage::{Location, Storage};

    let bucket = TestBucket::new(backend).await;
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    bucket.put("iris/1/model.onnx", body.clone()).await;
    let storage = Storage::new(bucket.storage_options());
    let location = Location::parse(&bucket.uri("iris/1/"), std::path::Path::new("/")).unwrap();
    let folder = storage.open(&location).await.unwrap();
    let listing = folder.list().await.unwrap();
    assert_eq!(listing.len(), 1);
    assert_eq!(
        (listing[0].key.as_str(), listing[0].size),
        ("model.onnx", body.len() as u64)
    );
    let chunks: Vec<bytes::Bytes> = folder
        .get("model.onnx", None)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(chunks.concat(), body);
    let missing = folder
        .get("nope.onnx", None)
        .await
        .err()
        .expect("missing object");
    assert!(
        matches!(missing, hotswap_storage::Error::ObjectNotFound { .. }),
        "{missing}"
    );
    let escape = folder
        .get("../../etc/passwd", None)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(escape, hotswap_storage::Error::UnsafeKey { .. }),
        "{escape}"
    );
}

/// A bucket that is missing, then appears, then becomes unreachable: the
/// store keeps running and serving what it last saw, says so in health and
/// ListModels, and never reports the models as removed.
pub async fn bucket_trouble(backend: Backend) {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let bucket = TestBucket::without_bucket(backend).await;
    if backend == Backend::Local {
        // A file where the model folder should be: listing fails.
        bucket.put("iris", "not a folder").await;
    }
    let config = format!(
        "- {{name: iris, predictor: {{type: onnx, models: {{path: \"{}\"}}}}}}",
        bucket.uri("iris")
    );
    let server = StoreServer::start(&bucket, &config, |_| {}).await;
    // Ready although its only bucket fails: it serves what it has.
    let w = Watcher::synced(&server).await;
    assert!(w.view.is_empty());
    let mut health = HealthClient::new(server.channel().await);
    let status = |service: &str| HealthCheckRequest {
        service: service.to_owned(),
    };
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;
    assert_eq!(
        health.check(status("")).await.unwrap().into_inner().status,
        serving
    );
    assert_eq!(
        health
            .check(status("hotswap.v1.ModelStore"))
            .await
            .unwrap()
            .into_inner()
            .status,
        not_serving
    );
    let mut client = server.client().await;
    let list = client
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let source = &list.apis[0].sources[0];
    assert!(
        !source.healthy && source.consecutive_failures >= 1,
        "{source:?}"
    );
    assert!(!source.last_error.is_empty());
    drop(w);

    // The bucket appears with a model: picked up, healthy again.
    match backend {
        Backend::Local => bucket.delete("iris").await,
        _ => bucket.create_bucket().await,
    }
    bucket.put("iris/1/model.onnx", "v1").await;
    let mut w = Watcher::synced(&server).await;
    w.until("iris 1, and its source listed", |w| {
        w.has("iris", "iris", 1) && w.listed.contains(&("iris".to_owned(), 0))
    })
    .await;
    wait_health(&mut health, "hotswap.v1.ModelStore", serving).await;

    // The bucket goes away: the version stays published.
    let revision = w.revision;
    match &bucket {
        TestBucket::Local { root } => {
            let dir = root.path().join("iris");
            std::fs::rename(&dir, root.path().join("iris.moved")).unwrap();
            std::fs::write(&dir, "not a folder").unwrap();
        }
        TestBucket::S3 { emulator, .. } | TestBucket::Gcs { emulator, .. } => {
            // SAFETY: kill(2) on the emulator child this test started.
            unsafe { libc_kill(emulator.pid()) };
        }
    }
    wait_health(&mut health, "hotswap.v1.ModelStore", not_serving).await;
    w.assert_quiet(Duration::from_secs(1)).await;
    assert_eq!(w.revision, revision);
    let list = client
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.apis[0].models[0].latest, Some(1));
    assert!(!list.apis[0].sources[0].healthy);
    assert!(list.apis[0].sources[0].last_success.is_some());
    assert_eq!(
        health.check(status("")).await.unwrap().into_inner().status,
        serving
    );
    server.stop().await;
}

async fn wait_health(
    health: &mut tonic_health::pb::health_client::HealthClient<tonic::transport::Channel>,
    service: &str,
    want: i32,
) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let request = tonic_health::pb::HealthCheckRequest {
            service: service.to_owned(),
        };
        let got = health.check(request).await.unwrap().into_inner().status;
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{service} health stayed {got}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

unsafe fn libc_kill(pid: u32) {
    // SAFETY: the caller names a child process it owns.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
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
