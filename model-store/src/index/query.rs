//! Read-only views of the index for operators (ListModels, GetModel).

use std::collections::BTreeMap;

use hotswap_proto::v1::{
    ApiStatus, GetModelResponse, ListModelsResponse, ModelSummary, ModelVersion, VersionState,
    VersionSummary,
};

use super::Index;
use crate::Error;

impl Index {
    pub fn list_models(&self, api_filter: &str) -> Result<ListModelsResponse, Error> {
        if !api_filter.is_empty() {
            self.api_names_check(api_filter)?;
        }
        let apis = self
            .apis
            .iter()
            .filter(|api| api_filter.is_empty() || api.name == api_filter)
            .map(|api| ApiStatus {
                api: Some(api.clone()),
                sources: self.sources.get(&api.name).cloned().unwrap_or_default(),
                models: self
                    .models_of(&api.name)
                    .into_iter()
                    .map(|(model, versions)| ModelSummary {
                        model: model.to_owned(),
                        latest: latest(&versions),
                        versions: versions
                            .iter()
                            .map(|v| VersionSummary {
                                version: v.version,
                                state: v.state,
                                reason: v.reason.clone(),
                                content_hash: v.content_hash.clone(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        Ok(ListModelsResponse {
            incarnation: self.incarnation.clone(),
            revision: self.revision,
            apis,
        })
    }

    /// One model's published versions. `model` may be empty when the API
    /// serves exactly one model.
    pub fn get_model(&self, api: &str, model: &str) -> Result<GetModelResponse, Error> {
        self.api_names_check(api)?;
        let models = self.models_of(api);
        let model = if model.is_empty() {
            let names = self.model_names(api, &models);
            match names.as_slice() {
                [only] => only.clone(),
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "api `{api}` serves {} models ({}); name one",
                        names.len(),
                        names.join(", ")
                    )));
                }
            }
        } else {
            model.to_owned()
        };
        let known = self.model_names(api, &models);
        if !known.contains(&model) {
            return Err(Error::ModelNotFound {
                api: api.to_owned(),
                model,
                known,
            });
        }
        // A model the config names but whose folder holds nothing yet has no
        // versions: not an error.
        let versions = models.get(model.as_str()).cloned().unwrap_or_default();
        Ok(GetModelResponse {
            incarnation: self.incarnation.clone(),
            revision: self.revision,
            latest: latest(&versions),
            versions: versions.into_iter().cloned().collect(),
        })
    }

    fn api_names_check(&self, api: &str) -> Result<(), Error> {
        if self.apis.iter().any(|a| a.name == api) {
            return Ok(());
        }
        Err(Error::ApiNotFound {
            api: api.to_owned(),
            known: self.apis.iter().map(|a| a.name.clone()).collect(),
        })
    }

    /// Published versions of each model of `api`, in version order.
    fn models_of(&self, api: &str) -> BTreeMap<&str, Vec<&ModelVersion>> {
        let mut models: BTreeMap<&str, Vec<&ModelVersion>> = BTreeMap::new();
        for (key, version) in &self.published {
            if key.api == api {
                models.entry(key.model.as_str()).or_default().push(version);
            }
        }
        models
    }

    /// Models named by the config (`path`, `paths`) or found (`dir`), even
    /// those with no published version yet.
    fn model_names(&self, api: &str, found: &BTreeMap<&str, Vec<&ModelVersion>>) -> Vec<String> {
        let mut names: Vec<String> = found.keys().map(|m| (*m).to_owned()).collect();
        if let Some(spec) = self.apis.iter().find(|a| a.name == api) {
            for source in &spec.sources {
                if !source.is_dir && !names.contains(&source.name) {
                    names.push(source.name.clone());
                }
            }
        }
        names.sort();
        names
    }
}

/// The highest valid version: what `latest` resolves to.
fn latest(versions: &[&ModelVersion]) -> Option<u64> {
    versions
        .iter()
        .filter(|v| v.state == VersionState::Valid as i32)
        .map(|v| v.version)
        .max()
}
