//! The registration loop against a stand-in control plane on loopback (a
//! real gRPC server built by the shared builder; no model-store: the
//! worker's subscription keeps retrying a closed port meanwhile).

use std::pin::Pin;

use hotswap_common::GrpcServer;
use hotswap_proto::v1::control_plane_server::{ControlPlane, ControlPlaneServer};
use hotswap_proto::v1::{ListWorkersRequest, ListWorkersResponse, RegisterReply};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::*;
use crate::worker::WorkerConfig;

/// Hands each registration stream's first report to the test, answers it
/// once, and ends the stream when `end_each` says so.
#[derive(Clone)]
struct StandIn {
    reports: mpsc::UnboundedSender<WorkerReport>,
    end_each: bool,
}

type Replies = Pin<Box<dyn futures::Stream<Item = Result<RegisterReply, Status>> + Send>>;

#[tonic::async_trait]
impl ControlPlane for StandIn {
    type RegisterStream = Replies;

    async fn register(
        &self,
        request: Request<Streaming<WorkerReport>>,
    ) -> Result<Response<Replies>, Status> {
        let mut reports = request.into_inner();
        let first = reports
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("no report"))??;
        let _ = self.reports.send(first);
        let reply = RegisterReply { heartbeat_ms: 1000 };
        let replies: Replies = if self.end_each {
            Box::pin(tokio_stream::iter([Ok(reply)]))
        } else {
            // Keeps answering while the worker's stream lasts.
            Box::pin(reports.map(move |_| Ok(RegisterReply { heartbeat_ms: 1000 })))
        };
        Ok(Response::new(replies))
    }

    async fn list_workers(
        &self,
        _: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        Err(Status::unimplemented("not in this stand-in"))
    }
}

/// Serves a stand-in control plane; returns its address and the reports.
async fn stand_in(
    end_each: bool,
    shutdown: CancellationToken,
) -> (String, mpsc::UnboundedReceiver<WorkerReport>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = GrpcServer::new("stand-in").add_service(ControlPlaneServer::new(StandIn {
        reports: tx,
        end_each,
    }));
    tokio::spawn(async move { server.serve(listener, shutdown.cancelled_owned()).await });
    (addr, rx)
}

/// A worker with no model-store to reach (a closed loopback port).
fn worker() -> Arc<Worker> {
    Worker::start(WorkerConfig {
        model_store: "127.0.0.1:1".into(),
        cache_dir: None,
        storage: Default::default(),
        control_plane: None,
        advertise: None,
        python: Default::default(),
        runtimes: Default::default(),
        downloads: Default::default(),
        python_tracebacks: false,
        warmup: false,
        cluster: Default::default(),
    })
    .unwrap()
}

async fn next(reports: &mut mpsc::UnboundedReceiver<WorkerReport>) -> WorkerReport {
    tokio::time::timeout(Duration::from_secs(10), reports.recv())
        .await
        .expect("a report within 10 s")
        .expect("the stand-in is serving")
}

#[tokio::test]
async fn a_stream_opens_with_a_report_and_is_opened_again_when_the_control_plane_ends_it() {
    let shutdown = CancellationToken::new();
    let (addr, mut reports) = stand_in(true, shutdown.clone()).await;
    let worker = worker();
    let registration = Registration {
        control_plane: addr,
        address: "worker-1:7002".into(),
        capacity: 8,
    };
    tokio::spawn(register_with(
        worker.clone(),
        registration,
        "id-1".into(),
        shutdown.clone(),
    ));
    let first = next(&mut reports).await;
    assert_eq!(
        (
            first.worker_id.as_str(),
            first.address.as_str(),
            first.capacity
        ),
        ("id-1", "worker-1:7002", 8)
    );
    assert!(first.held.is_empty() && !first.ready, "nothing loaded yet");
    // The control plane ended the stream: the worker registers again, with
    // the same id.
    let again = next(&mut reports).await;
    assert_eq!(again.worker_id, "id-1");
    shutdown.cancel();
    worker.shut_down();
}

#[tokio::test]
async fn a_control_plane_that_starts_later_is_registered_with() {
    // Its address is known before anything listens there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let shutdown = CancellationToken::new();
    let worker = worker();
    tokio::spawn(register_with(
        worker.clone(),
        Registration {
            control_plane: addr.to_string(),
            address: "worker-1:7002".into(),
            capacity: 8,
        },
        "id-2".into(),
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Now it starts, on that address.
    let (tx, mut reports) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = GrpcServer::new("stand-in").add_service(ControlPlaneServer::new(StandIn {
        reports: tx,
        end_each: false,
    }));
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move { server.serve(listener, shutdown.cancelled_owned()).await }
    });
    assert_eq!(next(&mut reports).await.worker_id, "id-2");
    shutdown.cancel();
    worker.shut_down();
}

#[tokio::test]
async fn every_listed_control_plane_address_is_resolved_and_named() {
    let resolved = resolve(" 127.0.0.1:7000, http://127.0.0.1:7001 ,, ").await;
    assert_eq!(
        resolved.into_iter().collect::<Vec<_>>(),
        ["127.0.0.1@127.0.0.1:7000", "127.0.0.1@127.0.0.1:7001"]
    );
}
