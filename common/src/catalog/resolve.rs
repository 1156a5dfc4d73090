//! Which version a call gets: the one rule both planes apply, each with
//! what it knows of where versions are loaded (a worker: its own swap table;
//! a control plane: what the workers report). A number or a label is that
//! version. `latest` (or nothing) is the highest version held now, so a
//! version that just arrived is used once it has loaded and no call waits
//! for it; with nothing held, the highest valid version that is not failing
//! to load, loaded on demand, with the lower ones as fallbacks.

use hotswap_proto::v1::ModelVersion;

use super::{Catalog, CatalogError, ModelRef, is_latest, outside_policy};

/// What a plane knows of where versions are loaded.
pub trait Holdings {
    /// Whether the version's instance is loaded (here, or on some worker).
    fn held(&self, v: &ModelVersion) -> bool;

    /// Whether the version's current content failed to load and is waiting
    /// for its retry (a control plane does not know: never).
    fn failing(&self, _v: &ModelVersion) -> bool {
        false
    }
}

/// A call's version, resolved.
#[derive(Debug, PartialEq)]
pub enum Resolved<'a> {
    /// Named by number or label, and held or valid.
    Named(&'a ModelVersion),
    /// `latest`, answered by the newest version held; `newer` is a version
    /// to load in the background meanwhile (a newer valid one, or any valid
    /// one when what is held is outside the version policy).
    Held {
        /// The newest version held.
        version: &'a ModelVersion,
        /// What should be loaded beside it.
        newer: Option<&'a ModelVersion>,
    },
    /// `latest` with nothing held: the versions to load, newest first
    /// (never empty).
    Load(Vec<&'a ModelVersion>),
    /// `latest` with nothing held and every valid version failing to load:
    /// the newest of them, whose failure the caller reports.
    Failing(&'a ModelVersion),
}

impl<'a> Resolved<'a> {
    /// The version a call goes to first.
    pub fn first(&self) -> &'a ModelVersion {
        match self {
            Resolved::Named(v) | Resolved::Held { version: v, .. } | Resolved::Failing(v) => v,
            Resolved::Load(versions) => versions[0],
        }
    }
}

impl Catalog {
    /// Resolves `version` of `m` (see the module's doc) with what `holdings`
    /// says is loaded.
    pub fn resolve<'a>(
        &'a self,
        holdings: &impl Holdings,
        m: &ModelRef,
        version: &str,
    ) -> Result<Resolved<'a>, CatalogError> {
        self.require_complete()?;
        if !is_latest(version) {
            let v = self.numbered(m, version)?;
            // A version updated in place keeps serving its last good
            // content where it is held, also when the update is INVALID.
            if !holdings.held(v) && !Catalog::valid(v) {
                return Err(CatalogError::Unservable(format!(
                    "version {} of `{}` is invalid: {}",
                    v.version,
                    m.protocol_name(),
                    v.reason
                )));
            }
            return Ok(Resolved::Named(v));
        }
        let versions = self.versions(&m.api, &m.model);
        let mut loadable = versions
            .iter()
            .rev()
            .copied()
            .filter(|v| Catalog::valid(v) && !holdings.failing(v));
        if let Some(held) = versions.iter().rev().copied().find(|v| holdings.held(v)) {
            let newer = loadable
                .next()
                .filter(|n| n.version > held.version || Catalog::excluded(held));
            return Ok(Resolved::Held {
                version: held,
                newer,
            });
        }
        let loadable: Vec<&ModelVersion> = loadable.collect();
        if !loadable.is_empty() {
            return Ok(Resolved::Load(loadable));
        }
        if let Some(e) = outside_policy(m, &versions) {
            return Err(e);
        }
        if let Some(failing) = versions.iter().rev().find(|v| Catalog::valid(v)) {
            return Ok(Resolved::Failing(failing));
        }
        let what = m.protocol_name();
        Err(match versions.last() {
            Some(v) => CatalogError::Unservable(format!(
                "`{what}` has no valid version; version {} is invalid: {}",
                v.version, v.reason
            )),
            None => CatalogError::NotFound(format!("`{what}` has no versions")),
        })
    }

    /// Whether a call for `version` of `m` would be served without an
    /// error now (ModelReady, on both planes): the version it resolves to
    /// is held, or its API loads versions on demand, it is valid, and there
    /// is somewhere to load it (`can_load`: a worker, always; a control
    /// plane, with a worker registered) that is not failing to. NOT_FOUND
    /// for names that do not exist; false for every other error.
    pub fn model_ready(
        &self,
        holdings: &impl Holdings,
        m: &ModelRef,
        version: &str,
        can_load: bool,
    ) -> Result<bool, CatalogError> {
        let v = match self.resolve(holdings, m, version) {
            Ok(Resolved::Failing(_)) => return Ok(false),
            Ok(resolved) => resolved.first(),
            Err(e @ CatalogError::NotFound(_)) => return Err(e),
            Err(_) => return Ok(false),
        };
        let on_demand = self.apis.get(&v.api).is_some_and(|a| a.cache_size > 0);
        Ok(
            holdings.held(v)
                || (on_demand && Catalog::valid(v) && can_load && !holdings.failing(v)),
        )
    }
}

#[cfg(test)]
mod tests;
