//! Thin tonic adapters over the transport-free services: the only place a
//! service error becomes a `tonic::Status` (see
//! [`hotswap_proto::error::to_status`]).

use hotswap_proto::inference::grpc_inference_service_server::GrpcInferenceService;
use hotswap_proto::inference::{self as pb};
use hotswap_proto::v1::predictor_server::Predictor;
use hotswap_proto::v1::{PredictRequest, PredictResponse};
use tonic::{Request, Response, Status};

use hotswap_proto::error::to_status;
use hotswap_proto::service::{InferenceService, PredictorService};

/// Serves any [`PredictorService`] (a worker, or the control plane).
pub struct GrpcPredictor<S>(pub S);

#[tonic::async_trait]
impl<S: PredictorService> Predictor for GrpcPredictor<S> {
    async fn predict(
        &self,
        request: Request<PredictRequest>,
    ) -> Result<Response<PredictResponse>, Status> {
        Ok(Response::new(
            self.0
                .predict(request.into_inner())
                .await
                .map_err(|e| to_status(&e))?,
        ))
    }
}

/// Serves any [`InferenceService`] (a worker, or the control plane).
pub struct GrpcInference<S>(pub S);

#[tonic::async_trait]
impl<S: InferenceService> GrpcInferenceService for GrpcInference<S> {
    async fn server_live(
        &self,
        _: Request<pb::ServerLiveRequest>,
    ) -> Result<Response<pb::ServerLiveResponse>, Status> {
        Ok(Response::new(
            self.0.server_live().await.map_err(|e| to_status(&e))?,
        ))
    }

    async fn server_ready(
        &self,
        _: Request<pb::ServerReadyRequest>,
    ) -> Result<Response<pb::ServerReadyResponse>, Status> {
        Ok(Response::new(
            self.0.server_ready().await.map_err(|e| to_status(&e))?,
        ))
    }

    async fn server_metadata(
        &self,
        _: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        Ok(Response::new(
            self.0.server_metadata().await.map_err(|e| to_status(&e))?,
        ))
    }

    async fn model_ready(
        &self,
        request: Request<pb::ModelReadyRequest>,
    ) -> Result<Response<pb::ModelReadyResponse>, Status> {
        Ok(Response::new(
            self.0
                .model_ready(request.into_inner())
                .await
                .map_err(|e| to_status(&e))?,
        ))
    }

    async fn model_metadata(
        &self,
        request: Request<pb::ModelMetadataRequest>,
    ) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        Ok(Response::new(
            self.0
                .model_metadata(request.into_inner())
                .await
                .map_err(|e| to_status(&e))?,
        ))
    }

    async fn model_infer(
        &self,
        request: Request<pb::ModelInferRequest>,
    ) -> Result<Response<pb::ModelInferResponse>, Status> {
        Ok(Response::new(
            self.0
                .model_infer(request.into_inner())
                .await
                .map_err(|e| to_status(&e))?,
        ))
    }

    async fn model_config(
        &self,
        request: Request<pb::ModelConfigRequest>,
    ) -> Result<Response<pb::ModelConfigResponse>, Status> {
        Ok(Response::new(
            self.0
                .model_config(request.into_inner())
                .await
                .map_err(|e| to_status(&e))?,
        ))
    }

    async fn model_statistics(
        &self,
        request: Request<pb::ModelStatisticsRequest>,
    ) -> Result<Response<pb::ModelStatisticsResponse>, Status> {
        Ok(Response::new(
            self.0
                .model_statistics(request.into_inner())
                .await
                .map_err(|e| to_status(&e))?,
        ))
    }

    async fn repository_index(
        &self,
        request: Request<pb::RepositoryIndexRequest>,
    ) -> Result<Response<pb::RepositoryIndexResponse>, Status> {
        Ok(Response::new(
            self.0
                .repository_index(request.into_inner())
                .await
                .map_err(|e| to_status(&e))?,
        ))
    }
}
