//! The thin tonic adapter of `hotswap.v1.ControlPlane` (the front-door
//! services use the contracts crate's adapters, which serve any
//! implementation).

use futures::StreamExt;
use futures::stream::BoxStream;
use hotswap_common::client::PeerStatus;
use hotswap_proto::error::to_status;
use hotswap_proto::v1::control_plane_server::ControlPlane;
use hotswap_proto::v1::{ListWorkersRequest, ListWorkersResponse, RegisterReply, WorkerReport};
use tonic::{Request, Response, Status, Streaming};

use crate::Error;
use crate::register::{ControlPlaneService, Registrar};

pub struct GrpcControlPlane(pub Registrar);

#[tonic::async_trait]
impl ControlPlane for GrpcControlPlane {
    type RegisterStream = BoxStream<'static, Result<RegisterReply, Status>>;

    async fn register(
        &self,
        request: Request<Streaming<WorkerReport>>,
    ) -> Result<Response<Self::RegisterStream>, Status> {
        let reports = request
            .into_inner()
            .map(|r| r.map_err(|s| Error::ReportStream(PeerStatus(s))))
            .boxed();
        let replies = self.0.register(reports).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(
            replies.map(|r| r.map_err(|e| to_status(&e))).boxed(),
        ))
    }

    async fn list_workers(
        &self,
        request: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        Ok(Response::new(
            self.0
                .list_workers(request.into_inner())
                .await
                .map_err(|e| to_status(&e))?,
        ))
    }
}
