//! Which model version a request gets. "" or "latest" is the highest
//! version the worker can serve without making the request wait for a
//! version that just arrived: the highest version already loaded, when there
//! is one (a newer version is loaded in the background and used once
//! loaded); otherwise the highest valid version not in a failure backoff,
//! loaded on demand, falling back to lower ones if that load fails. A version
//! outside the model's `version_policy` serves `latest` only while a worker
//! still holds it because no version within the policy has loaded there. A
//! number is that version. A version updated in place keeps serving its
//! last good content, also when the update made it INVALID.

use std::sync::Arc;
use std::time::Instant;

use hotswap_proto::v1::ModelVersion;

use hotswap_common::catalog::{Catalog, ModelRef, VersionKey, is_latest, outside_policy};
use hotswap_common::lock;

use super::Worker;
use crate::Error;
use crate::table::Loaded;

/// A version to serve a request from, and its published instance if the
/// resolver saw one (used as is, even if the version is removed a moment
/// later: requests finish on what they found).
pub struct Target {
    pub version: ModelVersion,
    pub loaded: Option<Arc<Loaded>>,
}

impl Worker {
    /// An API and a model in it (see [`Catalog::model_ref`]).
    pub fn model_ref(&self, api: &str, model: &str) -> Result<ModelRef, Error> {
        Ok(self.catalog().model_ref(api, model)?)
    }

    /// A model by its Open Inference Protocol name.
    pub fn model_by_name(&self, name: &str) -> Result<ModelRef, Error> {
        Ok(self.catalog().model_by_name(name)?)
    }

    /// Candidates for a request, best first: the caller serves from the
    /// first that is loaded or loads.
    pub fn resolve(self: &Arc<Self>, m: &ModelRef, version: &str) -> Result<Vec<Target>, Error> {
        self.resolve_in(&self.catalog(), m, version)
    }

    /// As [`Worker::resolve`], for an inference: a call naming no version
    /// may go to a version by the model's `traffic` weights. (Behind a
    /// control plane the pick was made there and the worker is asked for a
    /// number; serving clients directly, it is made here.)
    pub fn resolve_call(
        self: &Arc<Self>,
        m: &ModelRef,
        version: &str,
    ) -> Result<Vec<Target>, Error> {
        let catalog = self.catalog();
        let picked = catalog.pick_by_traffic(m, version);
        self.resolve_in(&catalog, m, picked.as_deref().unwrap_or(version))
    }

    fn resolve_in(
        self: &Arc<Self>,
        catalog: &Catalog,
        m: &ModelRef,
        version: &str,
    ) -> Result<Vec<Target>, Error> {
        catalog.require_complete()?;
        if !is_latest(version) {
            let v = catalog.numbered(m, version)?;
            let loaded = self.published(v);
            if loaded.is_none() && !Catalog::valid(v) {
                return Err(Error::FailedPrecondition(format!(
                    "version {} of `{}` is invalid: {}",
                    v.version,
                    m.protocol_name(),
                    v.reason
                )));
            }
            return Ok(vec![Target {
                version: v.clone(),
                loaded,
            }]);
        }
        let versions = catalog.versions(&m.api, &m.model);
        let newest_loaded = versions
            .iter()
            .rev()
            .find_map(|v| self.published(v).map(|l| ((*v).clone(), l)));
        let loadable: Vec<&ModelVersion> = versions
            .iter()
            .rev()
            .copied()
            .filter(|v| Catalog::valid(v) && !self.failed(v))
            .collect();
        if let Some((v, loaded)) = newest_loaded {
            // A newer version is on its way (or the one loaded is held
            // only until a version within the policy loads): serve what is
            // loaded meanwhile.
            if let Some(newer) = loadable
                .first()
                .filter(|n| n.version > v.version || Catalog::excluded(&v))
            {
                self.load_in_background(newer);
            }
            return Ok(vec![Target {
                version: v,
                loaded: Some(loaded),
            }]);
        }
        if !loadable.is_empty() {
            return Ok(loadable
                .into_iter()
                .map(|v| Target {
                    version: v.clone(),
                    loaded: None,
                })
                .collect());
        }
        if let Some(e) = outside_policy(m, &versions) {
            return Err(e.into());
        }
        let what = m.protocol_name();
        let valid = versions.iter().rev().find(|v| Catalog::valid(v));
        match (valid, versions.last()) {
            (Some(v), _) => {
                let what = format!("{what} version {}", v.version);
                let failure = self
                    .table()
                    .get(&VersionKey::of(v))
                    .and_then(|s| lock(&s.state).failure.clone());
                Err(match failure {
                    Some(f) => f.error(what),
                    None => Error::LoadFailed {
                        what,
                        message: "failed".to_owned(),
                    },
                })
            }
            (None, Some(v)) => Err(Error::FailedPrecondition(format!(
                "`{what}` has no valid version; version {} is invalid: {}",
                v.version, v.reason
            ))),
            (None, None) => Err(Error::NotFound(format!("`{what}` has no versions"))),
        }
    }

    /// The published instance of a version, if any.
    pub(crate) fn published(&self, v: &ModelVersion) -> Option<Arc<Loaded>> {
        self.table()
            .get(&VersionKey::of(v))
            .and_then(|s| s.current.load_full())
    }

    /// Whether the version's current content failed to load and its retry
    /// time has not come yet.
    pub(crate) fn failed(&self, v: &ModelVersion) -> bool {
        self.table().get(&VersionKey::of(v)).is_some_and(|slot| {
            lock(&slot.state)
                .failure
                .as_ref()
                .is_some_and(|f| f.content_hash == v.content_hash && Instant::now() < f.retry_at)
        })
    }
}
