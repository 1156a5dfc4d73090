//! A worker fetches only what its API's config declares. A server speaking
//! for the model-store publishes a version whose location is a folder
//! outside the API's declared source: the worker refuses it rather than
//! copy and serve that folder. Before, it fetched and served whatever
//! location the stream named (`file://` included).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{WorkerServer, index_entry, iris};
use hotswap_proto::v1::model_store_server::{ModelStore, ModelStoreServer};
use hotswap_proto::v1::{
    Api, GetModelRequest, GetModelResponse, ListModelsRequest, ListModelsResponse, ModelFile,
    ModelSource, ModelVersion, PredictorType, SnapshotChunk, VersionState, WatchRequest,
    WatchResponse, watch_response,
};
use hotswap_storage::{Location, Storage, StorageOptions};
use tonic::{Request, Response, Status};

/// Answers Watch with one snapshot, then keeps the stream open.
struct Rogue(WatchResponse);

#[tonic::async_trait]
impl ModelStore for Rogue {
    type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

    async fn watch(&self, _: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let snapshot = self.0.clone();
        let stream =
            futures::stream::once(async move { Ok(snapshot) }).chain(futures::stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_models(
        &self,
        _: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        Err(Status::unimplemented("rogue"))
    }

    async fn get_model(
        &self,
        _: Request<GetModelRequest>,
    ) -> Result<Response<GetModelResponse>, Status> {
        Err(Status::unimplemented("rogue"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_outside_the_declared_sources_is_not_fetched() {
    let declared = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("model.onnx"), iris(1)).unwrap();
    // The files as a real listing describes them, so that nothing but the
    // location is wrong.
    let outside_at = Location::parse(&outside.path().display().to_string(), "/".as_ref()).unwrap();
    let listed = Storage::new(StorageOptions::default())
        .open(&outside_at)
        .await
        .unwrap()
        .list()
        .await
        .unwrap();
    let files = listed
        .iter()
        .map(|o| ModelFile {
            path: o.key.clone(),
            size: o.size,
            etag: o.etag.clone(),
            modified: o.modified.map(Into::into),
        })
        .collect();
    let snapshot = WatchResponse {
        incarnation: "rogue".into(),
        revision: 1,
        kind: Some(watch_response::Kind::Snapshot(SnapshotChunk {
            first: true,
            last: true,
            apis: vec![Api {
                name: "iris".into(),
                kind: "RealtimeAPI".into(),
                predictor_type: PredictorType::Onnx as i32,
                sources: vec![ModelSource {
                    name: "iris".into(),
                    location: format!("file://{}/iris/", declared.path().display()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            versions: vec![ModelVersion {
                api: "iris".into(),
                model: "iris".into(),
                version: 1,
                versioned: true,
                state: VersionState::Valid as i32,
                location: format!("file://{}/", outside.path().display()),
                files,
                content_hash: "0".repeat(64),
                ..Default::default()
            }],
            unknown_sources: vec![],
        })),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let store_addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ModelStoreServer::new(Rogue(snapshot)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let bucket = TestBucket::new(Backend::Local).await;
    let worker = WorkerServer::start_with(store_addr, &bucket, Default::default()).await;
    let refused = eventually("version 1 refused", || async {
        index_entry(worker.addr, "iris", "1")
            .await
            .filter(|m| m.state == "UNAVAILABLE" && !m.reason.is_empty())
    })
    .await;
    assert!(
        refused
            .reason
            .contains("outside the sources its API declares"),
        "{refused:?}"
    );
    worker.stop().await;
    server.abort();
}
