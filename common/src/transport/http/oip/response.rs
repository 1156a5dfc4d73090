//! An inference response as the REST binding writes it: JSON tensors, or,
//! for the outputs the caller asked back as binary, a JSON head of
//! `Inference-Header-Content-Length` bytes followed by their raw contents.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::super::failure::BadResponse;
use super::request::BinaryOutputs;
use super::{HEADER_LENGTH, tensor};
use hotswap_proto::inference as pb;

/// The HTTP answer for `r`, with the outputs `binary_outputs` names as
/// binary.
pub(super) fn write(
    r: pb::ModelInferResponse,
    binary_outputs: &BinaryOutputs,
) -> Result<Response, BadResponse> {
    let mut binary = Vec::new();
    let mut outputs = Vec::new();
    for (i, output) in r.outputs.iter().enumerate() {
        let raw = r
            .raw_output_contents
            .get(i)
            .ok_or_else(|| BadResponse::MissingContents {
                name: output.name.clone(),
            })?;
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
                tensor::decode(raw, &output.datatype).map_err(|source| BadResponse::Data {
                    name: output.name.clone(),
                    source,
                })?,
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
    let head = serde_json::to_vec(&head)?;
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
