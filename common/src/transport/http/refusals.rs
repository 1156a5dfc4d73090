//! Every refusal the HTTP bindings give is `{"error": …}`, as Triton's and
//! KServe's are. axum answers some requests before a handler runs (a
//! method a route does not take, a path or query that does not decode),
//! in plain text or with no body at all; those answers are rewritten here.
//! A predictor's own answer (Cortex: a response object with a status and
//! body of its choosing) is the predictor's, and passes as it is.

use axum::http::{StatusCode, header};
use axum::response::Response;

use super::failure::failure;

/// Marks a response whose status and body a predictor chose.
#[derive(Clone, Copy)]
pub(super) struct PredictorAnswer;

/// Refusal texts longer than this are cut (axum's are a line).
const MAX_TEXT: usize = 4096;

/// `response` as `{"error": …}` when it is a refusal not written as JSON
/// already (nor by a predictor); other responses as they are.
pub(super) async fn as_json(response: Response) -> Response {
    let status = response.status();
    let refused = status.is_client_error() || status.is_server_error();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !refused || json || response.extensions().get::<PredictorAnswer>().is_some() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = match text.is_empty() {
        false => text,
        true => default_message(status),
    };
    let mut answer = failure(status, &message);
    // A 405 says what the route takes.
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        answer.headers_mut().insert(header::ALLOW, allow.clone());
    }
    answer
}

/// What a refusal without a text of its own says.
fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            "this endpoint does not take that method (the Open Inference Protocol's infer and \
             Cortex's APIs take POST)"
                .to_owned()
        }
        other => other
            .canonical_reason()
            .unwrap_or("refused")
            .to_ascii_lowercase(),
    }
}
