//! APIs with live model reloading off (Inferentia with
//! processes_per_replica > 1, as the model-store says in
//! `Api.reloading_off`): the worker serves such an API's versions as it
//! first saw them and does not apply the model-store's later changes to
//! them. A worker started later pins what is there at its start.

use std::collections::{BTreeMap, HashMap};

use hotswap_proto::v1::ModelVersion;

use super::{Catalog, VersionKey};

#[derive(Default)]
pub struct Pins {
    apis: HashMap<String, BTreeMap<VersionKey, ModelVersion>>,
}

impl Pins {
    /// The catalog to publish: `catalog` with each pinned API's versions
    /// replaced by the pinned ones. An API is pinned the first time it has
    /// versions (so an API whose bucket was empty at start still gets the
    /// first versions that arrive).
    pub fn apply(&mut self, mut catalog: Catalog) -> Catalog {
        if !catalog.complete {
            return catalog;
        }
        // The model-store may have restarted with another config.
        self.apis.retain(|name, _| {
            catalog
                .apis
                .get(name)
                .is_some_and(|a| !a.reloading_off.is_empty())
        });
        for (name, api) in &catalog.apis {
            if api.reloading_off.is_empty() || self.apis.contains_key(name) {
                continue;
            }
            let versions: BTreeMap<VersionKey, ModelVersion> = catalog
                .versions
                .iter()
                .filter(|(k, _)| &k.api == name)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if versions.is_empty() {
                continue;
            }
            tracing::warn!(
                api = %name,
                versions = ?versions.keys().map(|k| format!("{}:{}", k.model, k.version)).collect::<Vec<_>>(),
                "{}; serving these versions from now on",
                api.reloading_off
            );
            self.apis.insert(name.clone(), versions);
        }
        if self.apis.is_empty() {
            return catalog;
        }
        catalog
            .versions
            .retain(|k, _| !self.apis.contains_key(&k.api));
        for versions in self.apis.values() {
            catalog
                .versions
                .extend(versions.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        catalog
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotswap_proto::v1::Api;

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
        // Nothing to pin yet: an empty API waits for its first versions.
        assert!(seen(&pins.apply(catalog("off", &[]))).is_empty());
        let first = pins.apply(catalog("off", &[(1, "h1")]));
        assert_eq!(seen(&first), vec![(1, "h1".to_owned())]);
        // A new version and an in-place update are not applied.
        let later = pins.apply(catalog("off", &[(1, "h1b"), (2, "h2")]));
        assert_eq!(seen(&later), vec![(1, "h1".to_owned())]);
    }

    #[test]
    fn apis_with_reloading_on_follow_the_model_store() {
        let mut pins = Pins::default();
        pins.apply(catalog("", &[(1, "h1")]));
        let later = pins.apply(catalog("", &[(2, "h2")]));
        assert_eq!(seen(&later), vec![(2, "h2".to_owned())]);
    }
}
