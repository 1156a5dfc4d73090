//! An inference request as the REST binding reads it: the JSON head (and,
//! with the binary-tensor extension, the tensors' bytes after it) becomes a
//! `ModelInferRequest` with raw input contents, and the outputs the caller
//! wants back as binary are noted. No tree of JSON values is built (see
//! `head.rs`): each input's data is read straight into its bytes, and
//! binary data is a slice of the body, not a copy. An input whose contents
//! would be over the request limit is refused as a worker would refuse it,
//! before more than the limit is kept.

use axum::body::Bytes;
use axum::http::HeaderMap;
use hotswap_proto::limit::{RequestLimit, TooLarge, input};
use serde_json::value::RawValue;

use super::super::failure::BadRequest;
use super::head::{self, Stopped};
use super::{HEADER_LENGTH, ModelPath, tensor};
use hotswap_proto::inference as pb;

/// Which outputs go back as binary.
pub(super) struct BinaryOutputs {
    pub(super) all: bool,
    pub(super) named: Vec<String>,
}

impl BinaryOutputs {
    pub(super) fn wants(&self, name: &str) -> bool {
        self.all || self.named.iter().any(|n| n == name)
    }
}

/// Dimensions a shape may have. More cannot describe real data (nested
/// lists deeper than 64 are refused too), and a shape is the one list of
/// the head that becomes 8 bytes an item, whatever its text.
pub(super) const MAX_DIMENSIONS: usize = 64;

/// The request at `p` with `headers` and `body`, and which of its outputs
/// go back as binary; each input's contents at most `limit`.
pub(super) fn read(
    p: ModelPath,
    headers: &HeaderMap,
    body: &Bytes,
    limit: RequestLimit,
) -> Result<(pb::ModelInferRequest, BinaryOutputs), BadRequest> {
    let header_len = match headers.get(HEADER_LENGTH) {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n <= body.len())
            .ok_or(BadRequest::HeaderLength { body: body.len() })?,
        None => body.len(),
    };
    let [id, inputs_field, outputs_field, parameters] = head::head(
        &body[..header_len],
        ["id", "inputs", "outputs", "parameters"],
    )
    .map_err(BadRequest::NotJson)?
    .ok_or(BadRequest::NotObject)?;
    let not_list = |field: &str| BadRequest::NotList {
        field: field.to_owned(),
    };
    // Where the next input's binary data starts.
    let mut binary_at = header_len;
    let mut inputs = Vec::new();
    let mut raw = Vec::new();
    let walked = head::each(
        inputs_field.ok_or_else(|| not_list("inputs"))?,
        ["name", "datatype", "shape", "parameters", "data"],
        |i, fields| {
            let (tensor, bytes) = read_input(i, fields, body, &mut binary_at, limit)?;
            inputs.push(tensor);
            raw.push(bytes);
            Ok(())
        },
    );
    walked_list(walked, "inputs")?;
    if binary_at < body.len() {
        return Err(BadRequest::TrailingBytes {
            len: body.len() - binary_at,
        });
    }
    let (outputs, binary_outputs) = outputs(outputs_field, parameters)?;
    let request = pb::ModelInferRequest {
        model_name: p.model,
        model_version: p.version,
        id: id.and_then(head::read::<String>).unwrap_or_default(),
        inputs,
        outputs,
        raw_input_contents: raw,
        ..Default::default()
    };
    Ok((request, binary_outputs))
}

/// The `i`th input, from its fields (name, datatype, shape, parameters,
/// data), and its raw contents: its JSON data read into bytes, or the next
/// `binary_data_size` bytes of the body after `binary_at` (a slice).
fn read_input(
    i: usize,
    [name, datatype, shape, parameters, data]: [Option<&RawValue>; 5],
    body: &Bytes,
    binary_at: &mut usize,
    limit: RequestLimit,
) -> Result<(pb::model_infer_request::InferInputTensor, Bytes), BadRequest> {
    let name = string(name, || format!("inputs[{i}].name"))?;
    let datatype = string(datatype, || format!("inputs[{i}].datatype"))?;
    let shape = dimensions(shape, i)?;
    let binary_size = match parameters {
        Some(p) => json(head::fields(p, ["binary_data_size"]))?[0],
        None => None,
    }
    .map(|n| head::read::<u64>(n).ok_or(BadRequest::BinaryDataSize { input: i }))
    .transpose()?;
    let bytes = match (binary_size, data) {
        (Some(n), _) => {
            let n =
                usize::try_from(n).map_err(|_| BadRequest::BinaryDataSizeTooLarge { input: i })?;
            if n > body.len() - *binary_at {
                return Err(BadRequest::BinaryPastEnd { name, size: n });
            }
            limit.check(|| input(&name), n)?;
            *binary_at += n;
            body.slice(*binary_at - n..*binary_at)
        }
        (None, Some(data)) => match tensor::read(data, &datatype, &shape, limit.0) {
            Ok(tensor::Read::Bytes(bytes)) => Bytes::from(bytes),
            Ok(tensor::Read::TooLarge(bytes)) => {
                return Err(BadRequest::TooLarge(TooLarge {
                    what: input(&name),
                    bytes,
                    limit: limit.0,
                }));
            }
            Err(source) => return Err(BadRequest::Data { name, source }),
        },
        (None, None) => return Err(BadRequest::NoData { name }),
    };
    let tensor = pb::model_infer_request::InferInputTensor {
        name,
        datatype,
        shape,
        ..Default::default()
    };
    Ok((tensor, bytes))
}

/// The outputs asked for by name, and which outputs go back as binary.
fn outputs(
    list: Option<&RawValue>,
    parameters: Option<&RawValue>,
) -> Result<
    (
        Vec<pb::model_infer_request::InferRequestedOutputTensor>,
        BinaryOutputs,
    ),
    BadRequest,
> {
    let all = flag(parameters, "binary_data_output")?.unwrap_or(false);
    let mut named = Vec::new();
    let mut outputs = Vec::new();
    if let Some(list) = list {
        let walked = head::each(list, ["name", "parameters"], |i, [name, parameters]| {
            let name = string(name, || format!("outputs[{i}].name"))?;
            if flag(parameters, "binary_data")?.unwrap_or(all) {
                named.push(name.clone());
            }
            outputs.push(pb::model_infer_request::InferRequestedOutputTensor {
                name,
                ..Default::default()
            });
            Ok(())
        });
        walked_list(walked, "outputs")?;
    }
    // Outputs asked for by name choose for themselves; unnamed ones follow
    // binary_data_output.
    let all = all && outputs.is_empty();
    Ok((outputs, BinaryOutputs { all, named }))
}

/// The boolean `name` of a `parameters` object; None when it is missing or
/// not a boolean.
fn flag(parameters: Option<&RawValue>, name: &'static str) -> Result<Option<bool>, BadRequest> {
    let Some(p) = parameters else {
        return Ok(None);
    };
    Ok(json(head::fields(p, [name]))?[0].and_then(head::read::<bool>))
}

/// An input's shape: a list of integers.
fn dimensions(shape: Option<&RawValue>, input: usize) -> Result<Vec<i64>, BadRequest> {
    let shape = shape.ok_or_else(|| BadRequest::NotList {
        field: format!("inputs[{input}].shape"),
    })?;
    match json(head::integers(shape, MAX_DIMENSIONS))? {
        None => Err(BadRequest::NotList {
            field: format!("inputs[{input}].shape"),
        }),
        Some(head::Integers::Read(dims)) => Ok(dims),
        Some(head::Integers::NotInteger) => Err(BadRequest::Dimensions { input }),
        Some(head::Integers::TooMany) => Err(BadRequest::TooManyDimensions {
            input,
            max: MAX_DIMENSIONS,
        }),
    }
}

/// The result of walking the list `field`.
fn walked_list(
    walked: Result<Option<()>, Stopped<BadRequest>>,
    field: &str,
) -> Result<(), BadRequest> {
    match walked {
        Ok(Some(())) => Ok(()),
        Ok(None) => Err(BadRequest::NotList {
            field: field.to_owned(),
        }),
        Err(Stopped::By(bad)) => Err(bad),
        Err(Stopped::Json(e)) => Err(BadRequest::NotJson(e)),
    }
}

/// A field read from checked JSON: a failure is not the caller's (the head
/// was checked), yet it is answered as unreadable JSON rather than trusted.
fn json<T>(read: Result<T, serde_json::Error>) -> Result<T, BadRequest> {
    read.map_err(BadRequest::NotJson)
}

/// `v` as a string; `field` names it when it is not one.
fn string(v: Option<&RawValue>, field: impl FnOnce() -> String) -> Result<String, BadRequest> {
    v.and_then(head::read::<String>)
        .ok_or_else(|| BadRequest::NotString { field: field() })
}

#[cfg(test)]
mod tests;
