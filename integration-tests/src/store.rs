//! A model-store served on 127.0.0.1:0, and a Watch client over real gRPC
//! that keeps the view a subscriber would keep.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotswap_model_store::{ModelStoreConfig, PollSettings};
use hotswap_proto::v1::model_store_client::ModelStoreClient;
use hotswap_proto::v1::{
    EventKind, ModelVersion, VersionState, WatchRequest, WatchResponse, watch_response,
};
use tonic::Streaming;
use tonic::transport::Channel;

use crate::bucket::TestBucket;
use crate::serving::{Running, channel};
use crate::wait::WAIT;

/// Fast polling for tests: 100 ms polls, 300 ms settle.
pub fn fast_polling() -> PollSettings {
    PollSettings {
        interval: Duration::from_millis(100),
        settle: Duration::from_millis(300),
        list_timeout: Duration::from_secs(10),
        max_backoff: Duration::from_millis(500),
    }
}

/// A model-store served on loopback for one test.
pub struct StoreServer {
    /// Where it listens.
    pub addr: SocketAddr,
    running: Running<hotswap_model_store::Error>,
}

impl StoreServer {
    /// Parses `config_yaml` and serves it on a fresh loopback port.
    pub async fn start(
        bucket: &TestBucket,
        config_yaml: &str,
        adjust: impl FnOnce(&mut ModelStoreConfig),
    ) -> StoreServer {
        StoreServer::start_on("127.0.0.1:0", bucket, config_yaml, adjust).await
    }

    /// As [`StoreServer::start`], on a given address (a restart on the
    /// address an earlier server had).
    pub async fn start_on(
        addr: &str,
        bucket: &TestBucket,
        config_yaml: &str,
        adjust: impl FnOnce(&mut ModelStoreConfig),
    ) -> StoreServer {
        let apis = hotswap_model_store::config::parse(config_yaml, std::path::Path::new("/"))
            .unwrap_or_else(|e| panic!("test config: {e}\n{config_yaml}"));
        let mut config = ModelStoreConfig::new(apis);
        config.storage = bucket.storage_options();
        config.poll = fast_polling();
        adjust(&mut config);
        let listener = hotswap_common::server::listen(addr)
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let running = Running::spawn(|stop| hotswap_model_store::serve(config, listener, stop));
        StoreServer { addr, running }
    }

    /// A `ModelStore` client to it.
    pub async fn client(&self) -> ModelStoreClient<Channel> {
        ModelStoreClient::connect(format!("http://{}", self.addr))
            .await
            .expect("connect to the model-store")
    }

    /// A channel to it.
    pub async fn channel(&self) -> Channel {
        channel(self.addr).await
    }

    /// Stops the server and waits (bounded) until it has returned, which
    /// it only does once every Watch stream has ended.
    pub async fn stop(mut self) {
        self.running.stop().await;
    }
}

/// One message as the watcher applied it.
#[derive(Debug, Clone)]
pub enum Seen {
    /// A complete snapshot (all its chunks) at a revision.
    Snapshot(u64),
    /// An event on one version.
    Event(EventKind, ModelVersion),
    /// A source listed for the first time (api, position).
    Listed(String, u32),
}

impl Seen {
    /// The event, if this was one.
    pub fn event(&self) -> Option<(EventKind, &ModelVersion)> {
        match self {
            Seen::Event(kind, version) => Some((*kind, version)),
            Seen::Snapshot(_) | Seen::Listed(..) => None,
        }
    }
}

/// A version in the view: (api, model, version).
pub type Key = (String, String, u64);

/// A Watch subscriber: applies snapshots and events to a view, as the data
/// plane will, and checks revisions run without gaps.
pub struct Watcher {
    stream: Streaming<WatchResponse>,
    /// The store's incarnation, as the last snapshot gave it.
    pub incarnation: String,
    /// The last revision applied.
    pub revision: u64,
    /// Every version, as applied so far.
    pub view: BTreeMap<Key, ModelVersion>,
    building: Option<BTreeMap<Key, ModelVersion>>,
    /// Every message applied, in order.
    pub seen: Vec<Seen>,
    /// Sources (api, position) the store has listed: from SOURCE_LISTED
    /// events, and every source not named unknown in the last snapshot.
    pub listed: std::collections::BTreeSet<(String, u32)>,
}

impl Watcher {
    /// Subscribes to `server`, resuming after `after_revision` of
    /// `incarnation` (empty: from a snapshot).
    pub async fn connect(server: &StoreServer, incarnation: &str, after_revision: u64) -> Watcher {
        let request = WatchRequest {
            incarnation: incarnation.to_owned(),
            after_revision,
        };
        let stream = server
            .client()
            .await
            .watch(request)
            .await
            .expect("watch")
            .into_inner();
        Watcher {
            stream,
            incarnation: incarnation.to_owned(),
            revision: after_revision,
            view: BTreeMap::new(),
            building: None,
            seen: Vec::new(),
            listed: Default::default(),
        }
    }

    /// Connects and applies the initial snapshot.
    pub async fn synced(server: &StoreServer) -> Watcher {
        let mut watcher = Watcher::connect(server, "", 0).await;
        let first = watcher.next(WAIT).await.expect("an initial snapshot");
        assert!(matches!(first, Seen::Snapshot(_)), "{first:?}");
        watcher
    }

    /// Reads and applies messages until one completes a snapshot or an
    /// event; `None` when nothing arrives within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Seen> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.stream.message()).await {
                Err(_) => return None,
                Ok(result) => result
                    .expect("watch stream error")
                    .expect("watch stream ended"),
            };
            if let Some(seen) = self.apply(message) {
                self.seen.push(seen.clone());
                return Some(seen);
            }
        }
    }

    fn apply(&mut self, message: WatchResponse) -> Option<Seen> {
        match message.kind.expect("message kind") {
            watch_response::Kind::Snapshot(chunk) => {
                if chunk.first {
                    self.building = Some(BTreeMap::new());
                    self.listed = chunk
                        .apis
                        .iter()
                        .flat_map(|a| (0..a.sources.len() as u32).map(|p| (a.name.clone(), p)))
                        .filter(|(api, p)| {
                            !chunk
                                .unknown_sources
                                .iter()
                                .any(|u| u.api == *api && u.position == *p)
                        })
                        .collect();
                }
                let building = self
                    .building
                    .as_mut()
                    .expect("snapshot chunk after a first one");
                for v in chunk.versions {
                    building.insert(key(&v), v);
                }
                if chunk.last {
                    self.view = self.building.take().expect("building");
                    self.incarnation = message.incarnation;
                    self.revision = message.revision;
                    return Some(Seen::Snapshot(message.revision));
                }
                None
            }
            watch_response::Kind::Event(event) => {
                assert_eq!(
                    message.incarnation, self.incarnation,
                    "incarnation changed mid-stream"
                );
                assert_eq!(
                    message.revision,
                    self.revision + 1,
                    "revisions must not skip"
                );
                self.revision = message.revision;
                let kind = EventKind::try_from(event.kind).expect("event kind");
                if kind == EventKind::SourceListed {
                    let source = event.source.expect("the listed source");
                    self.listed.insert((source.api.clone(), source.position));
                    return Some(Seen::Listed(source.api, source.position));
                }
                let version = event.version.expect("event version");
                match kind {
                    EventKind::Removed => {
                        assert!(
                            self.view.remove(&key(&version)).is_some(),
                            "removed unknown {version:?}"
                        );
                    }
                    EventKind::Added => {
                        assert!(
                            self.view.insert(key(&version), version.clone()).is_none(),
                            "added twice"
                        );
                    }
                    EventKind::Updated => {
                        assert!(
                            self.view.insert(key(&version), version.clone()).is_some(),
                            "updated unknown"
                        );
                    }
                    EventKind::Unspecified | EventKind::SourceListed => {
                        panic!("unexpected event kind {kind:?}")
                    }
                }
                Some(Seen::Event(kind, version))
            }
        }
    }

    /// Applies messages until `done(view)` holds; panics with what was seen
    /// if it does not within [`WAIT`]. Returns the events applied meanwhile.
    pub async fn until(
        &mut self,
        what: &str,
        done: impl Fn(&Watcher) -> bool,
    ) -> Vec<(EventKind, ModelVersion)> {
        let start = self.seen.len();
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.next(left).await.is_none() {
                panic!(
                    "timed out waiting for {what}; saw {:#?}\nview: {:#?}",
                    &self.seen[start..],
                    self.view.keys()
                );
            }
        }
        self.seen[start..]
            .iter()
            .filter_map(|s| s.event().map(|(k, v)| (k, v.clone())))
            .collect()
    }

    /// Asserts that no message arrives for `quiet`.
    pub async fn assert_quiet(&mut self, quiet: Duration) {
        if let Some(seen) = self.next(quiet).await {
            panic!("expected no change, got {seen:?}");
        }
    }

    /// A version in the view.
    pub fn get(&self, api: &str, model: &str, version: u64) -> Option<&ModelVersion> {
        self.view.get(&(api.to_owned(), model.to_owned(), version))
    }

    /// Whether the view holds a version.
    pub fn has(&self, api: &str, model: &str, version: u64) -> bool {
        self.get(api, model, version).is_some()
    }
}

/// The view's key of `v`.
pub fn key(v: &ModelVersion) -> Key {
    (v.api.clone(), v.model.clone(), v.version)
}

/// Whether the store found `v` VALID.
pub fn is_valid(v: &ModelVersion) -> bool {
    v.state == VersionState::Valid as i32
}

/// The paths of `v`'s files.
pub fn file_paths(v: &ModelVersion) -> Vec<&str> {
    v.files.iter().map(|f| f.path.as_str()).collect()
}
