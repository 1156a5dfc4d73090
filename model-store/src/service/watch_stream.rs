//! One subscriber's Watch stream. It buffers nothing of its own: events wait
//! in the index's broadcast ring, where a subscriber that falls more than the
//! ring's size behind is told so and sent a fresh snapshot. Publishing never
//! waits for a subscriber.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use hotswap_proto::v1::{SnapshotChunk, WatchRequest, WatchResponse, watch_response};
use prost::Message;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::WatchStream;
use crate::index::{Index, Snapshot, Start};
use crate::lock;

/// Encoded size at which a snapshot chunk is closed: well under gRPC's
/// default 4 MiB message limit.
const CHUNK_BYTES: usize = 1 << 20;

struct State {
    index: Arc<Mutex<Index>>,
    receiver: broadcast::Receiver<Arc<WatchResponse>>,
    queue: VecDeque<WatchResponse>,
    /// The revision the subscriber's view is at once `queue` is sent.
    revision: u64,
    shutdown: CancellationToken,
    _counted: Subscriber,
}

/// Counts an open Watch stream in `hotswap_store_watch_subscribers` for as
/// long as it lives (dropped when the stream ends or the client leaves).
struct Subscriber;

impl Subscriber {
    fn count() -> Subscriber {
        metrics::gauge!("hotswap_store_watch_subscribers").increment(1.0);
        Subscriber
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        metrics::gauge!("hotswap_store_watch_subscribers").decrement(1.0);
    }
}

pub(super) fn open(
    index: Arc<Mutex<Index>>,
    request: &WatchRequest,
    shutdown: CancellationToken,
) -> WatchStream {
    let (queue, revision, receiver) = {
        let index = lock(&index);
        let (start, receiver) = index.subscribe(&request.incarnation, request.after_revision);
        let (queue, revision) = start_messages(&index, start, request.after_revision);
        (queue, revision, receiver)
    };
    let state = State {
        index,
        receiver,
        queue,
        revision,
        shutdown,
        _counted: Subscriber::count(),
    };
    futures::stream::unfold(state, next).boxed()
}

async fn next(mut state: State) -> Option<(Result<WatchResponse, crate::Error>, State)> {
    loop {
        if let Some(message) = state.queue.pop_front() {
            return Some((Ok(message), state));
        }
        let received = tokio::select! {
            received = state.receiver.recv() => received,
            () = state.shutdown.cancelled() => return None,
        };
        match received {
            // Events at or before the start were already covered by it.
            Ok(event) if event.revision <= state.revision => {}
            Ok(event) => {
                state.revision = event.revision;
                return Some((Ok(WatchResponse::clone(&event)), state));
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::info!(missed, "watch subscriber fell behind; sending a snapshot");
                let index = state.index.clone();
                let index = lock(&index);
                let (start, receiver) = index.subscribe("", 0);
                let (queue, revision) = start_messages(&index, start, 0);
                state.receiver = receiver;
                state.queue = queue;
                state.revision = revision;
            }
            Err(RecvError::Closed) => return None,
        }
    }
}

/// The messages a subscriber starts with, and the revision they bring it to.
fn start_messages(index: &Index, start: Start, after: u64) -> (VecDeque<WatchResponse>, u64) {
    match start {
        Start::Replay(events) => {
            let revision = events.last().map_or(after, |e| e.revision);
            let queue = events.iter().map(|e| WatchResponse::clone(e)).collect();
            (queue, revision)
        }
        Start::Snapshot(snapshot) => {
            let revision = snapshot.revision;
            (snapshot_chunks(index.incarnation(), snapshot), revision)
        }
    }
}

/// Splits a snapshot into messages of about [`CHUNK_BYTES`]; there is always
/// at least one, so an empty index still says "you are at revision R".
pub(crate) fn snapshot_chunks(incarnation: &str, snapshot: Snapshot) -> VecDeque<WatchResponse> {
    let mut chunks: Vec<SnapshotChunk> = vec![SnapshotChunk {
        first: true,
        apis: snapshot.apis,
        unknown_sources: snapshot.unknown,
        ..SnapshotChunk::default()
    }];
    let mut size = chunks[0].encoded_len();
    for version in snapshot.versions {
        // A repeated message field costs a tag and a length besides the body.
        let body = version.encoded_len();
        let len = 1 + prost::length_delimiter_len(body) + body;
        if size + len > CHUNK_BYTES && !chunks.last().is_some_and(|c| c.versions.is_empty()) {
            chunks.push(SnapshotChunk::default());
            size = 0;
        }
        size += len;
        chunks
            .last_mut()
            .expect("never empty")
            .versions
            .push(Arc::unwrap_or_clone(version));
    }
    if let Some(last) = chunks.last_mut() {
        last.last = true;
    }
    chunks
        .into_iter()
        .map(|chunk| WatchResponse {
            incarnation: incarnation.to_owned(),
            revision: snapshot.revision,
            kind: Some(watch_response::Kind::Snapshot(chunk)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use hotswap_proto::v1::{Api, ModelFile, ModelVersion};

    use super::*;
    use crate::index::Scope;

    fn versions(n: u64, hash: &str) -> Vec<ModelVersion> {
        (1..=n)
            .map(|v| ModelVersion {
                api: "api".into(),
                model: "m".into(),
                version: v,
                content_hash: hash.into(),
                ..ModelVersion::default()
            })
            .collect()
    }

    /// ("snapshot" | "event", revision) of each message.
    fn shape(message: &WatchResponse) -> (&'static str, u64) {
        match message.kind {
            Some(watch_response::Kind::Snapshot(_)) => ("snapshot", message.revision),
            Some(watch_response::Kind::Event(_)) => ("event", message.revision),
            None => ("none", message.revision),
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_gets_a_snapshot_and_never_holds_up_others() {
        let api = Api {
            name: "api".into(),
            ..Api::default()
        };
        let index = Arc::new(Mutex::new(Index::new(vec![api], 100, 4)));
        let token = CancellationToken::new();
        let request = WatchRequest::default();
        let mut fast = open(index.clone(), &request, token.clone());
        let mut slow = open(index.clone(), &request, token.clone());
        assert_eq!(shape(&fast.next().await.unwrap().unwrap()), ("snapshot", 0));

        let t = Instant::now();
        for n in 1..=10 {
            // Publishing never waits, although `slow` reads nothing.
            lock(&index).apply("api", Scope::Api, versions(n, "h"), t, Duration::ZERO);
            let message = fast.next().await.unwrap().unwrap();
            assert_eq!(shape(&message), ("event", n));
        }

        assert_eq!(shape(&slow.next().await.unwrap().unwrap()), ("snapshot", 0));
        let resync = slow.next().await.unwrap().unwrap();
        assert_eq!(shape(&resync), ("snapshot", 10));
        let Some(watch_response::Kind::Snapshot(chunk)) = resync.kind else {
            unreachable!()
        };
        assert!(chunk.first && chunk.last);
        assert_eq!(chunk.versions.len(), 10);

        // Both continue with live events after that.
        lock(&index).apply("api", Scope::Api, versions(11, "h"), t, Duration::ZERO);
        assert_eq!(shape(&slow.next().await.unwrap().unwrap()), ("event", 11));
        assert_eq!(shape(&fast.next().await.unwrap().unwrap()), ("event", 11));

        token.cancel();
        assert!(fast.next().await.is_none(), "shutdown ends the stream");
    }

    #[test]
    fn large_snapshots_are_chunked_in_order() {
        let file = ModelFile {
            path: "x".repeat(1000),
            ..ModelFile::default()
        };
        let versions: Vec<Arc<ModelVersion>> = (1..=3000)
            .map(|v| {
                Arc::new(ModelVersion {
                    version: v,
                    files: vec![file.clone()],
                    ..ModelVersion::default()
                })
            })
            .collect();
        let chunks = snapshot_chunks(
            "inc",
            Snapshot {
                revision: 7,
                apis: vec![Api::default()],
                versions,
                unknown: Vec::new(),
            },
        );
        assert!(chunks.len() >= 3, "{} chunks", chunks.len());
        let mut seen = Vec::new();
        for (i, message) in chunks.iter().enumerate() {
            assert!(message.encoded_len() <= CHUNK_BYTES + 64);
            assert_eq!((message.incarnation.as_str(), message.revision), ("inc", 7));
            let Some(watch_response::Kind::Snapshot(chunk)) = &message.kind else {
                unreachable!()
            };
            assert_eq!(chunk.first, i == 0);
            assert_eq!(chunk.last, i == chunks.len() - 1);
            assert_eq!(chunk.apis.len(), usize::from(i == 0));
            seen.extend(chunk.versions.iter().map(|v| v.version));
        }
        assert_eq!(seen, (1..=3000).collect::<Vec<_>>());
    }
}
