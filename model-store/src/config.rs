//! The API config: a YAML list of APIs with Cortex's field names, parsed
//! strictly (an unknown field is an error naming it) and validated into
//! [`ApiConfig`]s whose invariants later code relies on.

mod duration;
mod policy;
mod raw;

pub use policy::{VersionPolicy, describe as describe_policy};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hotswap_proto::v1 as proto;

use hotswap_storage::Location;

use crate::Error;
pub use raw::PredictorType;

/// One validated API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// The API's name: what calls name, and a folder name in workers'
    /// caches (checked as Cortex checked it).
    pub name: String,
    /// `kind`: always `RealtimeAPI`, the one kind hotswap serves.
    pub kind: String,
    /// `predictor.type`.
    pub predictor_type: PredictorType,
    /// The user's predictor class file, resolved against the config's folder.
    pub predictor_path: Option<PathBuf>,
    /// The predictor file's contents; read by [`load`] (not by [`parse`],
    /// which only checks the text).
    pub predictor_source: Option<String>,
    /// `predictor.models` (or `multi_model_reloading` for python). Absent for
    /// a python predictor that loads what it wants itself.
    pub models: Option<ModelsConfig>,
    /// `predictor.processes_per_replica`: predictor processes per worker
    /// (at least 1).
    pub processes_per_replica: u32,
    /// `predictor.threads_per_process`: calls one predictor process runs
    /// at once (at least 1).
    pub threads_per_process: u32,
    /// `predictor.config`, handed to the predictor's constructor.
    pub config: serde_json::Value,
    /// `compute.inf`: Inferentia chips; > 0 changes the TensorFlow layout.
    pub inferentia: u32,
    /// `predictor.env`: variables for a Python predictor's processes.
    pub env: BTreeMap<String, String>,
    /// `predictor.server_side_batching`, kept as written.
    pub server_side_batching: Option<ServerSideBatching>,
    /// Fields that loaded but change nothing here, each naming the field
    /// and what hotswap does instead (logged, and shown in ListModels).
    pub warnings: Vec<String>,
}

/// The longest `batch_interval` a config may set: a lone call waits that
/// long for company, so more is a mistake (`1000h` would hang every quiet
/// call until its client gave up), refused at load.
pub const MAX_BATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Cortex's `server_side_batching`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSideBatching {
    /// The most rows one run takes (at least 1).
    pub max_batch_size: u32,
    /// How long the first call of a batch waits for others, at most
    /// [`MAX_BATCH_INTERVAL`].
    pub batch_interval: std::time::Duration,
}

/// An API's models section (`predictor.models`, or a python predictor's
/// `multi_model_reloading`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelsConfig {
    /// Where the models are: exactly one of `path`, `paths` or `dir`.
    pub sources: ModelSources,
    /// Models held in memory per worker; `None` means all.
    pub cache_size: Option<u32>,
    /// Models held on local disk per worker; `None` means all.
    pub disk_cache_size: Option<u32>,
    /// The SavedModel signature to serve (tensorflow predictors only).
    pub signature_key: Option<String>,
    /// `version_labels` of a `path` or `dir` (every model of the folder).
    pub version_labels: BTreeMap<String, u64>,
    /// `traffic` of a `path` or `dir`: weights per label.
    pub traffic: BTreeMap<String, u32>,
    /// `version_policy` of a `path` or `dir`; with `paths`, of the entries
    /// that set none.
    pub version_policy: VersionPolicy,
}

/// Where an API's models are, as the config names them.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSources {
    /// `path`: one model, named after the API.
    Single(Location),
    /// `paths`: several named models.
    Named(Vec<NamedModel>),
    /// `dir`: every sub-folder is a model named after it.
    Dir(Location),
}

/// One entry of `paths`: a model by name, with its own settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedModel {
    /// The model's name (a folder name in workers' caches).
    pub name: String,
    /// The model's folder.
    pub location: Location,
    /// The SavedModel signature to serve (tensorflow predictors only).
    pub signature_key: Option<String>,
    /// Names for this model's version numbers.
    pub version_labels: BTreeMap<String, u64>,
    /// Weights per label for calls that name no version.
    pub traffic: BTreeMap<String, u32>,
    /// Which of its versions are served; the section's when the entry sets
    /// none.
    pub version_policy: VersionPolicy,
}

/// What a version folder must contain, per predictor type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Any files: the predictor reads what it wants.
    Python,
    /// A SavedModel: `saved_model.pb` and its `variables/`.
    TensorFlow,
    /// TensorFlow compiled for Inferentia: `saved_model.pb` alone.
    Inferentia,
    /// One `.onnx` file.
    Onnx,
}

impl ApiConfig {
    /// What each of this API's version folders must contain.
    pub fn layout(&self) -> Layout {
        match self.predictor_type {
            PredictorType::Python => Layout::Python,
            PredictorType::Tensorflow if self.inferentia > 0 => Layout::Inferentia,
            PredictorType::Tensorflow => Layout::TensorFlow,
            PredictorType::Onnx => Layout::Onnx,
        }
    }

    /// Why live model reloading is off, if it is: Inferentia models are
    /// only reloaded live when one process serves them (Cortex's rule, from
    /// how Neuron cores are shared between processes).
    pub fn reloading_off(&self) -> Option<String> {
        (self.predictor_type == PredictorType::Tensorflow
            && self.inferentia > 0
            && self.processes_per_replica > 1)
            .then(|| {
                format!(
                    "live model reloading is off: Inferentia (compute.inf: {}) with \
                     processes_per_replica {} (reloading needs 1); workers serve the versions \
                     present when they start",
                    self.inferentia, self.processes_per_replica
                )
            })
    }

    /// The API as subscribers receive it.
    pub fn to_proto(&self) -> proto::Api {
        let models = self.models.as_ref();
        proto::Api {
            name: self.name.clone(),
            kind: self.kind.clone(),
            predictor_type: match self.predictor_type {
                PredictorType::Python => proto::PredictorType::Python,
                PredictorType::Tensorflow => proto::PredictorType::Tensorflow,
                PredictorType::Onnx => proto::PredictorType::Onnx,
            } as i32,
            predictor_path: self
                .predictor_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            sources: self
                .sources()
                .into_iter()
                .map(|s| proto::ModelSource {
                    is_dir: s.model.is_none(),
                    name: s.model.unwrap_or_default(),
                    location: s.location.to_string(),
                    signature_key: s.signature_key.unwrap_or_default(),
                    version_labels: s.version_labels.into_iter().collect(),
                    traffic: s.traffic.into_iter().collect(),
                    version_policy: Some(s.version_policy.to_proto()),
                })
                .collect(),
            cache_size: models.and_then(|m| m.cache_size).unwrap_or(0),
            disk_cache_size: models.and_then(|m| m.disk_cache_size).unwrap_or(0),
            processes_per_replica: self.processes_per_replica,
            threads_per_process: self.threads_per_process,
            config_json: self.config.to_string(),
            inferentia: self.inferentia,
            signature_key: models
                .and_then(|m| m.signature_key.clone())
                .unwrap_or_default(),
            predictor_source: self.predictor_source.clone().unwrap_or_default(),
            reloading_off: self.reloading_off().unwrap_or_default(),
            env: self.env.clone().into_iter().collect(),
            config_warnings: self.warnings.clone(),
            server_side_batching: self
                .server_side_batching
                .map(|b| proto::ServerSideBatching {
                    max_batch_size: b.max_batch_size,
                    batch_interval: prost_types::Duration::try_from(b.batch_interval).ok(),
                }),
        }
    }

    /// Every place this API's models come from.
    pub fn sources(&self) -> Vec<SourceConfig> {
        let Some(models) = &self.models else {
            return Vec::new();
        };
        match &models.sources {
            ModelSources::Single(location) => vec![SourceConfig {
                model: Some(self.name.clone()),
                location: location.clone(),
                signature_key: None,
                version_labels: models.version_labels.clone(),
                traffic: models.traffic.clone(),
                version_policy: models.version_policy.clone(),
            }],
            ModelSources::Named(named) => named
                .iter()
                .map(|m| SourceConfig {
                    model: Some(m.name.clone()),
                    location: m.location.clone(),
                    signature_key: m.signature_key.clone(),
                    version_labels: m.version_labels.clone(),
                    traffic: m.traffic.clone(),
                    version_policy: m.version_policy.clone(),
                })
                .collect(),
            ModelSources::Dir(location) => vec![SourceConfig {
                model: None,
                location: location.clone(),
                signature_key: None,
                version_labels: models.version_labels.clone(),
                traffic: models.traffic.clone(),
                version_policy: models.version_policy.clone(),
            }],
        }
    }
}

/// One listing target: a single model's folder, or a folder of models.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    /// The model it holds; `None` for a `dir` (one model per sub-folder).
    pub model: Option<String>,
    /// The folder listed.
    pub location: Location,
    /// The SavedModel signature to serve (tensorflow predictors only).
    pub signature_key: Option<String>,
    /// Names for version numbers of the model(s) it holds.
    pub version_labels: BTreeMap<String, u64>,
    /// Weights per label for calls that name no version.
    pub traffic: BTreeMap<String, u32>,
    /// Which versions are served.
    pub version_policy: VersionPolicy,
}

/// Why a config is refused; the message names the API and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read")]
    Read(#[source] std::io::Error),

    /// YAML that does not fit the config's shape, at `field` (e.g. `api #1:
    /// predictor.modles`) when the parser could say where.
    #[error("{}", .field.as_deref().unwrap_or("syntax"))]
    Syntax {
        /// Where in the YAML, when the parser could say.
        field: Option<String>,
        /// The parser's own error.
        #[source]
        source: serde_yaml::Error,
    },

    /// An empty list.
    #[error("the config lists no APIs")]
    NoApis,

    /// `api` is "api `name`", or "api #n" when the API has no name.
    #[error("{api}: {field}: {reason}")]
    Field {
        /// Which API.
        api: String,
        /// The field's dotted path within the API (`predictor.models`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A python predictor's file could not be read.
    #[error("api `{api}`: predictor.path: cannot read {}", .path.display())]
    PredictorFile {
        /// The API's name.
        api: String,
        /// The file, resolved against the config's folder.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
}

/// Reads and validates an API config file. Relative model paths and
/// predictor paths are resolved against the file's folder.
pub fn load(path: &Path) -> Result<Vec<ApiConfig>, Error> {
    let config_error = |source| Error::Config {
        file: path.display().to_string(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(|e| config_error(ConfigError::Read(e)))?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let base = std::path::absolute(&base).unwrap_or(base);
    let mut apis = parse(&text, &base).map_err(config_error)?;
    // Workers get the predictor file through the model-store, so they need
    // no access to this folder.
    for api in &mut apis {
        if let Some(file) = &api.predictor_path {
            let source = std::fs::read_to_string(file).map_err(|source| {
                config_error(ConfigError::PredictorFile {
                    api: api.name.clone(),
                    path: file.clone(),
                    source,
                })
            })?;
            api.predictor_source = Some(source);
        }
        for warning in &api.warnings {
            tracing::warn!(api = %api.name, "config: {warning}");
        }
    }
    Ok(apis)
}

/// Parses and validates config text; `base` resolves relative paths.
pub fn parse(text: &str, base: &Path) -> Result<Vec<ApiConfig>, ConfigError> {
    let raw = raw::parse(text)?;
    if raw.is_empty() {
        return Err(ConfigError::NoApis);
    }
    let mut apis = Vec::with_capacity(raw.len());
    for (i, api) in raw.into_iter().enumerate() {
        let label = if api.name.is_empty() {
            format!("api #{}", i + 1)
        } else {
            format!("api `{}`", api.name)
        };
        let api = api
            .validate(base)
            .map_err(|(field, reason)| ConfigError::Field {
                api: label.clone(),
                field,
                reason,
            })?;
        if apis.iter().any(|a: &ApiConfig| a.name == api.name) {
            return Err(ConfigError::Field {
                api: label,
                field: "name".to_owned(),
                reason: "another API has this name".to_owned(),
            });
        }
        apis.push(api);
    }
    Ok(apis)
}

#[cfg(test)]
mod tests;
