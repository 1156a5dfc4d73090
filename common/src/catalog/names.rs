//! How requests name models, resolved against the catalog alone (the worker
//! and the control plane share these rules): an API and a model in it, or an
//! Open Inference Protocol name; a version number.

use hotswap_proto::v1::ModelVersion;

use hotswap_proto::error::shown;

use super::{Catalog, CatalogError as Error};
use crate::list;

/// A model of an API, as a request names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelRef {
    /// The API's name.
    pub api: String,
    /// The model's name within the API.
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

impl Catalog {
    /// Errors unless the first snapshot has arrived.
    pub fn require_complete(&self) -> Result<(), Error> {
        if self.complete {
            Ok(())
        } else {
            Err(Error::NotReady)
        }
    }

    /// An API and a model in it; the model may be empty when the API serves
    /// exactly one.
    pub fn model_ref(&self, api: &str, model: &str) -> Result<ModelRef, Error> {
        self.require_complete()?;
        if !self.apis.contains_key(api) {
            let apis: Vec<&String> = self.apis.keys().collect();
            return Err(Error::NotFound(format!(
                "api `{}` not found; apis: {}",
                shown(api),
                list(&apis)
            )));
        }
        let models = self.models(api);
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
                    "model `{}` not found in api `{api}`; models: {}",
                    shown(m),
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
        self.require_complete()?;
        if let Some((api, model)) = name.split_once('/')
            && self.apis.contains_key(api)
        {
            return self.model_ref(api, model);
        }
        if self.apis.contains_key(name) {
            return self.model_ref(name, "");
        }
        let owners: Vec<ModelRef> = self
            .model_refs()
            .into_iter()
            .filter(|m| m.model == name)
            .collect();
        match owners.len() {
            1 => Ok(owners[0].clone()),
            0 => Err(Error::NotFound(format!(
                "model `{}` not found; models: {}",
                shown(name),
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

    /// Every model, in (api, model) order.
    pub fn model_refs(&self) -> Vec<ModelRef> {
        let mut refs: Vec<ModelRef> = self
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

    /// Every model's protocol name.
    pub fn model_names(&self) -> Vec<String> {
        self.model_refs()
            .iter()
            .map(ModelRef::protocol_name)
            .collect()
    }

    /// The version a request names with a number or a label
    /// (`version_labels`); NOT_FOUND listing the versions and labels that
    /// exist otherwise (also for words other than "latest", which callers
    /// handle first), or saying which version a label names when that
    /// version is not in the index.
    pub fn numbered(&self, m: &ModelRef, version: &str) -> Result<&ModelVersion, Error> {
        let versions = self.versions(&m.api, &m.model);
        let asked = version.trim();
        let labels = self.version_labels(m);
        let (number, label) = match asked.parse::<u64>() {
            Ok(n) => (Some(n), None),
            Err(_) => (labels.get(asked).copied(), Some(asked)),
        };
        if let Some(found) = number.and_then(|n| versions.iter().copied().find(|v| v.version == n))
        {
            if Catalog::excluded(found) {
                let named = label.map(|l| format!(" (label `{l}`)")).unwrap_or_default();
                return Err(Error::NotFound(format!(
                    "version {}{named} of `{}` is not served: {}",
                    found.version,
                    m.protocol_name(),
                    found.reason
                )));
            }
            return Ok(found);
        }
        let numbers: Vec<String> = versions.iter().map(|v| v.version.to_string()).collect();
        // How the folder was read may be why (version folders beside a
        // stray file make one unversioned model).
        let notes: String = versions
            .iter()
            .filter(|v| !v.versioned && !v.reason.is_empty())
            .map(|v| format!(" ({})", v.reason))
            .collect();
        let named: Vec<String> = labels.iter().map(|(l, n)| format!("{l} ({n})")).collect();
        let labelled = if named.is_empty() {
            String::new()
        } else {
            format!("; labels: {}", list(&named))
        };
        Err(Error::NotFound(match (label, number) {
            (Some(label), Some(n)) => format!(
                "label `{label}` of `{}` names version {n}, which is not in the model index; \
                 versions: {}{notes}",
                m.protocol_name(),
                list(&numbers)
            ),
            _ => format!(
                "version {:?} of `{}` not found; versions: {}{notes}{labelled}",
                shown(version),
                m.protocol_name(),
                list(&numbers)
            ),
        }))
    }

    /// The labels of a model's versions, from its source in the config.
    pub fn version_labels(&self, m: &ModelRef) -> std::collections::BTreeMap<String, u64> {
        self.source(m)
            .map(|s| {
                s.version_labels
                    .iter()
                    .map(|(l, n)| (l.clone(), *n))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The model's `version_policy`; `None` means all versions.
    pub fn version_policy(&self, m: &ModelRef) -> Option<&hotswap_proto::v1::VersionPolicy> {
        self.source(m)?
            .version_policy
            .as_ref()
            .filter(|p| p.policy.is_some())
    }

    /// For a call that names no version (`""`; `latest` is a name): the
    /// version the model's `traffic` weights pick, as the number a call
    /// would name, when the picked label's version is in the index and
    /// valid. None leaves the call to `latest`.
    pub fn pick_by_traffic(&self, m: &ModelRef, asked: &str) -> Option<String> {
        if !asked.trim().is_empty() {
            return None;
        }
        let source = self.source(m)?;
        // Sorted by label, so a draw means the same label on every plane.
        let mut weights: Vec<(&String, u32)> =
            source.traffic.iter().map(|(l, w)| (l, *w)).collect();
        weights.sort();
        let total: u64 = weights.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return None;
        }
        let mut draw = fastrand::u64(0..total);
        let label = weights.iter().find_map(|(l, w)| {
            let w = u64::from(*w);
            if draw < w {
                Some(*l)
            } else {
                draw -= w;
                None
            }
        })?;
        let number = *source.version_labels.get(label)?;
        self.versions(&m.api, &m.model)
            .into_iter()
            .find(|v| v.version == number && Catalog::valid(v))
            .map(|v| v.version.to_string())
    }

    /// The config source a model comes from.
    fn source(&self, m: &ModelRef) -> Option<&hotswap_proto::v1::ModelSource> {
        let api = self.apis.get(&m.api)?;
        api.sources.get(Catalog::source_of(api, &m.model)? as usize)
    }
}

/// For a model with no valid version, when its versions are valid by
/// their files but outside its `version_policy`: NOT_FOUND with the policy's
/// reason (a `specific` list naming none of the versions uploaded).
pub fn outside_policy(m: &ModelRef, versions: &[&ModelVersion]) -> Option<Error> {
    let excluded = versions.iter().rev().find(|v| Catalog::excluded(v))?;
    Some(Error::NotFound(format!(
        "`{}` has no version to serve: version {} is {}",
        m.protocol_name(),
        excluded.version,
        excluded.reason
    )))
}

/// Whether a request's version means "the latest".
pub fn is_latest(version: &str) -> bool {
    let v = version.trim();
    v.is_empty() || v == "latest"
}
