//! A control plane served on 127.0.0.1:0 (front door and internal
//! listener) in this process, watching a [`StoreServer`], with clients for
//! its front door and its operators' API.

use std::net::SocketAddr;

use hotswap_common::trust::ClusterCredentials;
use hotswap_control_plane::{ControlPlane, ControlPlaneConfig, Listeners};
use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use hotswap_proto::v1::control_plane_client::ControlPlaneClient;
use hotswap_proto::v1::predictor_client::PredictorClient;
use hotswap_proto::v1::{ListWorkersRequest, WorkerStatus};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::serving::{Running, channel, cluster_channel};
use crate::wait::eventually;

/// A control plane served on loopback for one test.
pub struct ControlServer {
    /// The front door: clients call here.
    pub addr: SocketAddr,
    /// Registration and `ListWorkers`: workers register here.
    pub internal: SocketAddr,
    /// Its state: the registry and catalog, to look at.
    pub control_plane: ControlPlane,
    /// What its internal listener takes.
    cluster: ClusterCredentials,
    /// The CA clients trust when the front door has TLS.
    client_ca: Option<String>,
    running: Running<hotswap_control_plane::Error>,
}

impl ControlServer {
    /// A control plane on the model-store at `model_store`, with defaults.
    pub async fn start(model_store: SocketAddr) -> ControlServer {
        ControlServer::start_with(ControlPlaneConfig {
            model_store: model_store.to_string(),
            ..ControlPlaneConfig::default()
        })
        .await
    }

    /// A control plane started with `config`.
    pub async fn start_with(config: ControlPlaneConfig) -> ControlServer {
        let cluster = config.cluster.clone();
        let control_plane = ControlPlane::start(config);
        let bind = || hotswap_common::server::listen("127.0.0.1:0");
        let listeners = Listeners {
            front: bind().await.expect("bind loopback"),
            internal: bind().await.expect("bind loopback"),
        };
        let addr = listeners.front.local_addr().expect("local addr");
        let internal = listeners.internal.local_addr().expect("local addr");
        let serving = control_plane.clone();
        let running = Running::spawn(move |stop| {
            hotswap_control_plane::serve_control_plane(serving, listeners, stop)
        });
        ControlServer {
            addr,
            internal,
            control_plane,
            cluster,
            client_ca: None,
            running,
        }
    }

    /// Clients of the front door speak TLS, trusting the CA certificate
    /// `ca_pem` (the front door's certificate names `localhost`).
    pub fn with_client_ca(mut self, ca_pem: String) -> ControlServer {
        self.client_ca = Some(ca_pem);
        self
    }

    /// A channel to the front door (TLS when it has TLS).
    pub async fn channel(&self) -> Channel {
        match &self.client_ca {
            None => channel(self.addr).await,
            Some(ca) => Endpoint::from_shared(format!("https://{}", self.addr))
                .expect("uri")
                .tls_config(
                    ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(ca))
                        .domain_name("localhost"),
                )
                .expect("TLS config")
                .connect()
                .await
                .expect("connect"),
        }
    }

    /// A `Predictor` client to the front door.
    pub async fn predictor(&self) -> PredictorClient<Channel> {
        PredictorClient::new(self.channel().await)
    }

    /// An Open Inference Protocol client to the front door.
    pub async fn inference(&self) -> GrpcInferenceServiceClient<Channel> {
        GrpcInferenceServiceClient::new(self.channel().await)
    }

    /// The registered workers, as `ListWorkers` gives them.
    pub async fn workers(&self) -> Vec<WorkerStatus> {
        ControlPlaneClient::new(cluster_channel(self.internal, &self.cluster).await)
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

    /// Stops serving and shuts the control plane down.
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
