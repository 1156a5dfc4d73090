//! A copy of the model-store index, kept current by the Watch subscription
//! (subscription.rs) in every worker and control plane, and read by
//! everything that resolves a request. The rules for naming models and
//! versions live here, so the front door and the workers answer alike.

mod builder;
mod kind;
mod names;
mod pinned;
mod resolve;

use std::collections::{BTreeMap, BTreeSet};

use hotswap_proto::v1::{Api, ModelVersion, VersionState};

pub use builder::{Applied, CatalogBuilder};
pub use kind::ApiKind;
pub use names::{ModelRef, is_latest, outside_policy};
pub use pinned::{GATHER as PIN_GATHER, Pins};
pub use resolve::{Holdings, Resolved};

/// Why a request's names do not resolve against the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Something named does not exist; the message lists what does.
    #[error("{0}")]
    NotFound(String),

    /// The version exists but cannot be served: it is INVALID, and nothing
    /// holds an earlier content of it.
    #[error("{0}")]
    Unservable(String),

    /// The first snapshot has not arrived yet.
    #[error("not ready: the model index has not arrived from the model-store yet")]
    NotReady,
}

/// One model version: api, model, version number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionKey {
    /// The API the model belongs to.
    pub api: String,
    /// The model's name within its API.
    pub model: String,
    /// The version number.
    pub version: u64,
}

impl VersionKey {
    /// The key of a model version from the index.
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

/// The model-store's index as last published: its APIs and model versions,
/// at a revision of one model-store incarnation.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Which run of the model-store the revisions count from; a new one
    /// means a new snapshot.
    pub incarnation: String,
    /// The revision of the last message applied.
    pub revision: u64,
    /// False until the first snapshot is complete.
    pub complete: bool,
    /// The APIs, by name.
    pub apis: BTreeMap<String, Api>,
    /// Every model version the index lists, valid or not.
    pub versions: BTreeMap<VersionKey, ModelVersion>,
    /// Versions kept from before the current snapshot because their source
    /// is unknown to the model-store that sent it (its listing failed, or
    /// has not settled yet): served until the model-store lists the source.
    pub carried: BTreeSet<VersionKey>,
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

    /// Whether a version passed validation (and so may be served).
    pub fn valid(v: &ModelVersion) -> bool {
        v.state == VersionState::Valid as i32
    }

    /// Valid by its files, but outside its model's `version_policy`.
    pub fn excluded(v: &ModelVersion) -> bool {
        v.state == VersionState::Excluded as i32
    }

    /// The position of the source `model` of `api` comes from: the API's
    /// `dir` source (every model is one of its sub-folders), or the `path`
    /// source named after the model.
    pub fn source_of(api: &Api, model: &str) -> Option<u32> {
        api.sources
            .iter()
            .position(|s| s.is_dir || s.name == model)
            .map(|p| p as u32)
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
