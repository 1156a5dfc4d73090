//! The tonic adapter: `hotswap.v1.ModelStore` over any [`ModelStoreService`],
//! and the one place its errors become statuses.

use futures::{StreamExt, TryStreamExt};
use hotswap_proto::error::to_status;
use hotswap_proto::v1::model_store_server::ModelStore as ModelStoreRpc;
use hotswap_proto::v1::{
    GetModelRequest, GetModelResponse, ListModelsRequest, ListModelsResponse, WatchRequest,
    WatchResponse,
};
use tonic::{Request, Response, Status};

use crate::service::ModelStoreService;

/// The tonic service over a [`ModelStoreService`]: statuses from the one
/// error mapping, nothing else.
pub struct GrpcModelStore<S>(pub S);

#[tonic::async_trait]
impl<S: ModelStoreService> ModelStoreRpc for GrpcModelStore<S> {
    type WatchStream = futures::stream::BoxStream<'static, Result<WatchResponse, Status>>;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let stream = self
            .0
            .watch(request.into_inner())
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(stream.map_err(|e| to_status(&e)).boxed()))
    }

    async fn list_models(
        &self,
        request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        Ok(Response::new(
            self.0
                .list_models(request.into_inner())
                .await
                .map_err(|e| to_status(&e))?,
        ))
    }

    async fn get_model(
        &self,
        request: Request<GetModelRequest>,
    ) -> Result<Response<GetModelResponse>, Status> {
        Ok(Response::new(
            self.0
                .get_model(request.into_inner())
                .await
                .map_err(|e| to_status(&e))?,
        ))
    }
}
