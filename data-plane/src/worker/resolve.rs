//! Which model version a request gets. "" or "latest" is the highest
//! version the worker can serve: with eager loading, the highest one already
//! loaded (a version that just arrived is used once it is loaded, so no
//! request waits for it); with a cache limit, the highest that has not just
//! failed to load (it is loaded on first use). A number is that version.

use std::time::Instant;

use hotswap_proto::v1::ModelVersion;

use super::Worker;
use crate::catalog::{Catalog, VersionKey};
use crate::error::list;
use crate::{Error, lock};

/// A model of an API, as a request names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelRef {
    pub api: String,
    pub model: String,
}

impl ModelRef {
    /// The name the Open Inference Protocol uses: the API's name when the
    /// model is named after it (a `path` API), else "api/model".
    pub fn protocol_name(&self) -> String {
        if self.api == self.model {
            self.api.clone()
        } else {
            format!("{}/{}", self.api, self.model)
        }
    }
}

impl Worker {
    fn complete_catalog(&self) -> Result<std::sync::Arc<Catalog>, Error> {
        let catalog = self.catalog();
        if catalog.complete {
            Ok(catalog)
        } else {
            Err(Error::NotReady)
        }
    }

    /// An API and a model in it; the model may be empty when the API serves
    /// exactly one.
    pub fn model_ref(&self, api: &str, model: &str) -> Result<ModelRef, Error> {
        let catalog = self.complete_catalog()?;
        if !catalog.apis.contains_key(api) {
            let apis: Vec<&String> = catalog.apis.keys().collect();
            return Err(Error::NotFound(format!(
                "api `{api}` not found; apis: {}",
                list(&apis)
            )));
        }
        let models = catalog.models(api);
        let model = match model {
            "" if models.len() == 1 => models[0].clone(),
            "" => {
                return Err(Error::NotFound(format!(
                    "api `{api}` serves {} models; name one of: {}",
                    models.len(),
                    list(&models)
                )));
            }
            m if models.iter().any(|x| x == m) => m.to_owned(),
            m => {
                return Err(Error::NotFound(format!(
                    "model `{m}` not found in api `{api}`; models: {}",
                    list(&models)
                )));
            }
        };
        Ok(ModelRef {
            api: api.to_owned(),
            model,
        })
    }

    /// A model by its Open Inference Protocol name: "api/model", or a name
    /// that is an API serving one model, or a model name only one API has.
    pub fn model_by_name(&self, name: &str) -> Result<ModelRef, Error> {
        let catalog = self.complete_catalog()?;
        if let Some((api, model)) = name.split_once('/')
            && catalog.apis.contains_key(api)
        {
            return self.model_ref(api, model);
        }
        if catalog.apis.contains_key(name) {
            return self.model_ref(name, "");
        }
        let owners: Vec<ModelRef> = catalog
            .versions
            .keys()
            .filter(|k| k.model == name)
            .map(|k| ModelRef {
                api: k.api.clone(),
                model: k.model.clone(),
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        match owners.len() {
            1 => Ok(owners[0].clone()),
            0 => Err(Error::NotFound(format!(
                "model `{name}` not found; models: {}",
                list(&self.model_names())
            ))),
            _ => Err(Error::NotFound(format!(
                "model name `{name}` is ambiguous; use one of: {}",
                list(
                    &owners
                        .iter()
                        .map(ModelRef::protocol_name)
                        .collect::<Vec<_>>()
                )
            ))),
        }
    }

    /// Every model's protocol name.
    pub fn model_names(&self) -> Vec<String> {
        self.models().iter().map(ModelRef::protocol_name).collect()
    }

    pub fn models(&self) -> Vec<ModelRef> {
        let catalog = self.catalog();
        let mut refs: Vec<ModelRef> = catalog
            .versions
            .keys()
            .map(|k| ModelRef {
                api: k.api.clone(),
                model: k.model.clone(),
            })
            .collect();
        refs.dedup();
        refs
    }

    /// The version a request for `version` ("", "latest" or a number) gets.
    pub fn resolve(&self, m: &ModelRef, version: &str) -> Result<ModelVersion, Error> {
        let catalog = self.complete_catalog()?;
        let versions = catalog.versions(&m.api, &m.model);
        let numbers = || {
            versions
                .iter()
                .map(|v| v.version.to_string())
                .collect::<Vec<_>>()
        };
        let what = m.protocol_name();
        let version = version.trim();
        if version.is_empty() || version == "latest" {
            return self.latest(&catalog, m, &versions);
        }
        let found = version
            .parse::<u64>()
            .ok()
            .and_then(|n| versions.iter().find(|v| v.version == n));
        let Some(v) = found else {
            return Err(Error::NotFound(format!(
                "version {version:?} of `{what}` not found; versions: {}",
                list(&numbers())
            )));
        };
        if !Catalog::valid(v) {
            return Err(Error::FailedPrecondition(format!(
                "version {} of `{what}` is invalid: {}",
                v.version, v.reason
            )));
        }
        Ok((*v).clone())
    }

    fn latest(
        &self,
        catalog: &Catalog,
        m: &ModelRef,
        versions: &[&ModelVersion],
    ) -> Result<ModelVersion, Error> {
        let eager = catalog.apis.get(&m.api).is_none_or(|a| a.cache_size == 0);
        let valid: Vec<&ModelVersion> = versions
            .iter()
            .rev()
            .copied()
            .filter(|v| Catalog::valid(v))
            .collect();
        let status = |v: &ModelVersion| -> (bool, bool) {
            match self.table().get(&VersionKey::of(v)) {
                None => (false, false),
                Some(slot) => {
                    let loaded = slot.current.load().is_some();
                    let failed = lock(&slot.state).failure.as_ref().is_some_and(|f| {
                        f.content_hash == v.content_hash && Instant::now() < f.retry_at
                    });
                    (loaded, failed)
                }
            }
        };
        if eager && let Some(v) = valid.iter().find(|v| status(v).0) {
            return Ok((*v).clone());
        }
        if let Some(v) = valid.iter().find(|v| {
            let (loaded, failed) = status(v);
            loaded || !failed
        }) {
            return Ok((*v).clone());
        }
        let what = m.protocol_name();
        match (valid.first(), versions.last()) {
            (Some(v), _) => Err(Error::Load {
                what: format!("{what} version {}", v.version),
                message: self
                    .table()
                    .get(&VersionKey::of(v))
                    .and_then(|s| lock(&s.state).failure.as_ref().map(|f| f.message.clone()))
                    .unwrap_or_else(|| "failed".to_owned()),
            }),
            (None, Some(v)) => Err(Error::FailedPrecondition(format!(
                "`{what}` has no valid version; version {} is invalid: {}",
                v.version, v.reason
            ))),
            (None, None) => Err(Error::NotFound(format!("`{what}` has no versions"))),
        }
    }
}
