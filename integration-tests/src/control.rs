//! A control plane served on 127.0.0.1:0 in this process, watching a
//! [`StoreServer`], with clients for its front door and its operators' API.

use std::net::SocketAddr;

use hotswap_control_plane::{ControlPlane, ControlPlaneConfig};
use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use hotswap_proto::v1::control_plane_client::ControlPlaneClient;
use hotswap_proto::v1::predictor_client::PredictorClient;
use hotswap_proto::v1::{ListWorkersRequest, WorkerStatus};
use tonic::transport::Channel;

use crate::serving::{Running, channel};
use crate::worker::eventually;

pub struct ControlServer {
    pub addr: SocketAddr,
    pub control_plane: ControlPlane,
    running: Running<hotswap_control_plane::Error>,
}

impl ControlServer {
    pub async fn start(model_store: SocketAddr) -> ControlServer {
        let control_plane = ControlPlane::start(ControlPlaneConfig {
            model_store: model_store.to_string(),
            ..ControlPlaneConfig::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let serving = control_plane.clone();
        let running = Running::spawn(move |stop| {
            hotswap_control_plane::serve_control_plane(serving, listener, stop)
        });
        ControlServer {
            addr,
            control_plane,
            running,
        }
    }

    pub async fn channel(&self) -> Channel {
        channel(self.addr).await
    }

    pub async fn predictor(&self) -> PredictorClient<Channel> {
        PredictorClient::new(self.channel().await)
    }

    pub async fn inference(&self) -> GrpcInferenceServiceClient<Channel> {
        GrpcInferenceServiceClient::new(self.channel().await)
    }

    pub async fn workers(&self) -> Vec<WorkerStatus> {
        ControlPlaneClient::new(self.channel().await)
            .list_workers(ListWorkersRequest {})
            .await
            .expect("list workers")
            .into_inner()
            .workers
    }

    /// Waits until exactly `n` workers are registered.
    pub async fn wait_for_workers(&self, n: usize) -> Vec<WorkerStatus> {
        eventually(&format!("{n} workers registered"), || async {
            let w = self.workers().await;
            (w.len() == n).then_some(w)
        })
        .await
    }

    pub async fn stop(mut self) {
        self.running.stop().await;
        self.control_plane.shut_down();
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.control_plane.shut_down();
    }
}
