//! The published index: which model versions exist, the revisioned history
//! of changes to it, and the settle rule that keeps half-uploaded versions
//! out of it.

mod policy;
mod query;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotswap_proto::v1::{
    Api, EventKind, ModelVersion, SourceRef, SourceStatus, VersionEvent, WatchResponse,
    watch_response,
};
use tokio::sync::broadcast;

/// Identifies a version across the whole index (the key every plane uses).
pub use hotswap_common::catalog::VersionKey;

/// The part of the index one source's listing speaks for: a listing replaces
/// what was known in its scope and nothing else.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// A `path` / `paths` source: one model.
    Model(&'a str),
    /// A `dir` source: every model of the API.
    Api,
}

/// A change seen but not yet stable for a settle interval.
struct Pending {
    content_hash: String,
    since: Instant,
}

/// The whole index at one revision.
pub struct Snapshot {
    pub revision: u64,
    pub apis: Vec<Api>,
    pub versions: Vec<Arc<ModelVersion>>,
    /// Sources not listed yet: unknown, not empty.
    pub unknown: Vec<SourceRef>,
}

/// Where a subscriber starts.
pub enum Start {
    /// The subscriber's view is current once it applies these events.
    Replay(Vec<Arc<WatchResponse>>),
    Snapshot(Snapshot),
}

pub struct Index {
    incarnation: String,
    revision: u64,
    apis: Vec<Api>,
    published: BTreeMap<VersionKey, Arc<ModelVersion>>,
    pending: HashMap<VersionKey, Pending>,
    /// The latest events, oldest first, for subscribers that resume.
    history: VecDeque<Arc<WatchResponse>>,
    history_limit: usize,
    events: broadcast::Sender<Arc<WatchResponse>>,
    sources: BTreeMap<String, Vec<SourceStatus>>,
    /// Sources (api, position) listed and settled in this incarnation; the
    /// others are unknown, and a snapshot says so.
    listed: BTreeSet<(String, u32)>,
}

impl Index {
    /// `subscriber_buffer` bounds how far one subscriber may fall behind
    /// before it is sent a fresh snapshot instead of the events it missed.
    pub fn new(apis: Vec<Api>, history_limit: usize, subscriber_buffer: usize) -> Index {
        let (events, _) = broadcast::channel(subscriber_buffer.max(1));
        let sources = apis
            .iter()
            .map(|api| {
                let statuses = api
                    .sources
                    .iter()
                    .map(|s| SourceStatus {
                        location: s.location.clone(),
                        ..SourceStatus::default()
                    })
                    .collect();
                (api.name.clone(), statuses)
            })
            .collect();
        Index {
            incarnation: uuid::Uuid::new_v4().to_string(),
            revision: 0,
            apis,
            published: BTreeMap::new(),
            pending: HashMap::new(),
            history: VecDeque::new(),
            history_limit,
            events,
            sources,
            listed: BTreeSet::new(),
        }
    }

    pub fn incarnation(&self) -> &str {
        &self.incarnation
    }

    #[cfg(test)]
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Applies one complete listing of `scope` in `api`, made at `now` (when
    /// the listing started). A version is published once the same content
    /// has been seen in listings at least `settle` apart; a version no
    /// longer listed is removed at once. Returns the events published.
    pub fn apply(
        &mut self,
        api: &str,
        scope: Scope<'_>,
        observed: Vec<ModelVersion>,
        now: Instant,
        settle: Duration,
    ) -> Vec<Arc<WatchResponse>> {
        let in_scope = |key: &VersionKey| {
            key.api == api
                && match scope {
                    Scope::Model(model) => key.model == model,
                    Scope::Api => true,
                }
        };
        let mut observed: BTreeMap<VersionKey, ModelVersion> = observed
            .into_iter()
            .map(|v| (VersionKey::of(&v), v))
            .collect();
        self.pending
            .retain(|key, _| !in_scope(key) || observed.contains_key(key));

        let mut changes: Vec<(EventKind, Arc<ModelVersion>)> = Vec::new();
        let gone: Vec<VersionKey> = self
            .published
            .keys()
            .filter(|key| in_scope(key) && !observed.contains_key(*key))
            .cloned()
            .collect();
        for key in gone {
            if let Some(old) = self.published.remove(&key) {
                changes.push((EventKind::Removed, old));
            }
        }
        for (key, version) in std::mem::take(&mut observed) {
            let current = self.published.get(&key);
            if current.is_some_and(|c| c.content_hash == version.content_hash) {
                self.pending.remove(&key);
                continue;
            }
            let settled = match self.pending.get(&key) {
                Some(p) if p.content_hash == version.content_hash => {
                    now.saturating_duration_since(p.since) >= settle
                }
                _ => {
                    self.pending.insert(
                        key.clone(),
                        Pending {
                            content_hash: version.content_hash.clone(),
                            since: now,
                        },
                    );
                    settle.is_zero()
                }
            };
            if settled {
                self.pending.remove(&key);
                let kind = if current.is_some() {
                    EventKind::Updated
                } else {
                    EventKind::Added
                };
                let version = Arc::new(version);
                self.published.insert(key, version.clone());
                changes.push((kind, version));
            }
        }
        let touched: BTreeSet<String> = changes.iter().map(|(_, v)| v.model.clone()).collect();
        for model in touched {
            self.apply_policy(api, &model, &mut changes);
        }
        changes.sort_by(|a, b| VersionKey::of(&a.1).cmp(&VersionKey::of(&b.1)));
        let events = changes
            .into_iter()
            .map(|(kind, version)| self.publish(kind, version))
            .collect();
        metrics::gauge!("hotswap_store_versions").set(self.published.len() as f64);
        events
    }

    /// Brings the states of `model`'s versions in line with its
    /// `version_policy` after a change to them; a version whose state
    /// changes is announced (its Added or Updated event carries the new
    /// state when it has one in `changes` already).
    fn apply_policy(
        &mut self,
        api: &str,
        model: &str,
        changes: &mut Vec<(EventKind, Arc<ModelVersion>)>,
    ) {
        let policy = self
            .apis
            .iter()
            .find(|a| a.name == api)
            .and_then(|a| a.sources.iter().find(|s| s.is_dir || s.name == model))
            .and_then(|s| s.version_policy.as_ref());
        let from = VersionKey {
            api: api.to_owned(),
            model: model.to_owned(),
            version: 0,
        };
        let versions: Vec<&ModelVersion> = self
            .published
            .range(from..)
            .take_while(|(k, _)| k.api == api && k.model == model)
            .map(|(_, v)| v.as_ref())
            .collect();
        for (version, (state, reason)) in policy::changes(policy, &versions) {
            let key = VersionKey {
                api: api.to_owned(),
                model: model.to_owned(),
                version,
            };
            let mut updated = ModelVersion::clone(&self.published[&key]);
            updated.state = state as i32;
            updated.reason = reason;
            let updated = Arc::new(updated);
            self.published.insert(key.clone(), updated.clone());
            match changes.iter_mut().find(|(_, c)| VersionKey::of(c) == key) {
                Some((_, change)) => *change = updated,
                None => changes.push((EventKind::Updated, updated)),
            }
        }
    }

    /// Records that a source has been listed and its first versions
    /// settled: it is known from now on. The first time, subscribers are
    /// told (SOURCE_LISTED), so they drop what they kept of it from before.
    pub fn mark_listed(&mut self, api: &str, position: u32) -> Option<Arc<WatchResponse>> {
        if !self.listed.insert((api.to_owned(), position)) {
            return None;
        }
        Some(self.publish_event(VersionEvent {
            kind: EventKind::SourceListed as i32,
            version: None,
            source: Some(SourceRef {
                api: api.to_owned(),
                position,
            }),
        }))
    }

    fn publish(&mut self, kind: EventKind, version: Arc<ModelVersion>) -> Arc<WatchResponse> {
        self.publish_event(VersionEvent {
            kind: kind as i32,
            version: Some(ModelVersion::clone(&version)),
            source: None,
        })
    }

    fn publish_event(&mut self, event: VersionEvent) -> Arc<WatchResponse> {
        self.revision += 1;
        let event = Arc::new(WatchResponse {
            incarnation: self.incarnation.clone(),
            revision: self.revision,
            kind: Some(watch_response::Kind::Event(event)),
        });
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            self.history.pop_front();
        }
        // No receivers is fine: nobody is watching yet.
        let _ = self.events.send(event.clone());
        metrics::counter!("hotswap_store_events_total").increment(1);
        event
    }

    /// Where a subscriber resuming after (`incarnation`, `after`) starts,
    /// and the receiver for every event after that start. Both are taken
    /// under the same lock, so nothing is missed or repeated between them.
    pub fn subscribe(
        &self,
        incarnation: &str,
        after: u64,
    ) -> (Start, broadcast::Receiver<Arc<WatchResponse>>) {
        let receiver = self.events.subscribe();
        let resumable = incarnation == self.incarnation && after > 0 && after <= self.revision;
        let start = if !resumable {
            Start::Snapshot(self.snapshot())
        } else if after == self.revision {
            Start::Replay(Vec::new())
        } else {
            match self.history.front() {
                // Everything after `after` is still in the history.
                Some(oldest) if oldest.revision <= after + 1 => Start::Replay(
                    self.history
                        .iter()
                        .filter(|e| e.revision > after)
                        .cloned()
                        .collect(),
                ),
                _ => Start::Snapshot(self.snapshot()),
            }
        };
        (start, receiver)
    }

    pub fn snapshot(&self) -> Snapshot {
        let unknown = self
            .apis
            .iter()
            .flat_map(|api| {
                (0..api.sources.len() as u32).map(|position| SourceRef {
                    api: api.name.clone(),
                    position,
                })
            })
            .filter(|s| !self.listed.contains(&(s.api.clone(), s.position)))
            .collect();
        Snapshot {
            revision: self.revision,
            apis: self.apis.clone(),
            versions: self.published.values().cloned().collect(),
            unknown,
        }
    }

    /// Records the outcome of a source's latest listing.
    pub fn set_source_status(&mut self, api: &str, index: usize, status: SourceStatus) {
        if let Some(slot) = self.sources.get_mut(api).and_then(|s| s.get_mut(index)) {
            *slot = status;
        }
    }

    pub fn source_status(&self, api: &str, index: usize) -> Option<&SourceStatus> {
        self.sources.get(api).and_then(|s| s.get(index))
    }

    /// True when every source's latest listing succeeded.
    pub fn sources_healthy(&self) -> bool {
        self.sources.values().flatten().all(|s| s.healthy)
    }
}

#[cfg(test)]
mod tests;
