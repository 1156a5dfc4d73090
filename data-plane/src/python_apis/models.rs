//! `get_model` and the model clients of predictor classes, for one API:
//! names and versions resolved against the catalog, files fetched into the
//! worker's disk cache (python_client), or inference run by the worker's
//! one entry point (onnx_client, tensorflow_client).

use std::sync::{Arc, Mutex, Weak};

use hotswap_common::catalog::{Catalog, ModelRef, VersionKey, is_latest};
use hotswap_common::lock;
use hotswap_proto::error::{Code, ServiceError, report};
use hotswap_proto::v1::Api;
use hotswap_python::ModelResolver;
use hotswap_python::protocol::{ModelAnswer, RunAnswer, TensorInfo};

use crate::Error;
use crate::inference::{Call, Inference, Inputs};
use crate::models::{Loaded, Models};

/// `get_model` for one API: names and versions resolved against the
/// catalog, files fetched into the worker's disk cache.
pub(super) struct ApiModels {
    models: Weak<Models>,
    inference: Weak<Inference>,
    api: String,
    /// disk_cache_size: versions kept in the disk cache (0: no limit).
    disk_limit: usize,
    /// Cached folders, least recently asked for first.
    on_disk: Mutex<Vec<(VersionKey, std::path::PathBuf)>>,
}

impl ApiModels {
    pub(super) fn new(models: Weak<Models>, inference: Weak<Inference>, api: &Api) -> ApiModels {
        ApiModels {
            models,
            inference,
            api: api.name.clone(),
            disk_limit: api.disk_cache_size as usize,
            on_disk: Mutex::default(),
        }
    }

    /// Records a fetched folder as the most recently used and returns the
    /// folders beyond the limit, to delete. A process loads from a folder
    /// right after it is handed out, so the least recently used ones are
    /// never being read.
    fn touch(&self, key: VersionKey, dir: std::path::PathBuf) -> Vec<std::path::PathBuf> {
        let mut on_disk = lock(&self.on_disk);
        on_disk.retain(|(k, d)| *k != key && *d != dir);
        on_disk.push((key, dir));
        let excess = if self.disk_limit == 0 {
            0
        } else {
            on_disk.len().saturating_sub(self.disk_limit)
        };
        on_disk.drain(..excess).map(|(_, d)| d).collect()
    }
}

#[async_trait::async_trait]
impl ModelResolver for ApiModels {
    async fn resolve(
        &self,
        model: Option<String>,
        version: String,
        below: Option<u64>,
    ) -> ModelAnswer {
        let Some(models) = self.models.upgrade() else {
            return ModelAnswer::Missing {
                message: "the worker is stopping".to_owned(),
                lookup: false,
            };
        };
        let lookup = |message: String| ModelAnswer::Missing {
            message,
            lookup: true,
        };
        let catalog = models.catalog();
        let m = match catalog.model_ref(&self.api, model.as_deref().unwrap_or("")) {
            Ok(m) => m,
            Err(e) => return lookup(e.to_string()),
        };
        let target = if is_latest(&version) {
            match catalog
                .versions(&m.api, &m.model)
                .into_iter()
                .rev()
                // After a failed load, a version outside the policy is
                // better than none: the model keeps a version.
                .find(|v| match below {
                    None => Catalog::valid(v),
                    Some(b) => (Catalog::valid(v) || Catalog::excluded(v)) && v.version < b,
                }) {
                Some(v) => v.clone(),
                None if below.is_some() => {
                    return lookup(format!(
                        "model `{}` has no valid version that loads",
                        m.model
                    ));
                }
                None => return lookup(format!("model `{}` has no valid version", m.model)),
            }
        } else {
            match catalog.numbered(&m, &version) {
                Ok(v) if Catalog::valid(v) => v.clone(),
                Ok(v) => {
                    return lookup(format!(
                        "version {} of `{}` is invalid: {}",
                        v.version, m.model, v.reason
                    ));
                }
                Err(e) => return lookup(e.to_string()),
            }
        };
        match models.fetch(&target).await {
            Ok(dir) => {
                for old in self.touch(VersionKey::of(&target), dir.clone()) {
                    models.remove_folder(&old).await;
                }
                ModelAnswer::Found {
                    model: m.model,
                    version: target.version,
                    content_hash: target.content_hash,
                    path: dir.display().to_string(),
                }
            }
            Err(e) => ModelAnswer::Missing {
                message: report(&e),
                lookup: false,
            },
        }
    }

    async fn run_model(
        &self,
        model: Option<String>,
        version: String,
        input: serde_json::Value,
    ) -> RunAnswer {
        let Some(inference) = self.inference.upgrade() else {
            return run_failed(Error::ShuttingDown);
        };
        let m = match self.model_ref(&inference, model) {
            Ok(m) => m,
            Err(answer) => return answer,
        };
        let call = Call {
            model: m,
            version,
            traffic: false,
            inputs: Inputs::Value(input),
            outputs: Vec::new(),
        };
        let outputs = match inference.infer(call).await {
            Ok(answer) => answer.outputs,
            Err(e) => return run_failed(e),
        };
        let converted = outputs
            .iter()
            .map(|t| {
                Ok((
                    TensorInfo {
                        name: t.name.clone(),
                        dtype: numpy_type(t.dtype()).to_owned(),
                        shape: t.shape.clone(),
                    },
                    crate::tensor::json::to_json(t)?,
                ))
            })
            .collect::<Result<Vec<_>, Error>>();
        match converted {
            Ok(outputs) => RunAnswer::Outputs { outputs },
            Err(e) => run_failed(e),
        }
    }

    async fn model_signature(&self, model: Option<String>, version: String) -> RunAnswer {
        match self.loaded(model, &version).await {
            Ok(loaded) => {
                let info = |specs: &[crate::signature::TensorSpec]| {
                    specs
                        .iter()
                        .map(|s| TensorInfo {
                            name: s.name.clone(),
                            dtype: numpy_type(s.dtype).to_owned(),
                            shape: s.shape.clone(),
                        })
                        .collect()
                };
                let signature = loaded.model.signature();
                RunAnswer::Signature {
                    inputs: info(&signature.inputs),
                    outputs: info(&signature.outputs),
                }
            }
            Err(answer) => answer,
        }
    }
}

impl ApiModels {
    /// A model of this API by the name a predictor gave (None: the only one).
    fn model_ref(
        &self,
        inference: &Inference,
        model: Option<String>,
    ) -> Result<ModelRef, RunAnswer> {
        inference
            .catalog()
            .model_ref(&self.api, model.as_deref().unwrap_or(""))
            .map_err(|e| run_failed(e.into()))
    }

    /// The loaded model (ONNX or TensorFlow) a call names (the worker's own
    /// resolution and loading, as for Predict).
    async fn loaded(&self, model: Option<String>, version: &str) -> Result<Arc<Loaded>, RunAnswer> {
        let inference = self
            .inference
            .upgrade()
            .ok_or_else(|| run_failed(Error::ShuttingDown))?;
        let m = self.model_ref(&inference, model)?;
        inference.instance(&m, version).await.map_err(run_failed)
    }
}

fn run_failed(e: Error) -> RunAnswer {
    RunAnswer::Failed {
        lookup: e.code() == Code::NotFound,
        invalid: e.code() == Code::InvalidArgument,
        message: e.public_message(),
    }
}

/// numpy's name for an element type.
fn numpy_type(d: crate::tensor::DataType) -> &'static str {
    use crate::tensor::DataType as D;
    match d {
        D::Bool => "bool",
        D::U8 => "uint8",
        D::U16 => "uint16",
        D::U32 => "uint32",
        D::U64 => "uint64",
        D::I8 => "int8",
        D::I16 => "int16",
        D::I32 => "int32",
        D::I64 => "int64",
        D::F16 => "float16",
        D::BF16 => "float32",
        D::F32 => "float32",
        D::F64 => "float64",
        D::Bytes => "object",
    }
}
