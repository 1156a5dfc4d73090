//! Cortex's HTTP API: `POST /{api}` with a JSON, text, bytes or form body.
//! `?version=` and `?model=` pick what the gRPC Predict's fields pick (and,
//! like every query parameter, reach a predictor's `query_params`); the
//! headers reach its `headers`. The answer is JSON, text or bytes as
//! `predict` returned it, with the status a response object chose; a model
//! API's answer says which version answered in `hotswap-model-version`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::failure::{BadRequest, error_response, failure};
use super::refusals::PredictorAnswer;
use crate::blocking::off_runtime;
use hotswap_proto::service::PredictorService;
use hotswap_proto::v1::{PredictRequest, PredictResponse, predict_request, predict_response};

/// Headers a predictor never sees: credentials for hotswap itself, and what
/// describes the transport rather than the call.
const WITHHELD: &[&str] = &[
    "authorization",
    "hotswap-cluster-token",
    "content-length",
    "connection",
    "transfer-encoding",
];

pub(crate) async fn predict<P: PredictorService>(
    State(service): State<Arc<P>>,
    Path(api): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let is_json = content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    // JSON goes as `json`, which model APIs read too; anything else as a
    // body for a predictor class, the body itself rather than a copy.
    let payload = if is_json {
        // The body's own buffer when nothing else holds it; checked as
        // UTF-8 off the runtime threads when large.
        let checked = off_runtime(body.len(), move || String::from_utf8(Vec::from(body))).await;
        match checked {
            Ok(Ok(text)) => predict_request::Payload::Json(text),
            Ok(Err(_)) => return BadRequest::JsonNotUtf8.into_response(),
            Err(stopping) => {
                return failure(StatusCode::SERVICE_UNAVAILABLE, &stopping.to_string());
            }
        }
    } else {
        predict_request::Payload::Body(body)
    };
    let request = PredictRequest {
        api,
        model: query.get("model").cloned().unwrap_or_default(),
        version: query.get("version").cloned().unwrap_or_default(),
        payload: Some(payload),
        query_params: query,
        content_type,
        headers: headers
            .iter()
            .filter(|(name, _)| !WITHHELD.contains(&name.as_str()))
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
            .collect(),
        ..PredictRequest::default()
    };
    match service.predict(request).await {
        Ok(response) => answer(response),
        Err(e) => error_response(&e),
    }
}

fn answer(response: PredictResponse) -> Response {
    let status = match response.status_code {
        0 => StatusCode::OK,
        code => u16::try_from(code)
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::OK),
    };
    let (body, content_type) = match response.output {
        Some(predict_response::Output::Json(text)) => (text.into_bytes(), "application/json"),
        Some(predict_response::Output::Body(bytes)) => (bytes, "application/octet-stream"),
        // Tensors only come back to a gRPC client that sent tensors.
        Some(predict_response::Output::Tensors(_)) | None => (Vec::new(), ""),
    };
    let mut headers = HeaderMap::new();
    // Which model version answered: in the gRPC response's fields, here in
    // headers (the body is the model's outputs alone, as Cortex answered).
    if response.version != 0 {
        headers.insert("hotswap-model-version", HeaderValue::from(response.version));
        if let Ok(model) = HeaderValue::try_from(response.model.as_str()) {
            headers.insert("hotswap-model", model);
        }
    }
    for (name, value) in &response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.insert(name, value);
        }
    }
    let content_type = if response.content_type.is_empty() {
        content_type
    } else {
        response.content_type.as_str()
    };
    if let Ok(value) = HeaderValue::try_from(content_type)
        && !content_type.is_empty()
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    // The predictor chose this status and body: not a refusal to rewrite.
    let mut response = (status, headers, body).into_response();
    response.extensions_mut().insert(PredictorAnswer);
    response
}

#[cfg(test)]
mod tests;
