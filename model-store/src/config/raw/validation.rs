//! Validation of one API as written into an [`ApiConfig`]: names, the
//! predictor section, and what each predictor type requires.

use std::path::Path;

use super::super::duration::go_duration;
use super::super::{ApiConfig, MAX_BATCH_INTERVAL, ServerSideBatching};
use super::{PredictorType, RawApi};

/// A validation failure: the field (dotted path) and what is wrong with it.
pub(in crate::config) type Invalid = (String, String);

pub(in crate::config) fn invalid(field: &str, message: impl Into<String>) -> Invalid {
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
pub(super) fn check_model_name(field: &str, name: &str) -> Result<(), Invalid> {
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

pub(super) fn check_positive(field: &str, value: Option<u32>) -> Result<(), Invalid> {
    match value {
        Some(0) => Err(invalid(field, "must be at least 1")),
        _ => Ok(()),
    }
}

impl RawApi {
    /// Checks the API as written and builds its [`ApiConfig`]; the error
    /// names the field at fault.
    pub(in crate::config) fn validate(self, base: &Path) -> Result<ApiConfig, Invalid> {
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
                let interval_field = format!("{field}.batch_interval");
                let batch_interval = go_duration(&b.batch_interval)
                    .map_err(|e| invalid(&interval_field, e.to_string()))?;
                if batch_interval > MAX_BATCH_INTERVAL {
                    return Err(invalid(
                        &interval_field,
                        format!(
                            "{:?} is longer than the maximum: must be at most {MAX_BATCH_INTERVAL:?} \
                             (a lone call waits this long for others)",
                            b.batch_interval
                        ),
                    ));
                }
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
}
