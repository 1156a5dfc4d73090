//! The model-store service without transport: a trait taking and returning
//! prost messages, and [`ModelStore`], which implements it over the index
//! the pollers keep current.

mod watch_stream;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::BoxStream;
use hotswap_common::trust::ClusterCredentials;
use hotswap_proto::v1::{
    GetModelRequest, GetModelResponse, ListModelsRequest, ListModelsResponse, WatchRequest,
    WatchResponse,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use hotswap_storage::{Storage, StorageOptions};

use crate::config::ApiConfig;
use crate::index::Index;
use crate::poller::{self, PollSettings, StoreHealth};
use crate::{Error, lock};

/// What [`ModelStoreService::watch`] returns: messages until the client
/// goes away or the store stops.
pub type WatchStream = BoxStream<'static, Result<WatchResponse, Error>>;

/// The model-store's calls, free of transport: the gRPC adapter and tests
/// call it alike.
#[async_trait]
pub trait ModelStoreService: Send + Sync + 'static {
    /// A snapshot (or the events missed since `after_revision`), then every
    /// change, until the client goes away or the store shuts down.
    async fn watch(&self, request: WatchRequest) -> Result<WatchStream, Error>;
    /// Every API with its models, versions and sources' health.
    async fn list_models(&self, request: ListModelsRequest) -> Result<ListModelsResponse, Error>;
    /// One model's versions (the API's only model when none is named).
    async fn get_model(&self, request: GetModelRequest) -> Result<GetModelResponse, Error>;
}

/// Everything the model-store needs to run.
#[derive(Debug, Clone)]
pub struct ModelStoreConfig {
    /// The validated API config.
    pub apis: Vec<ApiConfig>,
    /// How buckets are reached (endpoints, credentials).
    pub storage: StorageOptions,
    /// How often sources are listed and when a version counts as complete.
    pub poll: PollSettings,
    /// Events kept for subscribers that reconnect with `after_revision`.
    pub history_limit: usize,
    /// Events one subscriber may lag behind before it gets a snapshot.
    pub subscriber_buffer: usize,
    /// Who may call: only the other planes (the API definitions, predictor
    /// source included, are theirs alone).
    pub cluster: ClusterCredentials,
}

impl ModelStoreConfig {
    /// `apis` with the defaults for everything else.
    pub fn new(apis: Vec<ApiConfig>) -> ModelStoreConfig {
        ModelStoreConfig {
            apis,
            storage: StorageOptions::default(),
            poll: PollSettings::default(),
            history_limit: 10_000,
            subscriber_buffer: 1024,
            cluster: ClusterCredentials::default(),
        }
    }
}

/// The running model-store: pollers plus the index they feed. Cloning shares
/// it; the pollers stop when the last clone is dropped.
#[derive(Clone)]
pub struct ModelStore {
    inner: Arc<Inner>,
}

struct Inner {
    index: Arc<Mutex<Index>>,
    health: watch::Receiver<StoreHealth>,
    /// Ends every Watch stream, so graceful shutdown is not held up by
    /// subscribers that would otherwise stream forever.
    shutdown: CancellationToken,
    pollers: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for poller in &self.pollers {
            poller.abort();
        }
    }
}

impl ModelStore {
    /// Starts polling every source. Must run inside a tokio runtime.
    pub fn start(config: ModelStoreConfig) -> ModelStore {
        let apis: Vec<Arc<ApiConfig>> = config.apis.into_iter().map(Arc::new).collect();
        for api in &apis {
            if let Some(why) = api.reloading_off() {
                tracing::warn!(api = %api.name, "{why}");
            }
        }
        let specs = apis.iter().map(|a| a.to_proto()).collect();
        let index = Arc::new(Mutex::new(Index::new(
            specs,
            config.history_limit,
            config.subscriber_buffer,
        )));
        let (health_tx, health) = watch::channel(StoreHealth::default());
        let storage = Arc::new(Storage::new(config.storage));
        let pollers = poller::spawn(&apis, storage, index.clone(), config.poll, health_tx);
        ModelStore {
            inner: Arc::new(Inner {
                index,
                health,
                shutdown: CancellationToken::new(),
                pollers,
            }),
        }
    }

    /// Readiness and source health, for gRPC health checks.
    pub fn health(&self) -> watch::Receiver<StoreHealth> {
        self.inner.health.clone()
    }

    /// Ends every Watch stream; later Watch calls fail with UNAVAILABLE.
    pub fn shut_down(&self) {
        self.inner.shutdown.cancel();
    }

    /// Waits until every source has been indexed once.
    async fn ready(&self) -> Result<(), Error> {
        let mut health = self.inner.health.clone();
        tokio::select! {
            ready = health.wait_for(|h| h.ready) => ready.map(|_| ()).map_err(|_| Error::ShuttingDown),
            () = self.inner.shutdown.cancelled() => Err(Error::ShuttingDown),
        }
    }
}

#[async_trait]
impl ModelStoreService for ModelStore {
    async fn watch(&self, request: WatchRequest) -> Result<WatchStream, Error> {
        // A subscriber that connects during start-up waits for the first
        // full index rather than seeing an empty store fill up.
        self.ready().await?;
        Ok(watch_stream::open(
            self.inner.index.clone(),
            &request,
            self.inner.shutdown.clone(),
        ))
    }

    async fn list_models(&self, request: ListModelsRequest) -> Result<ListModelsResponse, Error> {
        lock(&self.inner.index).list_models(&request.api)
    }

    async fn get_model(&self, request: GetModelRequest) -> Result<GetModelResponse, Error> {
        if request.api.is_empty() {
            return Err(Error::InvalidArgument("api must be set".to_owned()));
        }
        lock(&self.inner.index).get_model(&request.api, &request.model)
    }
}
