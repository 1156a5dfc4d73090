//! The worker's copy of the model-store index, kept current by the Watch
//! subscription (subscription.rs) and read by everything that resolves a
//! request.

use std::collections::BTreeMap;

use hotswap_proto::v1::{
    Api, EventKind, ModelVersion, VersionState, WatchResponse, watch_response,
};

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
