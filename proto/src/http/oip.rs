//! The Open Inference Protocol's REST binding (KServe v2, as Triton serves
//! it): health, server and model metadata, readiness, config, statistics,
//! the repository index, and inference with JSON tensors or the
//! binary-tensor extension (a JSON header of `Inference-Header-Content-Length`
//! bytes, then the tensors' bytes). Each handler maps to the same service
//! call the gRPC binding makes; tensors travel to the service as raw
//! little-endian contents either way.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{error_response, failure};
use crate::inference as pb;
use crate::service::InferenceService;

/// The header naming the length of the JSON part of a binary request or
/// response.
const HEADER_LENGTH: &str = "inference-header-content-length";

/// `/v2/models/{model}` or `/v2/models/{model}/versions/{version}`.
#[derive(serde::Deserialize)]
pub struct ModelPath {
    model: String,
    #[serde(default)]
    version: String,
}

fn ok_json(value: Value) -> Response {
    (StatusCode::OK, Json(value)).into_response()
}

pub async fn live<I: InferenceService>(State(s): State<Arc<I>>) -> Response {
    match s.server_live().await {
        Ok(r) if r.live => StatusCode::OK.into_response(),
        Ok(_) => failure(StatusCode::SERVICE_UNAVAILABLE, "not live"),
        Err(e) => error_response(&e),
    }
}

pub async fn ready<I: InferenceService>(State(s): State<Arc<I>>) -> Response {
    match s.server_ready().await {
        Ok(r) if r.ready => StatusCode::OK.into_response(),
        Ok(_) => failure(StatusCode::SERVICE_UNAVAILABLE, "not ready"),
        Err(e) => error_response(&e),
    }
}

pub async fn server_metadata<I: InferenceService>(State(s): State<Arc<I>>) -> Response {
    match s.server_metadata().await {
        Ok(m) => ok_json(json!({"name": m.name, "version": m.version, "extensions": m.extensions})),
        Err(e) => error_response(&e),
    }
}

pub async fn model_ready<I: InferenceService>(
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

pub async fn model_metadata<I: InferenceService>(
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

pub async fn model_config<I: InferenceService>(
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

pub async fn statistics<I: InferenceService>(
    State(s): State<Arc<I>>,
    Path(p): Path<ModelPath>,
) -> Response {
    stats_of(&*s, p.model, p.version).await
}

pub async fn all_statistics<I: InferenceService>(State(s): State<Arc<I>>) -> Response {
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

pub async fn repository_index<I: InferenceService>(
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

pub async fn infer<I: InferenceService>(
    State(s): State<Arc<I>>,
    Path(p): Path<ModelPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (request, binary_outputs) = match read_request(p, &headers, &body) {
        Ok(read) => read,
        Err(message) => return failure(StatusCode::BAD_REQUEST, &message),
    };
    match s.model_infer(request).await {
        Ok(response) => match write_response(response, &binary_outputs) {
            Ok(response) => response,
            Err(message) => failure(StatusCode::INTERNAL_SERVER_ERROR, &message),
        },
        Err(e) => error_response(&e),
    }
}

/// Which outputs go back as binary.
struct BinaryOutputs {
    all: bool,
    named: Vec<String>,
}

impl BinaryOutputs {
    fn wants(&self, name: &str) -> bool {
        self.all || self.named.iter().any(|n| n == name)
    }
}

fn read_request(
    p: ModelPath,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(pb::ModelInferRequest, BinaryOutputs), String> {
    let header_len = match headers.get(HEADER_LENGTH) {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n <= body.len())
            .ok_or_else(|| {
                format!(
                    "{HEADER_LENGTH} must be a length within the body ({} bytes)",
                    body.len()
                )
            })?,
        None => body.len(),
    };
    let (head, mut binary) = body.split_at(header_len);
    let head: Value =
        serde_json::from_slice(head).map_err(|e| format!("the request is not valid JSON: {e}"))?;
    let head = head
        .as_object()
        .ok_or("the request must be a JSON object")?;
    let mut inputs = Vec::new();
    let mut raw = Vec::new();
    for (i, input) in array(head.get("inputs"), "inputs")?.iter().enumerate() {
        let at = format!("inputs[{i}]");
        let name = string(input.get("name"), &format!("{at}.name"))?;
        let datatype = string(input.get("datatype"), &format!("{at}.datatype"))?;
        let shape = array(input.get("shape"), &format!("{at}.shape"))?
            .iter()
            .map(|d| {
                d.as_i64()
                    .ok_or(format!("{at}.shape: dimensions are integers"))
            })
            .collect::<Result<Vec<i64>, String>>()?;
        let binary_size = input
            .get("parameters")
            .and_then(|p| p.get("binary_data_size"))
            .map(|n| {
                n.as_u64()
                    .ok_or(format!("{at}.parameters.binary_data_size: a length"))
            })
            .transpose()?;
        let bytes = match (binary_size, input.get("data")) {
            (Some(n), _) => {
                let n =
                    usize::try_from(n).map_err(|_| format!("{at}: binary_data_size too large"))?;
                if n > binary.len() {
                    return Err(format!(
                        "input `{name}`: binary_data_size {n} runs past the body's end"
                    ));
                }
                let (mine, rest) = binary.split_at(n);
                binary = rest;
                mine.to_vec()
            }
            (None, Some(data)) => {
                encode(data, &datatype).map_err(|e| format!("input `{name}`: {e}"))?
            }
            (None, None) => return Err(format!("input `{name}` has no data")),
        };
        raw.push(bytes);
        inputs.push(pb::model_infer_request::InferInputTensor {
            name,
            datatype,
            shape,
            ..Default::default()
        });
    }
    if !binary.is_empty() {
        return Err(format!(
            "{} bytes after the inputs' binary data belong to no input",
            binary.len()
        ));
    }
    let all = head
        .get("parameters")
        .and_then(|p| p.get("binary_data_output"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut named = Vec::new();
    let mut outputs = Vec::new();
    if let Some(list) = head.get("outputs") {
        for (i, output) in array(Some(list), "outputs")?.iter().enumerate() {
            let name = string(output.get("name"), &format!("outputs[{i}].name"))?;
            if output
                .get("parameters")
                .and_then(|p| p.get("binary_data"))
                .and_then(Value::as_bool)
                .unwrap_or(all)
            {
                named.push(name.clone());
            }
            outputs.push(pb::model_infer_request::InferRequestedOutputTensor {
                name,
                ..Default::default()
            });
        }
    }
    let request = pb::ModelInferRequest {
        model_name: p.model,
        model_version: p.version,
        id: head
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        inputs,
        outputs: outputs.clone(),
        raw_input_contents: raw,
        ..Default::default()
    };
    // Outputs asked for by name choose for themselves; unnamed ones follow
    // binary_data_output.
    let all = all && outputs.is_empty();
    Ok((request, BinaryOutputs { all, named }))
}

fn write_response(
    r: pb::ModelInferResponse,
    binary_outputs: &BinaryOutputs,
) -> Result<Response, String> {
    let mut binary = Vec::new();
    let mut outputs = Vec::new();
    for (i, output) in r.outputs.iter().enumerate() {
        let raw = r
            .raw_output_contents
            .get(i)
            .ok_or_else(|| format!("output `{}` came back without its contents", output.name))?;
        let mut entry = Map::new();
        entry.insert("name".into(), json!(output.name));
        entry.insert("datatype".into(), json!(output.datatype));
        entry.insert("shape".into(), json!(output.shape));
        if binary_outputs.wants(&output.name) {
            entry.insert("parameters".into(), json!({"binary_data_size": raw.len()}));
            binary.extend_from_slice(raw);
        } else {
            entry.insert(
                "data".into(),
                decode(raw, &output.datatype)
                    .map_err(|e| format!("output `{}`: {e}", output.name))?,
            );
        }
        outputs.push(Value::Object(entry));
    }
    let mut head = json!({
        "model_name": r.model_name,
        "model_version": r.model_version,
        "outputs": outputs,
    });
    if !r.id.is_empty() {
        head["id"] = json!(r.id);
    }
    let head = serde_json::to_vec(&head).map_err(|e| e.to_string())?;
    if binary.is_empty() && !binary_outputs.all && binary_outputs.named.is_empty() {
        return Ok((
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            head,
        )
            .into_response());
    }
    let header_len = head.len();
    let mut body = head;
    body.extend_from_slice(&binary);
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (
                header::HeaderName::from_static(HEADER_LENGTH),
                HeaderValue::from(header_len),
            ),
        ],
        body,
    )
        .into_response())
}

fn array<'a>(v: Option<&'a Value>, what: &str) -> Result<&'a Vec<Value>, String> {
    v.and_then(Value::as_array)
        .ok_or_else(|| format!("{what} must be a list"))
}

fn string(v: Option<&Value>, what: &str) -> Result<String, String> {
    v.and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("{what} must be a string"))
}

/// JSON tensor data (flat or nested lists) as raw little-endian contents.
fn encode(data: &Value, datatype: &str) -> Result<Vec<u8>, String> {
    let mut flat = Vec::new();
    flatten(data, &mut flat, 0)?;
    let mut out = Vec::new();
    for v in flat {
        let bad = || format!("{v} is not a {datatype} element");
        macro_rules! int {
            ($t:ty, $get:ident) => {{
                let n = v.$get().ok_or_else(bad)?;
                out.extend_from_slice(&<$t>::try_from(n).map_err(|_| bad())?.to_le_bytes());
            }};
        }
        match datatype {
            "BOOL" => out.push(match v {
                Value::Bool(b) => u8::from(*b),
                _ => return Err(bad()),
            }),
            "UINT8" => int!(u8, as_u64),
            "UINT16" => int!(u16, as_u64),
            "UINT32" => int!(u32, as_u64),
            "UINT64" => int!(u64, as_u64),
            "INT8" => int!(i8, as_i64),
            "INT16" => int!(i16, as_i64),
            "INT32" => int!(i32, as_i64),
            "INT64" => int!(i64, as_i64),
            "FP32" => out.extend_from_slice(&(v.as_f64().ok_or_else(bad)? as f32).to_le_bytes()),
            "FP64" => out.extend_from_slice(&v.as_f64().ok_or_else(bad)?.to_le_bytes()),
            "BYTES" => {
                let s = v.as_str().ok_or_else(bad)?;
                let len = u32::try_from(s.len()).map_err(|_| bad())?;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            other => return Err(format!("datatype {other} cannot be sent as JSON data")),
        }
    }
    Ok(out)
}

/// Nested lists deeper than this are refused rather than risk the stack.
const MAX_DEPTH: usize = 64;

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("data is nested too deeply".to_owned());
    }
    match v {
        Value::Array(items) => items.iter().try_for_each(|i| flatten(i, out, depth + 1)),
        scalar => {
            out.push(scalar);
            Ok(())
        }
    }
}

/// Raw little-endian contents as a flat JSON list.
fn decode(raw: &[u8], datatype: &str) -> Result<Value, String> {
    macro_rules! each {
        ($t:ty, $n:expr) => {
            raw.chunks_exact($n)
                .map(|c| json!(<$t>::from_le_bytes(c.try_into().unwrap_or_default())))
                .collect::<Vec<Value>>()
        };
    }
    Ok(Value::Array(match datatype {
        "BOOL" => raw.iter().map(|b| json!(*b != 0)).collect(),
        "UINT8" => raw.iter().map(|b| json!(b)).collect(),
        "INT8" => raw.iter().map(|b| json!(*b as i8)).collect(),
        "UINT16" => each!(u16, 2),
        "INT16" => each!(i16, 2),
        "UINT32" => each!(u32, 4),
        "INT32" => each!(i32, 4),
        "UINT64" => each!(u64, 8),
        "INT64" => each!(i64, 8),
        "FP32" => each!(f32, 4),
        "FP64" => each!(f64, 8),
        "BYTES" => {
            let mut items = Vec::new();
            let mut rest = raw;
            while rest.len() >= 4 {
                let (len, tail) = rest.split_at(4);
                let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
                if len > tail.len() {
                    return Err("a BYTES element runs past the end".to_owned());
                }
                let (item, tail) = tail.split_at(len);
                items.push(json!(String::from_utf8_lossy(item)));
                rest = tail;
            }
            items
        }
        other => return Err(format!("datatype {other} cannot be returned as JSON data")),
    }))
}
