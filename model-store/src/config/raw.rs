//! The config exactly as written (serde, unknown fields rejected), and its
//! validation into [`ApiConfig`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use hotswap_storage::Location;

use super::{
    ApiConfig, ConfigError, ModelSources, ModelsConfig, NamedModel, ServerSideBatching,
    VersionPolicy,
};

/// A validation failure: the field (dotted path) and what is wrong with it.
pub(super) type Invalid = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PredictorType {
    Python,
    Tensorflow,
    Onnx,
}

impl PredictorType {
    pub fn as_str(self) -> &'static str {
        match self {
            PredictorType::Python => "python",
            PredictorType::Tensorflow => "tensorflow",
            PredictorType::Onnx => "onnx",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    #[serde(default)]
    pub name: String,
    kind: Option<String>,
    predictor: RawPredictor,
    #[serde(default)]
    compute: RawCompute,
    // Cortex sections that load (each with a warning) but change nothing
    // here; their fields are still checked, so a typo stays an error.
    autoscaling: Option<RawAutoscaling>,
    update_strategy: Option<RawUpdateStrategy>,
    networking: Option<RawNetworking>,
}

/// Cortex's autoscaling section: replicas are the operator's business here
/// (compose `--scale`, Kubernetes), not an API's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "accepted as written, never read")]
struct RawAutoscaling {
    min_replicas: Option<serde_yaml::Value>,
    max_replicas: Option<serde_yaml::Value>,
    init_replicas: Option<serde_yaml::Value>,
    max_replica_concurrency: Option<serde_yaml::Value>,
    target_replica_concurrency: Option<serde_yaml::Value>,
    window: Option<serde_yaml::Value>,
    downscale_stabilization_period: Option<serde_yaml::Value>,
    upscale_stabilization_period: Option<serde_yaml::Value>,
    max_downscale_factor: Option<serde_yaml::Value>,
    max_upscale_factor: Option<serde_yaml::Value>,
    downscale_tolerance: Option<serde_yaml::Value>,
    upscale_tolerance: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "accepted as written, never read")]
struct RawUpdateStrategy {
    max_surge: Option<serde_yaml::Value>,
    max_unavailable: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "accepted as written, never read")]
struct RawNetworking {
    endpoint: Option<String>,
    api_gateway: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "accepted as written, never read")]
struct RawDependencies {
    pip: Option<String>,
    conda: Option<String>,
    shell: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatching {
    max_batch_size: u32,
    batch_interval: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPredictor {
    #[serde(rename = "type")]
    predictor_type: PredictorType,
    path: Option<String>,
    models: Option<RawModels>,
    multi_model_reloading: Option<RawModels>,
    processes_per_replica: Option<u32>,
    threads_per_process: Option<u32>,
    config: Option<serde_json::Value>,
    /// Variables for the predictor's processes.
    env: Option<BTreeMap<String, String>>,
    server_side_batching: Option<RawBatching>,
    // Cortex fields that load (each with a warning) but change nothing here.
    python_path: Option<String>,
    log_level: Option<String>,
    image: Option<String>,
    tensorflow_serving_image: Option<String>,
    shm_size: Option<serde_yaml::Value>,
    dependencies: Option<RawDependencies>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModels {
    path: Option<String>,
    paths: Option<Vec<RawNamedPath>>,
    dir: Option<String>,
    cache_size: Option<u32>,
    disk_cache_size: Option<u32>,
    signature_key: Option<String>,
    version_labels: Option<BTreeMap<String, u64>>,
    traffic: Option<BTreeMap<String, u32>>,
    version_policy: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamedPath {
    name: String,
    path: String,
    signature_key: Option<String>,
    version_labels: Option<BTreeMap<String, u64>>,
    traffic: Option<BTreeMap<String, u32>>,
    version_policy: Option<serde_yaml::Value>,
}

/// Cortex's compute section. Only `inf` changes what hotswap does; cpu and
/// mem are resource requests for whoever schedules the workers, and gpu
/// cannot be met (hotswap serves on CPU).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompute {
    cpu: Option<serde_yaml::Value>,
    gpu: Option<u32>,
    inf: Option<u32>,
    mem: Option<serde_yaml::Value>,
}

/// Parses the YAML list; errors name the field path, e.g.
/// `[0].predictor.modles: unknown field ...`.
pub(super) fn parse(text: &str) -> Result<Vec<RawApi>, ConfigError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = (!path.is_empty() && path != ".").then(|| {
            path.strip_prefix('[')
                .and_then(|p| p.split_once(']'))
                .map(|(i, rest)| {
                    let n: usize = i.parse().unwrap_or(0);
                    format!("api #{}: {}", n + 1, rest.trim_start_matches('.'))
                })
                .unwrap_or_else(|| path.clone())
        });
        ConfigError::Syntax {
            field,
            source: e.into_inner(),
        }
    })
}

pub(super) fn invalid(field: &str, message: impl Into<String>) -> Invalid {
    (field.to_owned(), message.into())
}

/// Kubernetes-style names, as Cortex required of API names: they end up in
/// URLs, metric labels and folder names.
fn check_api_name(name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "name",
            format!(
                "{name:?} is not a valid API name (lowercase letters, digits and '-', 1-63 characters)"
            ),
        ))
    }
}

/// Model names become folder names in workers' caches and request fields.
fn check_model_name(field: &str, name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{name:?} is not a valid model name"),
        ))
    }
}

fn check_positive(field: &str, value: Option<u32>) -> Result<(), Invalid> {
    match value {
        Some(0) => Err(invalid(field, "must be at least 1")),
        _ => Ok(()),
    }
}

impl RawApi {
    pub(super) fn validate(self, base: &Path) -> Result<ApiConfig, Invalid> {
        check_api_name(&self.name)?;
        let warnings = self.warnings();
        let kind = self.kind.unwrap_or_else(|| "RealtimeAPI".to_owned());
        if kind != "RealtimeAPI" {
            return Err(invalid(
                "kind",
                format!("{kind:?} is not supported; hotswap serves RealtimeAPI"),
            ));
        }
        let p = self.predictor;
        let ty = p.predictor_type;
        let inferentia = self.compute.inf.unwrap_or(0);
        if inferentia > 0 && ty == PredictorType::Onnx {
            return Err(invalid(
                "compute.inf",
                "Inferentia serves tensorflow and python predictors, not onnx",
            ));
        }

        // Python predictors call the models section multi_model_reloading;
        // the other types call it models. Accepting the wrong one silently
        // would disable live reloading, so name the right one.
        let (models, models_field) = match ty {
            PredictorType::Python => {
                if p.models.is_some() {
                    return Err(invalid(
                        "predictor.models",
                        "python predictors name their models in predictor.multi_model_reloading",
                    ));
                }
                (p.multi_model_reloading, "predictor.multi_model_reloading")
            }
            _ => {
                if p.multi_model_reloading.is_some() {
                    return Err(invalid(
                        "predictor.multi_model_reloading",
                        format!(
                            "only python predictors use this field; {} predictors use predictor.models",
                            ty.as_str()
                        ),
                    ));
                }
                (p.models, "predictor.models")
            }
        };
        if ty == PredictorType::Python && p.path.is_none() {
            return Err(invalid(
                "predictor.path",
                "python predictors need the file with their PythonPredictor class",
            ));
        }
        if ty != PredictorType::Python && models.is_none() {
            return Err(invalid(
                "predictor.models",
                format!(
                    "{} predictors need a model: set path, paths or dir",
                    ty.as_str()
                ),
            ));
        }
        let models = models
            .map(|m| m.validate(models_field, ty, base))
            .transpose()?;

        check_positive("predictor.processes_per_replica", p.processes_per_replica)?;
        check_positive("predictor.threads_per_process", p.threads_per_process)?;
        let predictor_path = match p.path {
            Some(path) if path.trim().is_empty() => {
                return Err(invalid("predictor.path", "must not be empty"));
            }
            Some(path) => Some(base.join(path)),
            None => None,
        };
        let config = p
            .config
            .unwrap_or(serde_json::Value::Object(Default::default()));
        if !config.is_object() {
            return Err(invalid("predictor.config", "must be a mapping"));
        }
        let server_side_batching = p
            .server_side_batching
            .map(|b| {
                let field = "predictor.server_side_batching";
                check_positive(&format!("{field}.max_batch_size"), Some(b.max_batch_size))?;
                let batch_interval = go_duration(&b.batch_interval)
                    .map_err(|e| invalid(&format!("{field}.batch_interval"), e))?;
                Ok::<_, Invalid>(ServerSideBatching {
                    max_batch_size: b.max_batch_size,
                    batch_interval,
                })
            })
            .transpose()?;
        Ok(ApiConfig {
            name: self.name,
            kind,
            predictor_type: ty,
            predictor_path,
            predictor_source: None,
            models,
            processes_per_replica: p.processes_per_replica.unwrap_or(1),
            threads_per_process: p.threads_per_process.unwrap_or(1),
            config,
            inferentia,
            env: p.env.unwrap_or_default(),
            server_side_batching,
            warnings,
        })
    }

    /// One line per Cortex field present that changes nothing here: the
    /// field, and what hotswap does instead.
    fn warnings(&self) -> Vec<String> {
        let p = &self.predictor;
        let scaled = "replicas are the operator's (compose --scale, Kubernetes), not an API's";
        let runs_in_worker = "predictors run in the worker's image and Python environment \
                              (docs/configuration.md: adding packages)";
        let compute = &self.compute;
        [
            (self.autoscaling.is_some(), "autoscaling", scaled.to_owned()),
            (
                self.update_strategy.is_some(),
                "update_strategy",
                "workers swap each new model version in live; there is no rolling update".to_owned(),
            ),
            (
                self.networking.as_ref().is_some_and(|n| n.endpoint.is_some()),
                "networking.endpoint",
                format!("the API is called by its name (POST /{}, gRPC api field)", self.name),
            ),
            (
                self.networking.as_ref().is_some_and(|n| n.api_gateway.is_some()),
                "networking.api_gateway",
                "the control plane is the front door".to_owned(),
            ),
            (p.image.is_some(), "predictor.image", runs_in_worker.to_owned()),
            (
                p.tensorflow_serving_image.is_some(),
                "predictor.tensorflow_serving_image",
                "SavedModels run in the worker through TensorFlow's C library".to_owned(),
            ),
            (p.dependencies.is_some(), "predictor.dependencies", runs_in_worker.to_owned()),
            (
                p.python_path.is_some(),
                "predictor.python_path",
                "the predictor file is loaded on its own; import packages from the worker's \
                 Python environment"
                    .to_owned(),
            ),
            (
                p.log_level.is_some(),
                "predictor.log_level",
                "the worker's log level applies (RUST_LOG)".to_owned(),
            ),
            (
                p.shm_size.is_some(),
                "predictor.shm_size",
                "predictor processes use the worker's /dev/shm".to_owned(),
            ),
            (
                p.server_side_batching.is_some() && p.predictor_type == PredictorType::Python,
                "predictor.server_side_batching",
                "a python predictor's calls are not batched: each runs as it arrives (onnx and \
                 tensorflow APIs batch them)"
                    .to_owned(),
            ),
            (
                compute.cpu.is_some() || compute.mem.is_some(),
                "compute.cpu/mem",
                "resource requests for whoever schedules the workers; hotswap does not enforce them"
                    .to_owned(),
            ),
            (
                compute.gpu.is_some_and(|g| g > 0),
                "compute.gpu",
                format!(
                    "{} requested, but hotswap serves on CPU only: this API runs on CPU",
                    compute.gpu.unwrap_or(0)
                ),
            ),
        ]
        .into_iter()
        .filter(|(present, _, _)| *present)
        .map(|(_, field, what)| format!("{field}: {what}"))
        .collect()
    }
}

/// A Go duration as Cortex wrote them ("100ms", "0.5s", "1m30s").
fn go_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?} is not a duration (such as 100ms, 0.5s or 1m30s)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|_| bad())
}

impl RawModels {
    fn validate(
        self,
        field: &str,
        ty: PredictorType,
        base: &Path,
    ) -> Result<ModelsConfig, Invalid> {
        let f = |name: &str| format!("{field}.{name}");
        for (name, set) in [
            ("version_labels", self.version_labels.is_some()),
            ("traffic", self.traffic.is_some()),
        ] {
            if self.paths.is_some() && set {
                return Err(invalid(
                    &f(name),
                    format!(
                        "with paths, set {name} on each paths entry (labels name one model's versions)"
                    ),
                ));
            }
        }
        let labels = version_labels(&f("version_labels"), self.version_labels)?;
        let split = traffic(&f("traffic"), self.traffic, &labels)?;
        // With `paths`, the default for entries that set none.
        let policy = VersionPolicy::parse(&f("version_policy"), self.version_policy)?;
        policy.check_labels(&f("version_labels"), &labels)?;
        let sources = match (self.path, self.paths, self.dir) {
            (Some(path), None, None) => ModelSources::Single(location(&f("path"), &path, base)?),
            (None, Some(paths), None) => {
                if paths.is_empty() {
                    return Err(invalid(&f("paths"), "lists no models"));
                }
                let mut named: Vec<NamedModel> = Vec::with_capacity(paths.len());
                for (i, entry) in paths.into_iter().enumerate() {
                    let at = f(&format!("paths[{i}]"));
                    check_model_name(&format!("{at}.name"), &entry.name)?;
                    if named.iter().any(|m| m.name == entry.name) {
                        return Err(invalid(
                            &format!("{at}.name"),
                            format!("model {:?} is listed twice", entry.name),
                        ));
                    }
                    if entry.signature_key.is_some() && ty != PredictorType::Tensorflow {
                        return Err(invalid(
                            &format!("{at}.signature_key"),
                            "only tensorflow predictors have signatures",
                        ));
                    }
                    named.push(NamedModel {
                        name: entry.name,
                        location: location(&format!("{at}.path"), &entry.path, base)?,
                        signature_key: entry.signature_key,
                        version_labels: version_labels(
                            &format!("{at}.version_labels"),
                            entry.version_labels,
                        )?,
                        traffic: BTreeMap::new(),
                        version_policy: match entry.version_policy {
                            Some(p) => {
                                VersionPolicy::parse(&format!("{at}.version_policy"), Some(p))?
                            }
                            None => policy.clone(),
                        },
                    });
                    let model = named.last_mut().expect("just pushed");
                    model.traffic = traffic(
                        &format!("{at}.traffic"),
                        entry.traffic,
                        &model.version_labels,
                    )?;
                    model
                        .version_policy
                        .check_labels(&format!("{at}.version_labels"), &model.version_labels)?;
                }
                ModelSources::Named(named)
            }
            (None, None, Some(dir)) => ModelSources::Dir(location(&f("dir"), &dir, base)?),
            (None, None, None) => {
                return Err(invalid(field, "set one of path, paths or dir"));
            }
            (path, paths, dir) => {
                let set: Vec<&str> = [
                    path.is_some().then_some("path"),
                    paths.is_some().then_some("paths"),
                    dir.is_some().then_some("dir"),
                ]
                .into_iter()
                .flatten()
                .collect();
                return Err(invalid(
                    field,
                    format!(
                        "set only one of path, paths or dir (found {})",
                        set.join(" and ")
                    ),
                ));
            }
        };
        check_positive(&f("cache_size"), self.cache_size)?;
        check_positive(&f("disk_cache_size"), self.disk_cache_size)?;
        if let (Some(mem), Some(disk)) = (self.cache_size, self.disk_cache_size)
            && mem > disk
        {
            return Err(invalid(
                &f("cache_size"),
                format!(
                    "must not exceed disk_cache_size ({mem} > {disk}): a model in memory is also on disk"
                ),
            ));
        }
        if self.signature_key.is_some() && ty != PredictorType::Tensorflow {
            return Err(invalid(
                &f("signature_key"),
                "only tensorflow predictors have signatures",
            ));
        }
        Ok(ModelsConfig {
            sources,
            cache_size: self.cache_size,
            disk_cache_size: self.disk_cache_size,
            signature_key: self.signature_key,
            version_labels: labels,
            traffic: split,
            version_policy: policy,
        })
    }
}

/// `traffic`: weights per label for calls that name no version. Every key
/// is a label of `version_labels`, and some weight is above 0.
fn traffic(
    field: &str,
    traffic: Option<BTreeMap<String, u32>>,
    labels: &BTreeMap<String, u64>,
) -> Result<BTreeMap<String, u32>, Invalid> {
    let traffic = traffic.unwrap_or_default();
    if let Some(unknown) = traffic.keys().find(|l| !labels.contains_key(*l)) {
        let known: Vec<&String> = labels.keys().collect();
        return Err(invalid(
            &format!("{field}.{unknown}"),
            format!(
                "not a label of version_labels (labels: {})",
                hotswap_common::list(&known)
            ),
        ));
    }
    if !traffic.is_empty() && traffic.values().all(|w| *w == 0) {
        return Err(invalid(field, "every weight is 0"));
    }
    Ok(traffic)
}

/// `version_labels`: names for version numbers. A label must not read as a
/// version itself (a number, or `latest`), so that what a call names is
/// never ambiguous; it need not name a version the bucket has (calls
/// naming it are refused until it does).
fn version_labels(
    field: &str,
    labels: Option<BTreeMap<String, u64>>,
) -> Result<BTreeMap<String, u64>, Invalid> {
    let labels = labels.unwrap_or_default();
    for (label, version) in &labels {
        let at = format!("{field}.{label}");
        let word = label
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !word || label.len() > 63 {
            return Err(invalid(
                &at,
                "a label starts with a letter and holds letters, digits, '-' and '_' (at most 63)",
            ));
        }
        if label == "latest" {
            return Err(invalid(&at, "`latest` already means the highest version"));
        }
        if *version == 0 {
            return Err(invalid(&at, "versions are numbered from 1"));
        }
    }
    Ok(labels)
}

fn location(field: &str, text: &str, base: &Path) -> Result<Location, Invalid> {
    Location::parse(text, base).map_err(|e| invalid(field, e.to_string()))
}
