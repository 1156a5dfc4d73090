//! A copy of the model-store index, kept current by the Watch subscription
//! (subscription.rs) in every worker and control plane, and read by
//! everything that resolves a request. The rules for naming models and
//! versions live here, so the front door and the workers answer alike.

mod kind;
mod names;
mod pinned;

use std::collections::BTreeMap;

use hotswap_proto::v1::{
    Api, EventKind, ModelVersion, VersionState, WatchResponse, watch_response,
};

pub use kind::ApiKind;
pub use names::{ModelRef, is_latest};
pub use pinned::{GATHER as PIN_GATHER, Pins};

/// Why a request's names do not resolve against the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Something named does not exist; the message lists what does.
    #[error("{0}")]
    NotFound(String),

    /// The first snapshot has not arrived yet.
    #[error("not ready: the model index has not arrived from the model-store yet")]
    NotReady,
}

/// One model version: api, model, version number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionKey {
    pub api: String,
    pub model: String,
    pub version: u64,
}

impl VersionKey {
    pub fn of(v: &ModelVersion) -> VersionKey {
        VersionKey {
            api: v.api.clone(),
            model: v.model.clone(),
            version: v.version,
        }
    }
}

impl std::fmt::Display for VersionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} version {}", self.api, self.model, self.version)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub incarnation: String,
    /// The revision of the last message applied.
    pub revision: u64,
    /// False until the first snapshot is complete.
    pub complete: bool,
    pub apis: BTreeMap<String, Api>,
    pub versions: BTreeMap<VersionKey, ModelVersion>,
}

impl Catalog {
    /// Models of an API, in name order.
    pub fn models(&self, api: &str) -> Vec<String> {
        let mut models: Vec<String> = self
            .versions
            .keys()
            .filter(|k| k.api == api)
            .map(|k| k.model.clone())
            .collect();
        models.dedup();
        models
    }

    /// Versions of a model, in ascending order.
    pub fn versions(&self, api: &str, model: &str) -> Vec<&ModelVersion> {
        let from = VersionKey {
            api: api.to_owned(),
            model: model.to_owned(),
            version: 0,
        };
        self.versions
            .range(from..)
            .take_while(|(k, _)| k.api == api && k.model == model)
            .map(|(_, v)| v)
            .collect()
    }

    pub fn valid(v: &ModelVersion) -> bool {
        v.state == VersionState::Valid as i32
    }

    /// How an API's calls are served (see [`ApiKind`]).
    pub fn kind(&self, api: &str) -> Option<ApiKind> {
        self.apis.get(api).map(ApiKind::of)
    }

    /// The APIs of one kind, in name order.
    pub fn apis_of(&self, kind: ApiKind) -> impl Iterator<Item = &Api> {
        self.apis.values().filter(move |a| ApiKind::of(a) == kind)
    }
}

/// What applying one Watch message did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Part of a snapshot; nothing to publish yet.
    Pending,
    /// The catalog changed and should be published.
    Changed,
    /// The message does not follow what was applied (another incarnation, a
    /// revision gap): resubscribe.
    OutOfOrder,
}

/// Folds Watch messages into a catalog; a snapshot is built aside and
/// replaces the catalog once its last chunk arrives.
#[derive(Default)]
pub struct CatalogBuilder {
    pending: Option<Catalog>,
}

impl CatalogBuilder {
    pub fn apply(&mut self, current: &mut Catalog, msg: WatchResponse) -> Applied {
        match msg.kind {
            Some(watch_response::Kind::Snapshot(chunk)) => {
                if chunk.first {
                    self.pending = Some(Catalog {
                        incarnation: msg.incarnation.clone(),
                        revision: msg.revision,
                        complete: true,
                        apis: chunk
                            .apis
                            .iter()
                            .map(|a| (a.name.clone(), a.clone()))
                            .collect(),
                        versions: BTreeMap::new(),
                    });
                }
                let Some(pending) = self.pending.as_mut() else {
                    return Applied::OutOfOrder;
                };
                if pending.incarnation != msg.incarnation || pending.revision != msg.revision {
                    self.pending = None;
                    return Applied::OutOfOrder;
                }
                for v in chunk.versions {
                    pending.versions.insert(VersionKey::of(&v), v);
                }
                if chunk.last {
                    *current = self.pending.take().expect("checked above");
                    Applied::Changed
                } else {
                    Applied::Pending
                }
            }
            Some(watch_response::Kind::Event(event)) => {
                if self.pending.is_some()
                    || !current.complete
                    || msg.incarnation != current.incarnation
                    || msg.revision != current.revision + 1
                {
                    return Applied::OutOfOrder;
                }
                current.revision = msg.revision;
                let Some(version) = event.version else {
                    return Applied::Changed;
                };
                let key = VersionKey::of(&version);
                match EventKind::try_from(event.kind) {
                    Ok(EventKind::Added | EventKind::Updated) => {
                        current.versions.insert(key, version);
                    }
                    Ok(EventKind::Removed) => {
                        current.versions.remove(&key);
                    }
                    Ok(EventKind::Unspecified) | Err(_) => {}
                }
                Applied::Changed
            }
            None => Applied::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotswap_proto::v1::{SnapshotChunk, VersionEvent};

    fn version(model: &str, n: u64) -> ModelVersion {
        ModelVersion {
            api: "a".into(),
            model: model.into(),
            version: n,
            state: VersionState::Valid as i32,
            ..Default::default()
        }
    }

    fn chunk(rev: u64, first: bool, last: bool, versions: Vec<ModelVersion>) -> WatchResponse {
        WatchResponse {
            incarnation: "i1".into(),
            revision: rev,
            kind: Some(watch_response::Kind::Snapshot(SnapshotChunk {
                first,
                last,
                apis: vec![Api {
                    name: "a".into(),
                    ..Default::default()
                }],
                versions,
            })),
        }
    }

    fn event(incarnation: &str, rev: u64, kind: EventKind, v: ModelVersion) -> WatchResponse {
        WatchResponse {
            incarnation: incarnation.into(),
            revision: rev,
            kind: Some(watch_response::Kind::Event(VersionEvent {
                kind: kind as i32,
                version: Some(v),
            })),
        }
    }

    #[test]
    fn snapshots_apply_whole_and_events_in_order() {
        let mut catalog = Catalog::default();
        let mut b = CatalogBuilder::default();
        assert_eq!(
            b.apply(&mut catalog, chunk(5, true, false, vec![version("m", 1)])),
            Applied::Pending
        );
        assert!(!catalog.complete, "half a snapshot is not applied");
        assert_eq!(
            b.apply(&mut catalog, chunk(5, false, true, vec![version("m", 2)])),
            Applied::Changed
        );
        assert!(catalog.complete);
        assert_eq!((catalog.revision, catalog.versions.len()), (5, 2));
        assert_eq!(catalog.models("a"), vec!["m"]);

        assert_eq!(
            b.apply(
                &mut catalog,
                event("i1", 6, EventKind::Added, version("n", 1))
            ),
            Applied::Changed
        );
        assert_eq!(
            b.apply(
                &mut catalog,
                event("i1", 7, EventKind::Removed, version("m", 1))
            ),
            Applied::Changed
        );
        assert_eq!(catalog.revision, 7);
        let versions: Vec<u64> = catalog
            .versions("a", "m")
            .iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(versions, vec![2]);
        assert_eq!(catalog.models("a"), vec!["m", "n"]);

        // A gap or another incarnation is not applied: the caller resubscribes.
        let before = catalog.versions.len();
        assert_eq!(
            b.apply(
                &mut catalog,
                event("i1", 9, EventKind::Added, version("x", 1))
            ),
            Applied::OutOfOrder
        );
        assert_eq!(
            b.apply(
                &mut catalog,
                event("i2", 8, EventKind::Added, version("x", 1))
            ),
            Applied::OutOfOrder
        );
        assert_eq!(catalog.versions.len(), before);
        assert_eq!(catalog.revision, 7);
    }

    #[test]
    fn a_new_snapshot_replaces_everything() {
        let mut catalog = Catalog::default();
        let mut b = CatalogBuilder::default();
        b.apply(
            &mut catalog,
            chunk(3, true, true, vec![version("m", 1), version("m", 2)]),
        );
        b.apply(&mut catalog, chunk(9, true, true, vec![version("z", 4)]));
        assert_eq!(catalog.revision, 9);
        assert_eq!(
            catalog
                .versions
                .keys()
                .map(|k| k.model.as_str())
                .collect::<Vec<_>>(),
            vec!["z"]
        );
    }
}
