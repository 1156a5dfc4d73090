//! The Open Inference Protocol (KServe v2) with Triton's ModelConfig,
//! ModelStatistics and RepositoryIndex extensions, transport-free.

use async_trait::async_trait;
use hotswap_common::catalog::{ApiKind, Catalog, ModelRef, VersionKey};
use hotswap_proto::inference::{
    self as pb, DataType as ConfigType, ModelConfig, ModelInput, ModelOutput,
    model_metadata_response::TensorMetadata, repository_index_response::ModelIndex,
};
use hotswap_proto::service::InferenceService;

use crate::Error;
use crate::inference::{Call, Inputs};
use crate::predict::WorkerService;
use crate::signature::TensorSpec;
use crate::tensor::{DataType, wire};

#[async_trait]
impl InferenceService for WorkerService {
    type Error = Error;

    async fn server_live(&self) -> Result<pb::ServerLiveResponse, Error> {
        Ok(pb::ServerLiveResponse { live: true })
    }

    async fn server_ready(&self) -> Result<pb::ServerReadyResponse, Error> {
        Ok(pb::ServerReadyResponse {
            ready: self.worker.ready(),
        })
    }

    async fn model_ready(&self, r: pb::ModelReadyRequest) -> Result<pb::ModelReadyResponse, Error> {
        let m = self.worker.catalog().model_by_name(&r.name)?;
        let ready = self.worker.inference().model_ready(&m, &r.version)?;
        Ok(pb::ModelReadyResponse { ready })
    }

    async fn server_metadata(&self) -> Result<pb::ServerMetadataResponse, Error> {
        Ok(hotswap_proto::service::server_metadata())
    }

    async fn model_metadata(
        &self,
        r: pb::ModelMetadataRequest,
    ) -> Result<pb::ModelMetadataResponse, Error> {
        let m = self.worker.catalog().model_by_name(&r.name)?;
        let loaded = self.worker.inference().instance(&m, &r.version).await?;
        let signature = loaded.model.signature();
        let meta = |s: &TensorSpec| TensorMetadata {
            name: s.name.clone(),
            datatype: s.dtype.name().to_owned(),
            shape: s.shape.clone(),
        };
        Ok(pb::ModelMetadataResponse {
            name: m.protocol_name(),
            versions: self.valid_versions(&m),
            platform: loaded.model.platform().to_owned(),
            inputs: signature.inputs.iter().map(meta).collect(),
            outputs: signature.outputs.iter().map(meta).collect(),
        })
    }

    async fn model_infer(&self, r: pb::ModelInferRequest) -> Result<pb::ModelInferResponse, Error> {
        let m = self.worker.catalog().model_by_name(&r.model_name)?;
        // Inputs are decoded and size-checked before a version is picked: a
        // bad request must not load or evict models.
        if !r.raw_input_contents.is_empty() && r.raw_input_contents.len() != r.inputs.len() {
            return Err(Error::invalid(format!(
                "raw_input_contents has {} entries for {} inputs; send one per input, in order",
                r.raw_input_contents.len(),
                r.inputs.len()
            )));
        }
        let mut inputs = Vec::with_capacity(r.inputs.len());
        for (i, input) in r.inputs.into_iter().enumerate() {
            let raw = r.raw_input_contents.get(i).map(|b| b.as_ref());
            let size = raw.map_or_else(
                || {
                    input
                        .contents
                        .as_ref()
                        .map_or(0, prost::Message::encoded_len)
                },
                <[u8]>::len,
            );
            self.check_size(&crate::tensor::input(&input.name), size)?;
            inputs.push(wire::from_infer_input(input, raw)?);
        }
        let answer = self
            .worker
            .inference()
            .infer(Call {
                model: m,
                version: r.model_version,
                traffic: true,
                inputs: Inputs::Tensors(inputs),
                outputs: r.outputs.into_iter().map(|o| o.name).collect(),
            })
            .await?;
        let outputs = answer.outputs;
        let (outputs, raw): (Vec<_>, Vec<_>) = outputs
            .iter()
            .map(wire::to_infer_output)
            .map(|(tensor, raw)| (tensor, bytes::Bytes::from(raw)))
            .unzip();
        Ok(pb::ModelInferResponse {
            model_name: r.model_name,
            model_version: answer.key.version.to_string(),
            id: r.id,
            parameters: Default::default(),
            outputs,
            raw_output_contents: raw,
        })
    }

    async fn model_config(
        &self,
        r: pb::ModelConfigRequest,
    ) -> Result<pb::ModelConfigResponse, Error> {
        let m = self.worker.catalog().model_by_name(&r.name)?;
        let loaded = self.worker.inference().instance(&m, &r.version).await?;
        let signature = loaded.model.signature();
        let platform = loaded.model.platform();
        // Batched, Triton's way: max_batch_size set, and the dims below
        // leave out the batch dimension.
        let batching = self
            .worker
            .inference()
            .batcher(&loaded)
            .map(|b| b.settings());
        let dims = |shape: &[i64]| match batching {
            Some(_) => shape[1..].to_vec(),
            None => shape.to_vec(),
        };
        Ok(pb::ModelConfigResponse {
            config: Some(ModelConfig {
                name: m.protocol_name(),
                platform: platform.to_owned(),
                backend: platform.split('_').next().unwrap_or(platform).to_owned(),
                // Without batching, shapes include any batch dimension the
                // model has.
                max_batch_size: batching.map_or(0, |b| b.max_rows as i32),
                scheduling_choice: batching.map(|b| {
                    pb::model_config::SchedulingChoice::DynamicBatching(pb::ModelDynamicBatching {
                        max_queue_delay_microseconds: b.interval.as_micros() as u64,
                        ..Default::default()
                    })
                }),
                version_policy: Some(version_policy(self.worker.catalog().version_policy(&m))),
                input: signature
                    .inputs
                    .iter()
                    .map(|s| ModelInput {
                        name: s.name.clone(),
                        data_type: config_type(s.dtype) as i32,
                        dims: dims(&s.shape),
                        ..Default::default()
                    })
                    .collect(),
                output: signature
                    .outputs
                    .iter()
                    .map(|s| ModelOutput {
                        name: s.name.clone(),
                        data_type: config_type(s.dtype) as i32,
                        dims: dims(&s.shape),
                        ..Default::default()
                    })
                    .collect(),
                instance_group: vec![pb::ModelInstanceGroup {
                    name: m.protocol_name(),
                    kind: pb::model_instance_group::Kind::Cpu as i32,
                    count: 1,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        })
    }

    async fn model_statistics(
        &self,
        r: pb::ModelStatisticsRequest,
    ) -> Result<pb::ModelStatisticsResponse, Error> {
        let only = if r.name.is_empty() {
            None
        } else {
            Some(self.worker.catalog().model_by_name(&r.name)?)
        };
        let catalog = self.worker.catalog();
        // A number, or with a model named, a label of its versions.
        let version: Option<u64> = match (r.version.trim(), &only) {
            ("", _) => None,
            (v, Some(m)) if v.parse::<u64>().is_err() => Some(catalog.numbered(m, v)?.version),
            (v, _) => Some(v.parse().map_err(|_| {
                Error::NotFound(format!(
                    "version {:?} not found; versions are numbers (or, with a model named, \
                     labels)",
                    hotswap_proto::error::shown(v)
                ))
            })?),
        };
        // Every version the catalog has that is loaded or has served, so a
        // client sees an entry before its first request; removed versions
        // drop out.
        let model_stats = catalog
            .versions
            .iter()
            .filter(|(k, _)| {
                only.as_ref()
                    .is_none_or(|m| k.api == m.api && k.model == m.model)
                    && version.is_none_or(|v| k.version == v)
            })
            .filter_map(|(k, _)| {
                let stats = self.worker.inference().stats().get(k);
                if stats.is_none() && !self.published(k) {
                    return None;
                }
                Some(stats.unwrap_or_default().to_proto(k, &name_of(k)))
            })
            .collect();
        Ok(pb::ModelStatisticsResponse { model_stats })
    }

    async fn repository_index(
        &self,
        r: pb::RepositoryIndexRequest,
    ) -> Result<pb::RepositoryIndexResponse, Error> {
        let catalog = self.worker.catalog();
        let now = tokio::time::Instant::now();
        let models = catalog
            .versions
            .iter()
            .map(|(key, v)| {
                let (state, reason) = if Catalog::excluded(v) {
                    // Calls naming it are NOT_FOUND, even while it is held
                    // until a version within the policy loads.
                    ("UNAVAILABLE", v.reason.clone())
                } else if !Catalog::valid(v) {
                    if self.published(key) {
                        ("READY", format!("update invalid: {}", v.reason))
                    } else {
                        ("UNAVAILABLE", format!("invalid: {}", v.reason))
                    }
                } else {
                    match self.worker.version_status(key) {
                        None => ("UNAVAILABLE", "unloaded".to_owned()),
                        Some(s) => {
                            let failure = s
                                .failure
                                .as_ref()
                                .filter(|f| f.content_hash == v.content_hash);
                            match (s.published, failure) {
                                // Serving, but its newest content failed to load.
                                (true, Some(f)) => {
                                    ("READY", format!("update failed: {}", f.message))
                                }
                                (true, None) if s.loading => ("READY", "update loading".to_owned()),
                                (true, None) => ("READY", String::new()),
                                (false, Some(f)) => (
                                    "UNAVAILABLE",
                                    format!(
                                        "load failed: {} (retry in {}s)",
                                        f.message,
                                        f.retry_at.saturating_duration_since(now).as_secs()
                                    ),
                                ),
                                (false, None) if s.loading => ("LOADING", String::new()),
                                (false, None) => ("UNAVAILABLE", "unloaded".to_owned()),
                            }
                        }
                    }
                };
                // Say why a pinned API does not follow the bucket.
                let reason = match catalog.apis.get(&key.api) {
                    Some(api) if reason.is_empty() && !api.reloading_off.is_empty() => {
                        api.reloading_off.clone()
                    }
                    _ => reason,
                };
                ModelIndex {
                    name: name_of(key),
                    version: key.version.to_string(),
                    state: state.to_owned(),
                    reason,
                }
            })
            .chain(self.python_index(&catalog))
            .filter(|m| !r.ready || m.state == "READY")
            .collect();
        Ok(pb::RepositoryIndexResponse { models })
    }
}

impl WorkerService {
    /// Whether a version has a published instance here.
    fn published(&self, key: &VersionKey) -> bool {
        self.worker.version_status(key).is_some_and(|s| s.published)
    }

    /// APIs served by a predictor class, one entry each (no version): their
    /// predictor's state.
    fn python_index(&self, catalog: &Catalog) -> Vec<ModelIndex> {
        catalog
            .apis_of(ApiKind::Predictor)
            .map(|a| {
                let (state, reason) = match self.worker.python_state(&a.name) {
                    Some(crate::python_apis::PythonState::Ready(_)) => ("READY", String::new()),
                    Some(crate::python_apis::PythonState::Starting) => ("LOADING", String::new()),
                    Some(crate::python_apis::PythonState::Failed(traceback)) => {
                        ("UNAVAILABLE", traceback)
                    }
                    None => ("UNAVAILABLE", "not started".to_owned()),
                };
                ModelIndex {
                    name: a.name.clone(),
                    version: String::new(),
                    state: state.to_owned(),
                    reason,
                }
            })
            .collect()
    }

    fn valid_versions(&self, m: &ModelRef) -> Vec<String> {
        self.worker
            .catalog()
            .versions(&m.api, &m.model)
            .iter()
            .filter(|v| Catalog::valid(v))
            .map(|v| v.version.to_string())
            .collect()
    }
}

/// The model's version policy in Triton's terms.
fn version_policy(policy: Option<&hotswap_proto::v1::VersionPolicy>) -> pb::ModelVersionPolicy {
    use hotswap_proto::v1::version_policy::Policy;
    use pb::model_version_policy::{All, Latest, PolicyChoice, Specific};
    let choice = match policy.and_then(|p| p.policy.as_ref()) {
        None => PolicyChoice::All(All {}),
        Some(Policy::Latest(n)) => PolicyChoice::Latest(Latest { num_versions: *n }),
        Some(Policy::Specific(s)) => PolicyChoice::Specific(Specific {
            versions: s.versions.iter().map(|v| *v as i64).collect(),
        }),
    };
    pb::ModelVersionPolicy {
        policy_choice: Some(choice),
    }
}

fn name_of(key: &VersionKey) -> String {
    ModelRef {
        api: key.api.clone(),
        model: key.model.clone(),
    }
    .protocol_name()
}

fn config_type(d: DataType) -> ConfigType {
    match d {
        DataType::Bool => ConfigType::TypeBool,
        DataType::U8 => ConfigType::TypeUint8,
        DataType::U16 => ConfigType::TypeUint16,
        DataType::U32 => ConfigType::TypeUint32,
        DataType::U64 => ConfigType::TypeUint64,
        DataType::I8 => ConfigType::TypeInt8,
        DataType::I16 => ConfigType::TypeInt16,
        DataType::I32 => ConfigType::TypeInt32,
        DataType::I64 => ConfigType::TypeInt64,
        DataType::F16 => ConfigType::TypeFp16,
        DataType::BF16 => ConfigType::TypeBf16,
        DataType::F32 => ConfigType::TypeFp32,
        DataType::F64 => ConfigType::TypeFp64,
        DataType::Bytes => ConfigType::TypeString,
    }
}
