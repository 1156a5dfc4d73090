//! Workers in the same process: any implementation of the front-door
//! service traits, called directly. The router's tests run on these, and a
//! process that embeds a worker could route to it without a socket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hotswap_common::lock;
use hotswap_proto::error::ServiceError;
use hotswap_proto::inference as pb;
use hotswap_proto::service::{InferenceService, PredictorService};
use hotswap_proto::v1::{PredictRequest, PredictResponse};

use super::{BoxError, Connect, WorkerApi, WorkerError};

/// A worker that is a service object.
pub struct LocalWorker<S>(pub Arc<S>);

fn answered<E: ServiceError>(e: E) -> WorkerError {
    WorkerError::Answered {
        code: e.code(),
        no_retry: e.no_retry(),
        message: e.public_message(),
    }
}

#[async_trait]
impl<S, E> WorkerApi for LocalWorker<S>
where
    S: PredictorService<Error = E> + InferenceService<Error = E>,
    E: ServiceError,
{
    async fn predict(&self, r: Arc<PredictRequest>) -> Result<PredictResponse, WorkerError> {
        PredictorService::predict(&*self.0, Arc::unwrap_or_clone(r))
            .await
            .map_err(answered)
    }

    async fn model_infer(
        &self,
        r: Arc<pb::ModelInferRequest>,
    ) -> Result<pb::ModelInferResponse, WorkerError> {
        self.0
            .model_infer(Arc::unwrap_or_clone(r))
            .await
            .map_err(answered)
    }

    async fn model_metadata(
        &self,
        r: pb::ModelMetadataRequest,
    ) -> Result<pb::ModelMetadataResponse, WorkerError> {
        self.0.model_metadata(r).await.map_err(answered)
    }

    async fn model_config(
        &self,
        r: pb::ModelConfigRequest,
    ) -> Result<pb::ModelConfigResponse, WorkerError> {
        self.0.model_config(r).await.map_err(answered)
    }

    async fn model_statistics(
        &self,
        r: pb::ModelStatisticsRequest,
    ) -> Result<pb::ModelStatisticsResponse, WorkerError> {
        self.0.model_statistics(r).await.map_err(answered)
    }
}

/// Connects addresses to in-process workers registered under them.
#[derive(Default)]
pub struct LocalConnector {
    workers: Mutex<HashMap<String, Arc<dyn WorkerApi>>>,
}

impl LocalConnector {
    /// Makes `worker` reachable at `address`.
    pub fn add(&self, address: &str, worker: Arc<dyn WorkerApi>) {
        lock(&self.workers).insert(address.to_owned(), worker);
    }
}

/// No worker was added under the address.
#[derive(Debug, thiserror::Error)]
#[error("no in-process worker at {0}")]
pub struct NoSuchWorker(String);

impl Connect for LocalConnector {
    fn connect(&self, address: &str, _capacity: u32) -> Result<Arc<dyn WorkerApi>, BoxError> {
        lock(&self.workers)
            .get(address)
            .cloned()
            .ok_or_else(|| NoSuchWorker(address.to_owned()).into())
    }
}
