//! A forged worker against a stack that has a cluster token. Before, the
//! control plane served registration on its client port to anyone: a
//! client registering a new id received 111 of 200 client calls, and one
//! reusing a real worker's id took all 200. Now registration is served
//! only on the internal listener, which refuses calls without the token,
//! and an id belongs to the session that registered it.

use hotswap_integration_tests::worker::iris_bucket;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use hotswap_common::trust::{CLUSTER_TOKEN_HEADER, ClusterCredentials, Secret};
use hotswap_control_plane::ControlPlaneConfig;
use hotswap_control_plane::registry::RegistryLimits;
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::serving::{channel, cluster_channel};
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::worker::{IRIS_INPUT, predict_json};
use hotswap_proto::v1::control_plane_client::ControlPlaneClient;
use hotswap_proto::v1::model_store_client::ModelStoreClient;
use hotswap_proto::v1::predictor_client::PredictorClient;
use hotswap_proto::v1::{HeldVersion, ListWorkersRequest, WatchRequest, WorkerReport};
use tonic::Code;

/// How long a registration that is not refused is watched.
const WATCH_REGISTRATION: Duration = Duration::from_secs(3);

/// Registers `report` over `client` and follows the replies for a while:
/// the status that ended the registration, or Ok when it was still going.
async fn register<T>(
    client: &mut ControlPlaneClient<T>,
    report: WorkerReport,
) -> Result<(), tonic::Status>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Send,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    // The stream stays open (and says nothing more) while replies are read.
    let reports = futures::stream::once(async move { report }).chain(futures::stream::pending());
    let mut replies = client.register(reports).await?.into_inner();
    let watched = tokio::time::timeout(WATCH_REGISTRATION, async {
        while let Some(reply) = replies.next().await {
            reply?;
        }
        Ok::<(), tonic::Status>(())
    })
    .await;
    watched.unwrap_or(Ok(()))
}

/// A listener that counts the connections made to it and answers none.
async fn counting_listener() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_worker_gets_no_calls() {
    let (bucket, config) = iris_bucket(0).await;
    let cluster = ClusterCredentials {
        tls: None,
        token: Some(Secret::random()),
    };
    let store = StoreServer::start(&bucket, &config, |c| c.cluster = cluster.clone()).await;
    let control = ControlServer::start_with(ControlPlaneConfig {
        model_store: store.addr.to_string(),
        cluster: cluster.clone(),
        ..ControlPlaneConfig::default()
    })
    .await;
    let worker =
        crate::registered_worker(store.addr, &bucket, control.internal, cluster.clone()).await;
    let real = control.wait_for_workers(1).await.remove(0);
    let mut front = PredictorClient::new(control.channel().await);
    crate::first_answer(&front).await;
    let (rogue_addr, rogue_calls) = counting_listener().await;
    let forged = |worker_id: &str| WorkerReport {
        worker_id: worker_id.to_owned(),
        address: rogue_addr.to_string(),
        capacity: 64,
        held: real.held.clone(),
        in_flight: 0,
        predictors: Vec::new(),
        ready: true,
    };

    // 1. The client port serves no registration and no ListWorkers.
    let mut on_front = ControlPlaneClient::new(control.channel().await);
    let refused = register(&mut on_front, forged("rogue-1"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused}");
    let refused = on_front
        .list_workers(ListWorkersRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused}");

    // 2. The internal listener without the token, or with a wrong one.
    let mut anonymous = ControlPlaneClient::new(channel(control.internal).await);
    let refused = register(&mut anonymous, forged("rogue-2"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused}");
    let refused = anonymous
        .list_workers(ListWorkersRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused}");
    let mut wrong = tonic::Request::new(ListWorkersRequest {});
    wrong
        .metadata_mut()
        .insert(CLUSTER_TOKEN_HEADER, "not-the-token".parse().unwrap());
    let refused = anonymous.list_workers(wrong).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused}");

    // The model-store (API definitions, predictor source) and the worker
    // behind the control plane refuse anonymous calls too.
    let refused = ModelStoreClient::new(channel(store.addr).await)
        .watch(WatchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused}");
    let refused = PredictorClient::new(channel(worker.addr).await)
        .predict(predict_json("iris", "", "1", IRIS_INPUT))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused}");

    // 3. Even with the token, the real worker's id is not taken over.
    let mut insider = ControlPlaneClient::new(cluster_channel(control.internal, &cluster).await);
    let refused = register(&mut insider, forged(&real.worker_id))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused}");

    // No call reached the forged address; the real worker served them all.
    for _ in 0..50 {
        front
            .predict(predict_json("iris", "", "1", IRIS_INPUT))
            .await
            .expect("a call through the front door");
    }
    assert_eq!(
        rogue_calls.load(Ordering::SeqCst),
        0,
        "connections to the forged worker"
    );
    let workers = control.workers().await;
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert_eq!(workers[0].address, worker.addr.to_string());
    assert!(workers[0].routed >= 50, "{workers:?}");
}

/// The registry's caps, over the internal listener: a worker past
/// `max_workers`, or a report naming more than `max_routes` versions, is
/// refused RESOURCE_EXHAUSTED (before, 100 forged registrations grew the
/// control plane by 150 MB with nothing to stop them), and the worker
/// already registered keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_past_the_caps_are_refused() {
    let (bucket, config) = iris_bucket(0).await;
    let store = StoreServer::start(&bucket, &config, |_| {}).await;
    let control = ControlServer::start_with(ControlPlaneConfig {
        model_store: store.addr.to_string(),
        limits: RegistryLimits {
            max_workers: 1,
            max_routes: 2,
        },
        ..ControlPlaneConfig::default()
    })
    .await;
    let _worker =
        crate::registered_worker(store.addr, &bucket, control.internal, Default::default()).await;
    let real = control.wait_for_workers(1).await.remove(0);
    let (rogue_addr, rogue_calls) = counting_listener().await;
    let mut client = ControlPlaneClient::new(channel(control.internal).await);
    let report = |id: &str, versions: u64| WorkerReport {
        worker_id: id.to_owned(),
        address: rogue_addr.to_string(),
        capacity: 64,
        held: (1..=versions)
            .map(|version| HeldVersion {
                api: "iris".to_owned(),
                model: "iris".to_owned(),
                version,
            })
            .collect(),
        in_flight: 0,
        predictors: Vec::new(),
        ready: true,
    };
    let refused = register(&mut client, report("second", 1))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused}");
    assert!(refused.message().contains("--max-workers"), "{refused}");

    // Room for one more worker, but its report is too large.
    let control = {
        let routes = ControlServer::start_with(ControlPlaneConfig {
            model_store: store.addr.to_string(),
            limits: RegistryLimits {
                max_workers: 8,
                max_routes: 2,
            },
            ..ControlPlaneConfig::default()
        })
        .await;
        let mut client = ControlPlaneClient::new(channel(routes.internal).await);
        let refused = register(&mut client, report("large", 3)).await.unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused}");
        assert!(
            refused.message().contains("--max-routes-per-worker"),
            "{refused}"
        );
        assert!(routes.workers().await.is_empty());
        control
    };

    crate::first_answer(&PredictorClient::new(control.channel().await)).await;
    let workers = control.workers().await;
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert_eq!(workers[0].worker_id, real.worker_id);
    assert_eq!(rogue_calls.load(Ordering::SeqCst), 0);
}
