//! Any request to `POST /{api}` (path, query, Content-Type, body) is
//! passed on or refused with a 4xx, never a panic or a 5xx (DESIGN.md §7).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Uri};
use axum::routing::post;
use hotswap_proto::error::{Code, ServiceError};
use proptest::collection::vec;
use proptest::prelude::*;
use tower::ServiceExt;

use super::*;

/// A predictor that refuses a JSON payload that does not parse, as a
/// worker does, and answers anything else with the body it was sent.
struct Echo;

#[derive(Debug, thiserror::Error)]
#[error("the payload is not valid JSON")]
struct NotJson;

impl ServiceError for NotJson {
    fn code(&self) -> Code {
        Code::InvalidArgument
    }
}

#[tonic::async_trait]
impl PredictorService for Echo {
    type Error = NotJson;

    async fn predict(&self, request: PredictRequest) -> Result<PredictResponse, NotJson> {
        let body = match request.payload {
            Some(predict_request::Payload::Json(text)) => {
                serde_json::from_str::<serde_json::Value>(&text).map_err(|_| NotJson)?;
                text.into_bytes().into()
            }
            Some(predict_request::Payload::Body(body)) => body,
            _ => Default::default(),
        };
        Ok(PredictResponse {
            output: Some(predict_response::Output::Body(body.to_vec())),
            ..PredictResponse::default()
        })
    }
}

fn content_type() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"application/json".to_vec()),
        Just(b"Application/JSON; charset=utf-8".to_vec()),
        Just(b"text/plain".to_vec()),
        Just(b"multipart/form-data; boundary=XB".to_vec()),
        "[a-zA-Z/;=\" -]{0,40}".prop_map(String::into_bytes),
        vec(any::<u8>(), 0..40),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..128),
        "[\\[\\]{}\",:0-9a-z .-]{0,64}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_cortex_request_is_passed_on_or_refused_with_a_4xx(
        api in "[A-Za-z0-9._~%-]{1,16}",
        query in "[A-Za-z0-9=&%+._~!$'()*,;:@/?-]{0,40}",
        content_type in content_type(),
        body in body(),
    ) {
        let uri = format!("/{api}?{query}").parse::<Uri>();
        prop_assume!(uri.is_ok(), "not a URI");
        let mut request = Request::post(uri.expect("a URI"));
        // A header value no HTTP parser would have let through is left out.
        if let Ok(value) = HeaderValue::from_bytes(&content_type) {
            request = request.header(header::CONTENT_TYPE, value);
        }
        let request = request.body(Body::from(body)).expect("a request");
        let router = Router::new()
            .route("/{api}", post(predict::<Echo>))
            .with_state(Arc::new(Echo));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let status = runtime
            .block_on(router.oneshot(request))
            .expect("the router answers")
            .status();
        prop_assert!(
            status.is_success() || status.is_client_error(),
            "{status} for {:?}",
            String::from_utf8_lossy(&content_type)
        );
    }
}
