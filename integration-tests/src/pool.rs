//! Calls to a Python predictor pool, made as a worker makes them.

use hotswap_python::protocol::{Output, Payload, Request};

/// A call to a predictor pool: `payload` with the query parameters and
/// headers a client sent; the one way tests build one.
pub fn pool_request(
    payload: Payload,
    query_params: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Request {
    let map = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    Request {
        payload,
        query_params: map(query_params),
        headers: map(headers),
    }
}

/// Calls a predictor pool with a JSON payload and query parameters, as the
/// worker does for a `json` Predict, and returns its JSON answer.
pub async fn predict_json(
    pool: &hotswap_python::PythonPool,
    payload: serde_json::Value,
    query_params: std::collections::BTreeMap<String, String>,
) -> Result<serde_json::Value, hotswap_python::CallError> {
    let request = Request {
        query_params,
        ..pool_request(Payload::Json(payload), &[], &[])
    };
    match pool.predict(request).await? {
        Output::Json { value } => Ok(value),
        other => panic!("expected a JSON answer, got {other:?}"),
    }
}
