//! APIs with live model reloading off (Inferentia with
//! processes_per_replica > 1, as the model-store says in
//! `Api.reloading_off`): the worker serves each model of such an API with
//! the versions it first saw and does not apply the model-store's later
//! changes to them. A worker started later pins what is there at its start.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use hotswap_proto::v1::ModelVersion;

use super::{Catalog, VersionKey};

/// After a model is pinned, further valid versions of it still join the pin
/// for this long: the model-store publishes the versions of one listing as
/// separate events, so "what was there" arrives over a few messages.
pub const GATHER: Duration = Duration::from_secs(5);

/// Pinned versions per (api, model), and when each model was pinned.
#[derive(Default)]
pub struct Pins {
    models: HashMap<(String, String), Pinned>,
}

struct Pinned {
    since: Instant,
    versions: BTreeMap<VersionKey, ModelVersion>,
}

impl Pins {
    /// The catalog to publish: `catalog` with each pinned model's versions
    /// replaced by the pinned ones. A model is pinned the first time it has
    /// a valid version (so a model whose folder was empty, or still
    /// uploading, at start gets the first valid versions that arrive), and
    /// valid versions added within [`GATHER`] of that join it.
    pub fn apply(&mut self, mut catalog: Catalog) -> Catalog {
        // APIs with reloading off.
        let off: HashSet<String> = catalog
            .apis
            .iter()
            .filter(|(_, a)| !a.reloading_off.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        if !catalog.complete || (off.is_empty() && self.models.is_empty()) {
            return catalog;
        }
        // The model-store may have restarted with another config.
        self.models.retain(|(api, _), _| off.contains(api));
        // Valid versions of models not pinned yet.
        let mut fresh: BTreeMap<(String, String), BTreeMap<VersionKey, ModelVersion>> =
            BTreeMap::new();
        for (key, version) in &catalog.versions {
            if !off.contains(&key.api) {
                continue;
            }
            let model = (key.api.clone(), key.model.clone());
            if let Some(pinned) = self.models.get_mut(&model) {
                // New versions of the same listing still join; updates and
                // later versions do not.
                if pinned.since.elapsed() < GATHER
                    && Catalog::valid(version)
                    && !pinned.versions.contains_key(key)
                {
                    pinned.versions.insert(key.clone(), version.clone());
                }
                continue;
            }
            if Catalog::valid(version) {
                fresh
                    .entry(model)
                    .or_default()
                    .insert(key.clone(), version.clone());
            }
        }
        for (model, valid) in fresh {
            tracing::warn!(
                api = %model.0,
                model = %model.1,
                versions = ?valid.keys().map(|k| k.version).collect::<Vec<_>>(),
                "{}; serving these versions from now on",
                catalog.apis[&model.0].reloading_off
            );
            self.models.insert(
                model,
                Pinned {
                    since: Instant::now(),
                    versions: valid,
                },
            );
        }
        // Unpinned models of such APIs (nothing valid yet) are held back
        // too, until they are pinned.
        catalog.versions.retain(|k, _| !off.contains(&k.api));
        for pinned in self.models.values() {
            catalog
                .versions
                .extend(pinned.versions.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        catalog
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotswap_proto::v1::{Api, VersionState};

    fn catalog(reloading_off: &str, versions: &[(u64, &str)]) -> Catalog {
        let api = Api {
            name: "a".into(),
            reloading_off: reloading_off.into(),
            ..Default::default()
        };
        Catalog {
            complete: true,
            apis: [("a".to_owned(), api)].into(),
            versions: versions
                .iter()
                .map(|&(n, hash)| {
                    let v = ModelVersion {
                        api: "a".into(),
                        model: "m".into(),
                        version: n,
                        content_hash: hash.into(),
                        state: if hash.is_empty() {
                            VersionState::Invalid
                        } else {
                            VersionState::Valid
                        } as i32,
                        ..Default::default()
                    };
                    (VersionKey::of(&v), v)
                })
                .collect(),
            ..Default::default()
        }
    }

    fn seen(c: &Catalog) -> Vec<(u64, String)> {
        c.versions
            .values()
            .map(|v| (v.version, v.content_hash.clone()))
            .collect()
    }

    #[test]
    fn pinned_apis_keep_their_first_versions() {
        let mut pins = Pins::default();
        // Nothing to pin yet: an empty API, or one whose only version is
        // invalid (an upload in progress), waits for a valid version.
        assert!(seen(&pins.apply(catalog("off", &[]))).is_empty());
        assert!(seen(&pins.apply(catalog("off", &[(1, "")]))).is_empty());
        let first = pins.apply(catalog("off", &[(1, "h1")]));
        assert_eq!(seen(&first), vec![(1, "h1".to_owned())]);
        // The rest of the same listing (a moment later) joins.
        let gathered = pins.apply(catalog("off", &[(1, "h1"), (2, "h2")]));
        assert_eq!(
            seen(&gathered),
            vec![(1, "h1".to_owned()), (2, "h2".to_owned())]
        );
        // Once gathered, a new version and an in-place update are not
        // applied.
        pins.models.values_mut().for_each(|p| p.since -= GATHER);
        let later = pins.apply(catalog("off", &[(1, "h1b"), (2, "h2"), (3, "h3")]));
        assert_eq!(
            seen(&later),
            vec![(1, "h1".to_owned()), (2, "h2".to_owned())]
        );
    }

    #[test]
    fn apis_with_reloading_on_follow_the_model_store() {
        let mut pins = Pins::default();
        pins.apply(catalog("", &[(1, "h1")]));
        let later = pins.apply(catalog("", &[(2, "h2")]));
        assert_eq!(seen(&later), vec![(2, "h2".to_owned())]);
    }
}
