//! The Open Inference Protocol's REST binding (KServe v2, as Triton serves
//! it): health, server and model metadata, readiness, config, statistics,
//! the repository index, and inference with JSON tensors or the
//! binary-tensor extension (a JSON header of `Inference-Header-Content-Length`
//! bytes, then the tensors' bytes). Each handler maps to the same service
//! call the gRPC binding makes; tensors travel to the service as raw
//! little-endian contents either way: an inference request is read in
//! `oip/request.rs`, its response written in `oip/response.rs`, and JSON
//! tensor data converted in `oip/tensor.rs`.

mod head;
#[cfg(test)]
mod properties;
mod request;
mod response;
mod tensor;

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::failure::{error_response, failure};
use crate::blocking::off_runtime;
use hotswap_proto::inference as pb;
use hotswap_proto::limit::RequestLimit;
use hotswap_proto::service::InferenceService;

pub(crate) use tensor::DataError;

/// The header naming the length of the JSON part of a binary request or
/// response.
pub(crate) const HEADER_LENGTH: &str = "inference-header-content-length";

/// `/v2/models/{model}` or `/v2/models/{model}/versions/{version}`.
#[derive(serde::Deserialize)]
pub(crate) struct ModelPath {
    model: String,
    #[serde(default)]
    version: String,
}

fn ok_json(value: Value) -> Response {
    (StatusCode::OK, Json(value)).into_response()
}

pub(crate) async fn live<I: InferenceService>(State(s): State<Arc<I>>) -> Response {
    match s.server_live().await {
        Ok(r) if r.live => StatusCode::OK.into_response(),
        Ok(_) => failure(StatusCode::SERVICE_UNAVAILABLE, "not live"),
        Err(e) => error_response(&e),
    }
}

pub(crate) async fn ready<I: InferenceService>(State(s): State<Arc<I>>) -> Response {
    match s.server_ready().await {
        Ok(r) if r.ready => StatusCode::OK.into_response(),
        Ok(_) => failure(StatusCode::SERVICE_UNAVAILABLE, "not ready"),
        Err(e) => error_response(&e),
    }
}

pub(crate) async fn server_metadata<I: InferenceService>(State(s): State<Arc<I>>) -> Response {
    match s.server_metadata().await {
        Ok(m) => ok_json(json!({"name": m.name, "version": m.version, "extensions": m.extensions})),
        Err(e) => error_response(&e),
    }
}

pub(crate) async fn model_ready<I: InferenceService>(
    State(s): State<Arc<I>>,
    Path(p): Path<ModelPath>,
) -> Response {
    let request = pb::ModelReadyRequest {
        name: p.model.clone(),
        version: p.version,
    };
    match s.model_ready(request).await {
        Ok(r) if r.ready => StatusCode::OK.into_response(),
        // Triton's answer for a known model that is not ready.
        Ok(_) => failure(
            StatusCode::BAD_REQUEST,
            &format!("model `{}` is not ready", p.model),
        ),
        Err(e) => error_response(&e),
    }
}

pub(crate) async fn model_metadata<I: InferenceService>(
    State(s): State<Arc<I>>,
    Path(p): Path<ModelPath>,
) -> Response {
    let request = pb::ModelMetadataRequest {
        name: p.model,
        version: p.version,
    };
    let tensors = |list: Vec<pb::model_metadata_response::TensorMetadata>| -> Vec<Value> {
        list.into_iter()
            .map(|t| json!({"name": t.name, "datatype": t.datatype, "shape": t.shape}))
            .collect()
    };
    match s.model_metadata(request).await {
        Ok(m) => ok_json(json!({
            "name": m.name,
            "versions": m.versions,
            "platform": m.platform,
            "inputs": tensors(m.inputs),
            "outputs": tensors(m.outputs),
        })),
        Err(e) => error_response(&e),
    }
}

pub(crate) async fn model_config<I: InferenceService>(
    State(s): State<Arc<I>>,
    Path(p): Path<ModelPath>,
) -> Response {
    let request = pb::ModelConfigRequest {
        name: p.model,
        version: p.version,
    };
    let data_type = |t: i32| {
        pb::DataType::try_from(t)
            .map(|d| d.as_str_name())
            .unwrap_or("TYPE_INVALID")
    };
    match s.model_config(request).await {
        Ok(r) => {
            let c = r.config.unwrap_or_default();
            ok_json(json!({
                "name": c.name,
                "platform": c.platform,
                "backend": c.backend,
                "version_policy": version_policy(c.version_policy),
                "max_batch_size": c.max_batch_size,
                "dynamic_batching": match c.scheduling_choice {
                    Some(pb::model_config::SchedulingChoice::DynamicBatching(d)) => json!({
                        "max_queue_delay_microseconds": d.max_queue_delay_microseconds,
                    }),
                    None => serde_json::Value::Null,
                },
                "input": c.input.iter().map(|t| json!({
                    "name": t.name, "data_type": data_type(t.data_type), "dims": t.dims,
                })).collect::<Vec<_>>(),
                "output": c.output.iter().map(|t| json!({
                    "name": t.name, "data_type": data_type(t.data_type), "dims": t.dims,
                })).collect::<Vec<_>>(),
            }))
        }
        Err(e) => error_response(&e),
    }
}

/// A version policy as Triton's JSON writes it: `{"latest": {"num_versions":
/// 1}}`, `{"specific": {"versions": [1, 3]}}` or `{"all": {}}`.
fn version_policy(policy: Option<pb::ModelVersionPolicy>) -> serde_json::Value {
    use pb::model_version_policy::PolicyChoice;
    match policy.and_then(|p| p.policy_choice) {
        Some(PolicyChoice::Latest(l)) => json!({"latest": {"num_versions": l.num_versions}}),
        Some(PolicyChoice::Specific(s)) => json!({"specific": {"versions": s.versions}}),
        Some(PolicyChoice::All(_)) | None => json!({"all": {}}),
    }
}

pub(crate) async fn statistics<I: InferenceService>(
    State(s): State<Arc<I>>,
    Path(p): Path<ModelPath>,
) -> Response {
    stats_of(&*s, p.model, p.version).await
}

pub(crate) async fn all_statistics<I: InferenceService>(State(s): State<Arc<I>>) -> Response {
    stats_of(&*s, String::new(), String::new()).await
}

async fn stats_of<I: InferenceService>(s: &I, name: String, version: String) -> Response {
    let duration = |d: Option<pb::StatisticDuration>| {
        let d = d.unwrap_or_default();
        json!({"count": d.count, "ns": d.ns})
    };
    match s
        .model_statistics(pb::ModelStatisticsRequest { name, version })
        .await
    {
        Ok(r) => ok_json(json!({
            "model_stats": r.model_stats.into_iter().map(|m| {
                let i = m.inference_stats.unwrap_or_default();
                json!({
                    "name": m.name,
                    "version": m.version,
                    "last_inference": m.last_inference,
                    "inference_count": m.inference_count,
                    "execution_count": m.execution_count,
                    "inference_stats": {
                        "success": duration(i.success),
                        "fail": duration(i.fail),
                        "queue": duration(i.queue),
                        "compute_input": duration(i.compute_input),
                        "compute_infer": duration(i.compute_infer),
                        "compute_output": duration(i.compute_output),
                        "cache_hit": duration(i.cache_hit),
                        "cache_miss": duration(i.cache_miss),
                    },
                    "batch_stats": [],
                })
            }).collect::<Vec<_>>(),
        })),
        Err(e) => error_response(&e),
    }
}

pub(crate) async fn repository_index<I: InferenceService>(
    State(s): State<Arc<I>>,
    body: Bytes,
) -> Response {
    let ready = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("ready").and_then(Value::as_bool))
        .unwrap_or(false);
    let request = pb::RepositoryIndexRequest {
        repository_name: String::new(),
        ready,
    };
    match s.repository_index(request).await {
        Ok(r) => ok_json(Value::Array(
            r.models
                .into_iter()
                .map(|m| json!({"name": m.name, "version": m.version, "state": m.state, "reason": m.reason}))
                .collect(),
        )),
        Err(e) => error_response(&e),
    }
}

pub(crate) async fn infer<I: InferenceService>(
    State(s): State<Arc<I>>,
    Extension(limit): Extension<RequestLimit>,
    Path(p): Path<ModelPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A large body is read on the blocking pool, and dropped there: only
    // the tensors read from it (or slices of it) go on.
    let read = off_runtime(body.len(), move || request::read(p, &headers, &body, limit)).await;
    let (request, binary_outputs) = match read {
        Ok(Ok(read)) => read,
        Ok(Err(bad)) => return bad.into_response(),
        Err(stopping) => return failure(StatusCode::SERVICE_UNAVAILABLE, &stopping.to_string()),
    };
    let response = match s.model_infer(request).await {
        Ok(response) => response,
        Err(e) => return error_response(&e),
    };
    let size = response.raw_output_contents.iter().map(|r| r.len()).sum();
    let written = off_runtime(size, move || {
        response::write(response, &binary_outputs).unwrap_or_else(IntoResponse::into_response)
    })
    .await;
    written
        .unwrap_or_else(|stopping| failure(StatusCode::SERVICE_UNAVAILABLE, &stopping.to_string()))
}
