//! The storage layer under the store: downloads, and a bucket that is
//! missing, appears and becomes unreachable.

use std::time::Duration;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::store::{StoreServer, Watcher};
use hotswap_integration_tests::wait::eventually;
use hotswap_proto::v1::ListModelsRequest;

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
    wait_health(&health, "hotswap.v1.ModelStore", serving).await;

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
    wait_health(&health, "hotswap.v1.ModelStore", not_serving).await;
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
    health: &tonic_health::pb::health_client::HealthClient<tonic::transport::Channel>,
    service: &str,
    want: i32,
) {
    eventually(&format!("{service} health {want}"), || {
        let mut health = health.clone();
        async move {
            let request = tonic_health::pb::HealthCheckRequest {
                service: service.to_owned(),
            };
            let got = health.check(request).await.unwrap().into_inner().status;
            (got == want).then_some(())
        }
    })
    .await
}

unsafe fn libc_kill(pid: u32) {
    // SAFETY: the caller names a child process it owns.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}
