//! A request body for a predictor class, read as Cortex read it by its
//! Content-Type: `application/json` parsed, `text/plain` as a string, forms
//! (`multipart/form-data`, `application/x-www-form-urlencoded`) as fields,
//! anything else as the bytes sent; forms within caps (fields, names,
//! part headers: `body/form.rs`). And `predict`'s answer back into a
//! response: JSON, text, bytes, or what a response object chose.

use std::collections::HashMap;

use hotswap_proto::v1::{PredictResponse, predict_response};
use hotswap_python::protocol::{Output, Payload};

use crate::Error;

mod form;

/// The payload `predict` receives for `body` sent as `content_type`.
pub async fn payload(body: Vec<u8>, content_type: &str) -> Result<Payload, Error> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" => serde_json::from_slice(&body)
            .map(Payload::Json)
            .map_err(|e| Error::invalid(format!("the body is not valid JSON: {e}"))),
        "text/plain" => String::from_utf8(body)
            .map(Payload::Text)
            .map_err(|_| Error::invalid("a text/plain body must be UTF-8")),
        "application/x-www-form-urlencoded" => form::urlencoded(&body).map(Payload::Form),
        "multipart/form-data" => form::multipart(body, content_type).await.map(Payload::Form),
        _ => Ok(Payload::Bytes(body)),
    }
}

/// `predict`'s answer as the Predictor service returns it. The answer
/// names no model or version: the class chose.
pub fn response(api: String, output: Output) -> PredictResponse {
    let (output, content_type, status_code, headers) = match output {
        Output::Json { value } => (
            predict_response::Output::Json(value.to_string()),
            String::new(),
            0,
            HashMap::new(),
        ),
        Output::Text { text } => (
            predict_response::Output::Body(text.into_bytes()),
            "text/plain; charset=utf-8".to_owned(),
            0,
            HashMap::new(),
        ),
        Output::Bytes { data } => (
            predict_response::Output::Body(data),
            "application/octet-stream".to_owned(),
            0,
            HashMap::new(),
        ),
        Output::Response {
            status_code,
            media_type,
            mut headers,
            body,
        } => {
            let content_type = media_type
                .or_else(|| headers.get("content-type").cloned())
                .unwrap_or_default();
            // Both describe the body as it is sent here; the transport
            // sets them again.
            headers.remove("content-type");
            headers.remove("content-length");
            (
                predict_response::Output::Body(body),
                content_type,
                u32::from(status_code),
                headers.into_iter().collect(),
            )
        }
    };
    PredictResponse {
        api,
        model: String::new(),
        version: 0,
        output: Some(output),
        content_type,
        status_code,
        headers,
    }
}

#[cfg(test)]
mod tests;
