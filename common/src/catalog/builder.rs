//! Folding the Watch stream into a catalog: snapshots (in chunks) and the
//! events after them, in order; sources the model-store has not listed yet
//! keep what the catalog held of them.

use std::collections::{BTreeMap, BTreeSet};

use hotswap_proto::v1::{EventKind, WatchResponse, watch_response};

use super::{Catalog, VersionKey};

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
    /// The sources the pending snapshot's store has not listed yet.
    unknown: BTreeSet<(String, u32)>,
}

impl CatalogBuilder {
    /// A snapshot holds nothing of the sources its store has not listed:
    /// unknown, not empty. What the catalog held of them stays, marked as
    /// carried, until the store lists the source.
    fn carry(&self, before: &Catalog, snapshot: &mut Catalog) {
        for (key, version) in &before.versions {
            if snapshot.versions.contains_key(key) {
                continue;
            }
            let unknown = snapshot
                .apis
                .get(&key.api)
                .and_then(|api| Catalog::source_of(api, &key.model))
                .is_some_and(|position| self.unknown.contains(&(key.api.clone(), position)));
            if unknown {
                snapshot.versions.insert(key.clone(), version.clone());
                snapshot.carried.insert(key.clone());
            }
        }
    }

    /// Applies one Watch message to `current`, which changes only when a
    /// snapshot completes or an event follows it in order.
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
                        carried: BTreeSet::new(),
                    });
                    self.unknown = chunk
                        .unknown_sources
                        .iter()
                        .map(|s| (s.api.clone(), s.position))
                        .collect();
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
                    let mut snapshot = self.pending.take().expect("checked above");
                    self.carry(current, &mut snapshot);
                    *current = snapshot;
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
                if let (Ok(EventKind::SourceListed), Some(source)) =
                    (EventKind::try_from(event.kind), &event.source)
                {
                    forget_carried(current, &source.api, source.position);
                    return Applied::Changed;
                }
                let Some(version) = event.version else {
                    return Applied::Changed;
                };
                let key = VersionKey::of(&version);
                current.carried.remove(&key);
                match EventKind::try_from(event.kind) {
                    Ok(EventKind::Added | EventKind::Updated) => {
                        current.versions.insert(key, version);
                    }
                    Ok(EventKind::Removed) => {
                        current.versions.remove(&key);
                    }
                    Ok(EventKind::SourceListed | EventKind::Unspecified) | Err(_) => {}
                }
                Applied::Changed
            }
            None => Applied::Pending,
        }
    }
}

/// The store now lists `api`'s source at `position`: what was carried of it
/// and not sent since is gone from the bucket.
fn forget_carried(catalog: &mut Catalog, api: &str, position: u32) {
    let Some(definition) = catalog.apis.get(api) else {
        return;
    };
    let gone: Vec<VersionKey> = catalog
        .carried
        .iter()
        .filter(|k| k.api == api && Catalog::source_of(definition, &k.model) == Some(position))
        .cloned()
        .collect();
    for key in gone {
        catalog.carried.remove(&key);
        catalog.versions.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotswap_proto::v1::{
        Api, ModelSource, ModelVersion, SnapshotChunk, SourceRef, VersionEvent, VersionState,
    };

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
                    sources: vec![ModelSource {
                        is_dir: true,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                versions,
                unknown_sources: Vec::new(),
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
                source: None,
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

    #[test]
    fn a_source_the_new_store_has_not_listed_keeps_what_was_held() {
        let mut catalog = Catalog::default();
        let mut b = CatalogBuilder::default();
        b.apply(
            &mut catalog,
            chunk(3, true, true, vec![version("m", 1), version("n", 1)]),
        );
        // Another model-store process, whose first listing failed.
        let mut unknown = chunk(1, true, true, vec![]);
        unknown.incarnation = "i2".into();
        if let Some(watch_response::Kind::Snapshot(c)) = unknown.kind.as_mut() {
            c.unknown_sources = vec![SourceRef {
                api: "a".into(),
                position: 0,
            }];
        }
        assert_eq!(b.apply(&mut catalog, unknown), Applied::Changed);
        assert_eq!(catalog.models("a"), vec!["m", "n"], "unknown, not empty");
        assert_eq!(catalog.carried.len(), 2);
        // Listed at last: m is there again, n is gone.
        b.apply(
            &mut catalog,
            event("i2", 2, EventKind::Added, version("m", 1)),
        );
        let listed = WatchResponse {
            incarnation: "i2".into(),
            revision: 3,
            kind: Some(watch_response::Kind::Event(VersionEvent {
                kind: EventKind::SourceListed as i32,
                version: None,
                source: Some(SourceRef {
                    api: "a".into(),
                    position: 0,
                }),
            })),
        };
        assert_eq!(b.apply(&mut catalog, listed), Applied::Changed);
        assert_eq!(catalog.models("a"), vec!["m"]);
        assert!(catalog.carried.is_empty());
        // A snapshot from a store that has listed the source removes.
        let mut listed_empty = chunk(4, true, true, vec![]);
        listed_empty.incarnation = "i2".into();
        b.apply(&mut catalog, listed_empty);
        assert!(catalog.versions.is_empty());
    }
}
