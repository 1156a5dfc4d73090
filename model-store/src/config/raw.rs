//! The config exactly as written: serde types with Cortex's field names,
//! unknown fields rejected, and the parse that names the field at fault.
//! Their validation into [`ApiConfig`](super::ApiConfig) is in the modules
//! below.

mod models;
mod validation;
mod warnings;

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigError;

pub(super) use validation::{Invalid, invalid};

/// `predictor.type`: what runs the API's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PredictorType {
    /// The user's `PythonPredictor` class in Python processes.
    Python,
    /// TensorFlow SavedModels.
    Tensorflow,
    /// ONNX models through ONNX Runtime.
    Onnx,
}

impl PredictorType {
    /// The name as the config writes it.
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
