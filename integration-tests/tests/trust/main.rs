//! Trust boundaries (issue 13): what a client, a forged worker or a
//! predictor can reach, against real servers and processes on loopback.

mod front_door;
mod mutual_tls;
mod python_env;
mod rogue_store;
mod rogue_worker;

use hotswap_common::trust::ClusterCredentials;
use hotswap_integration_tests::bucket::TestBucket;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{IRIS_INPUT, WorkerOptions, WorkerServer, predict_json};
use hotswap_proto::v1::PredictResponse;
use hotswap_proto::v1::predictor_client::PredictorClient;
use tonic::transport::Channel;

/// A worker on `bucket` registering with the control plane's internal
/// listener `internal`, holding `cluster`'s credentials.
async fn registered_worker(
    store: std::net::SocketAddr,
    bucket: &TestBucket,
    internal: std::net::SocketAddr,
    cluster: ClusterCredentials,
) -> WorkerServer {
    let options = WorkerOptions {
        control_plane: Some(internal.to_string()),
        cluster,
        ..Default::default()
    };
    WorkerServer::start_with(store, bucket, options).await
}

/// The first answer of iris version 1 through `front`, once it serves.
async fn first_answer(front: &PredictorClient<Channel>) -> PredictResponse {
    eventually("iris version 1 served", || {
        let mut front = front.clone();
        async move {
            front
                .predict(predict_json("iris", "", "1", IRIS_INPUT))
                .await
                .ok()
                .map(tonic::Response::into_inner)
        }
    })
    .await
}
