//! How the HTTP bindings answer failures, each with `{"error": message}` as
//! Triton and KServe do: a service error with the HTTP status of its code
//! (the usual gRPC-to-HTTP mapping, [`http_status`]), a request the binding
//! cannot read with 400 ([`BadRequest`]), and a response it cannot write
//! with 500 ([`BadResponse`]). The only place these become HTTP statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hotswap_proto::error::{Code, ServiceError, bounded, report};

use super::oip::{DataError, HEADER_LENGTH};

/// The HTTP status for a service error's code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        // nginx's "client closed request": nobody reads it.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A service error as an HTTP response.
pub(crate) fn error_response<E: ServiceError>(e: &E) -> Response {
    failure(http_status(e.code()), &e.public_message())
}

/// `{"error": message}`, as Triton and KServe answer failures.
pub(crate) fn failure(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": bounded(message.to_owned()) });
    (status, axum::Json(body)).into_response()
}

/// A request the HTTP bindings cannot read: answered 400, before any
/// service is called. Fields that locate a JSON value (`field`) are paths
/// as the caller wrote them: `inputs[0].name`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadRequest {
    /// Cortex: a body sent as `application/json` that is not UTF-8.
    #[error("the JSON body is not UTF-8")]
    JsonNotUtf8,
    /// The binary-tensor extension's header length is not a number, or
    /// points past the body's end.
    #[error("{HEADER_LENGTH} must be a length within the body ({body} bytes)")]
    HeaderLength { body: usize },
    /// The JSON part of an inference request does not parse.
    #[error("the request is not valid JSON")]
    NotJson(#[source] serde_json::Error),
    /// The JSON part of an inference request is not an object.
    #[error("the request must be a JSON object")]
    NotObject,
    /// A field that must be a list is missing or is something else.
    #[error("{field} must be a list")]
    NotList { field: String },
    /// A field that must be a string is missing or is something else.
    #[error("{field} must be a string")]
    NotString { field: String },
    /// An input's shape holds something other than integers.
    #[error("inputs[{input}].shape: dimensions are integers")]
    Dimensions { input: usize },
    /// An input's shape has more dimensions than any tensor has.
    #[error("inputs[{input}].shape: at most {max} dimensions")]
    TooManyDimensions { input: usize, max: usize },
    /// An input's `binary_data_size` is not a length.
    #[error("inputs[{input}].parameters.binary_data_size: a length")]
    BinaryDataSize { input: usize },
    /// An input's `binary_data_size` does not fit in memory's address
    /// range.
    #[error("inputs[{input}]: binary_data_size too large")]
    BinaryDataSizeTooLarge { input: usize },
    /// An input's binary data would run past the body's end.
    #[error("input `{name}`: binary_data_size {size} runs past the body's end")]
    BinaryPastEnd { name: String, size: usize },
    /// An input's JSON `data` is not a tensor of its datatype.
    #[error("input `{name}`")]
    Data {
        name: String,
        #[source]
        source: DataError,
    },
    /// An input has neither JSON `data` nor a `binary_data_size`.
    #[error("input `{name}` has no data")]
    NoData { name: String },
    /// Binary data is left over once every input has taken its own.
    #[error("{len} bytes after the inputs' binary data belong to no input")]
    TrailingBytes { len: usize },
    /// An input over the request limit, refused as a worker refuses it.
    #[error(transparent)]
    TooLarge(#[from] hotswap_proto::limit::TooLarge),
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        failure(StatusCode::BAD_REQUEST, &report(&self))
    }
}

/// A service's answer the HTTP bindings cannot write: answered 500 (the
/// service broke the contract, not the caller).
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadResponse {
    /// An output without its raw contents.
    #[error("output `{name}` came back without its contents")]
    MissingContents { name: String },
    /// An output whose raw contents are not a tensor of its datatype, or
    /// whose datatype JSON cannot carry.
    #[error("output `{name}`")]
    Data {
        name: String,
        #[source]
        source: DataError,
    },
    /// The response's JSON did not serialise.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl IntoResponse for BadResponse {
    fn into_response(self) -> Response {
        failure(StatusCode::INTERNAL_SERVER_ERROR, &report(&self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(response: impl IntoResponse) -> (StatusCode, serde_json::Value) {
        let response = response.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, serde_json::from_slice(&body).expect("JSON body"))
    }

    fn not_json() -> serde_json::Error {
        serde_json::from_slice::<serde_json::Value>(b"{").expect_err("not JSON")
    }

    #[tokio::test]
    async fn each_bad_request_is_a_400_with_its_message() {
        let name = || "x".to_owned();
        let cases = [
            (
                BadRequest::JsonNotUtf8,
                "the JSON body is not UTF-8".to_owned(),
            ),
            (
                BadRequest::HeaderLength { body: 12 },
                "inference-header-content-length must be a length within the body (12 bytes)"
                    .to_owned(),
            ),
            (
                BadRequest::NotJson(not_json()),
                format!("the request is not valid JSON: {}", not_json()),
            ),
            (
                BadRequest::NotObject,
                "the request must be a JSON object".to_owned(),
            ),
            (
                BadRequest::NotList {
                    field: "inputs".to_owned(),
                },
                "inputs must be a list".to_owned(),
            ),
            (
                BadRequest::NotString {
                    field: "outputs[1].name".to_owned(),
                },
                "outputs[1].name must be a string".to_owned(),
            ),
            (
                BadRequest::Dimensions { input: 2 },
                "inputs[2].shape: dimensions are integers".to_owned(),
            ),
            (
                BadRequest::BinaryDataSize { input: 0 },
                "inputs[0].parameters.binary_data_size: a length".to_owned(),
            ),
            (
                BadRequest::BinaryDataSizeTooLarge { input: 3 },
                "inputs[3]: binary_data_size too large".to_owned(),
            ),
            (
                BadRequest::BinaryPastEnd {
                    name: name(),
                    size: 16,
                },
                "input `x`: binary_data_size 16 runs past the body's end".to_owned(),
            ),
            (
                BadRequest::Data {
                    name: name(),
                    source: DataError::NotElement {
                        value: "1.5".to_owned(),
                        datatype: "INT32".to_owned(),
                    },
                },
                "input `x`: 1.5 is not a INT32 element".to_owned(),
            ),
            (
                BadRequest::Data {
                    name: name(),
                    source: DataError::NotSendable("FP16".to_owned()),
                },
                "input `x`: datatype FP16 cannot be sent as JSON data".to_owned(),
            ),
            (
                BadRequest::Data {
                    name: name(),
                    source: DataError::TooDeep,
                },
                "input `x`: data is nested too deeply".to_owned(),
            ),
            (
                BadRequest::NoData { name: name() },
                "input `x` has no data".to_owned(),
            ),
            (
                BadRequest::TrailingBytes { len: 5 },
                "5 bytes after the inputs' binary data belong to no input".to_owned(),
            ),
            (
                BadRequest::TooManyDimensions { input: 1, max: 64 },
                "inputs[1].shape: at most 64 dimensions".to_owned(),
            ),
            (
                BadRequest::TooLarge(hotswap_proto::limit::TooLarge {
                    what: "input `x`".to_owned(),
                    bytes: 9,
                    limit: 8,
                }),
                "input `x` is 9 bytes; requests are limited to 8 bytes".to_owned(),
            ),
        ];
        for (error, message) in cases {
            let what = format!("{error:?}");
            let (status, body) = answer(error).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
            assert_eq!(body, serde_json::json!({ "error": message }), "{what}");
        }
    }

    #[tokio::test]
    async fn each_bad_response_is_a_500_with_its_message() {
        let cases = [
            (
                BadResponse::MissingContents {
                    name: "y".to_owned(),
                },
                "output `y` came back without its contents".to_owned(),
            ),
            (
                BadResponse::Data {
                    name: "y".to_owned(),
                    source: DataError::BytesPastEnd,
                },
                "output `y`: a BYTES element runs past the end".to_owned(),
            ),
            (
                BadResponse::Data {
                    name: "y".to_owned(),
                    source: DataError::NotReturnable("FP16".to_owned()),
                },
                "output `y`: datatype FP16 cannot be returned as JSON data".to_owned(),
            ),
            (BadResponse::Json(not_json()), not_json().to_string()),
        ];
        for (error, message) in cases {
            let what = format!("{error:?}");
            let (status, body) = answer(error).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{what}");
            assert_eq!(body, serde_json::json!({ "error": message }), "{what}");
        }
    }

    #[test]
    fn codes_map_to_the_usual_statuses() {
        assert_eq!(http_status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            http_status(Code::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(http_status(Code::Cancelled).as_u16(), 499);
        assert_eq!(
            http_status(Code::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
