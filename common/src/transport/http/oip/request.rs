//! An inference request as the REST binding reads it: the JSON head (and,
//! with the binary-tensor extension, the tensors' bytes after it) becomes a
//! `ModelInferRequest` with raw input contents, and the outputs the caller
//! wants back as binary are noted.

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use super::super::failure::BadRequest;
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

/// The request at `p` with `headers` and `body`, and which of its outputs
/// go back as binary.
pub(super) fn read(
    p: ModelPath,
    headers: &HeaderMap,
    body: &[u8],
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
    let (head, mut binary) = body.split_at(header_len);
    let head: Value = serde_json::from_slice(head).map_err(BadRequest::NotJson)?;
    let head = head.as_object().ok_or(BadRequest::NotObject)?;
    let mut inputs = Vec::new();
    let mut raw = Vec::new();
    for (i, input) in array(head.get("inputs"), || "inputs".to_owned())?
        .iter()
        .enumerate()
    {
        let name = string(input.get("name"), || format!("inputs[{i}].name"))?;
        let datatype = string(input.get("datatype"), || format!("inputs[{i}].datatype"))?;
        let shape = array(input.get("shape"), || format!("inputs[{i}].shape"))?
            .iter()
            .map(|d| d.as_i64().ok_or(BadRequest::Dimensions { input: i }))
            .collect::<Result<Vec<i64>, BadRequest>>()?;
        let binary_size = input
            .get("parameters")
            .and_then(|p| p.get("binary_data_size"))
            .map(|n| n.as_u64().ok_or(BadRequest::BinaryDataSize { input: i }))
            .transpose()?;
        let bytes = match (binary_size, input.get("data")) {
            (Some(n), _) => {
                let n = usize::try_from(n)
                    .map_err(|_| BadRequest::BinaryDataSizeTooLarge { input: i })?;
                if n > binary.len() {
                    return Err(BadRequest::BinaryPastEnd { name, size: n });
                }
                let (mine, rest) = binary.split_at(n);
                binary = rest;
                axum::body::Bytes::copy_from_slice(mine)
            }
            (None, Some(data)) => match tensor::encode(data, &datatype) {
                Ok(bytes) => bytes.into(),
                Err(source) => return Err(BadRequest::Data { name, source }),
            },
            (None, None) => return Err(BadRequest::NoData { name }),
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
        return Err(BadRequest::TrailingBytes { len: binary.len() });
    }
    let (outputs, binary_outputs) = outputs(head)?;
    let request = pb::ModelInferRequest {
        model_name: p.model,
        model_version: p.version,
        id: head
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        inputs,
        outputs,
        raw_input_contents: raw,
        ..Default::default()
    };
    Ok((request, binary_outputs))
}

/// The outputs asked for by name, and which outputs go back as binary.
fn outputs(
    head: &Map<String, Value>,
) -> Result<
    (
        Vec<pb::model_infer_request::InferRequestedOutputTensor>,
        BinaryOutputs,
    ),
    BadRequest,
> {
    let all = head
        .get("parameters")
        .and_then(|p| p.get("binary_data_output"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut named = Vec::new();
    let mut outputs = Vec::new();
    if let Some(list) = head.get("outputs") {
        for (i, output) in array(Some(list), || "outputs".to_owned())?
            .iter()
            .enumerate()
        {
            let name = string(output.get("name"), || format!("outputs[{i}].name"))?;
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
    // Outputs asked for by name choose for themselves; unnamed ones follow
    // binary_data_output.
    let all = all && outputs.is_empty();
    Ok((outputs, BinaryOutputs { all, named }))
}

/// `v` as a list; `field` names it when it is not one.
fn array(v: Option<&Value>, field: impl FnOnce() -> String) -> Result<&Vec<Value>, BadRequest> {
    v.and_then(Value::as_array)
        .ok_or_else(|| BadRequest::NotList { field: field() })
}

/// `v` as a string; `field` names it when it is not one.
fn string(v: Option<&Value>, field: impl FnOnce() -> String) -> Result<String, BadRequest> {
    v.and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| BadRequest::NotString { field: field() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_body(
        header_len: Option<&str>,
        body: &[u8],
    ) -> Result<(pb::ModelInferRequest, BinaryOutputs), BadRequest> {
        let mut headers = HeaderMap::new();
        if let Some(n) = header_len {
            headers.insert(HEADER_LENGTH, n.parse().expect("header value"));
        }
        let path = ModelPath {
            model: "m".to_owned(),
            version: String::new(),
        };
        read(path, &headers, body)
    }

    #[test]
    fn json_and_binary_inputs_are_read() {
        let head = br#"{"id":"7","inputs":[
            {"name":"a","datatype":"INT32","shape":[2],"data":[1,2]},
            {"name":"b","datatype":"UINT8","shape":[3],"parameters":{"binary_data_size":3}}],
            "outputs":[{"name":"y","parameters":{"binary_data":true}},{"name":"z"}]}"#;
        let mut body = head.to_vec();
        body.extend_from_slice(&[7, 8, 9]);
        let (request, binary) =
            read_body(Some(&head.len().to_string()), &body).expect("a valid request");
        assert_eq!(request.id, "7");
        assert_eq!(request.model_name, "m");
        assert_eq!(
            request.raw_input_contents,
            vec![vec![1, 0, 0, 0, 2, 0, 0, 0], vec![7, 8, 9]]
        );
        assert_eq!(request.outputs.len(), 2);
        assert!(binary.wants("y") && !binary.wants("z"));
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        for (header_len, body, message) in [
            (
                Some("99"),
                &br#"{}"#[..],
                "inference-header-content-length must be a length within the body (2 bytes)",
            ),
            (None, br#"[]"#, "the request must be a JSON object"),
            (None, br#"{"inputs":{}}"#, "inputs must be a list"),
            (
                None,
                br#"{"inputs":[{"name":"a","datatype":"FP32","shape":[1.5]}]}"#,
                "inputs[0].shape: dimensions are integers",
            ),
            (
                None,
                br#"{"inputs":[{"name":"a","datatype":"FP32","shape":[1]}]}"#,
                "input `a` has no data",
            ),
            (
                None,
                br#"{"inputs":[{"name":"a","datatype":"INT8","shape":[1],"data":[300]}]}"#,
                "input `a`: 300 is not a INT8 element",
            ),
            (
                None,
                br#"{"inputs":[],"outputs":[{"name":1}]}"#,
                "outputs[0].name must be a string",
            ),
            (
                Some("13"),
                br#"{"inputs":[]}xyz"#,
                "3 bytes after the inputs' binary data belong to no input",
            ),
        ] {
            assert_eq!(
                read_body(header_len, body)
                    .err()
                    .map(|e| hotswap_proto::error::report(&e))
                    .as_deref(),
                Some(message),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
