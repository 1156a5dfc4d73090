//! Thin HTTP adapters over the transport-free services, served on the same
//! port as gRPC (the server tells them apart by protocol and path): the Open
//! Inference Protocol's REST binding under `/v2` (`http/oip.rs`: JSON
//! tensors and the binary-tensor extension) and Cortex's `POST /{api}`
//! (`http/cortex.rs`). How their failures are answered (service errors by
//! their code, malformed requests with 400) is `http/failure.rs`; that
//! every refusal is `{"error": …}`, axum's own too, is `http/refusals.rs`.

mod cortex;
mod failure;
mod oip;
mod refusals;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};

use hotswap_proto::limit::RequestLimit;
use hotswap_proto::service::{InferenceService, PredictorService};

use failure::failure;
pub use failure::http_status;

/// The HTTP routes of a server that serves both services (a worker, or the
/// control plane); bodies larger than `max_body` bytes are refused (413)
/// before they are read whole, and an inference input whose contents come
/// to more than `limit` (JSON data grows as it is read) is refused (400)
/// as the services refuse it, before more than the limit is held.
pub fn router<P, I>(
    predictor: Arc<P>,
    inference: Arc<I>,
    max_body: usize,
    limit: RequestLimit,
) -> Router
where
    P: PredictorService,
    I: InferenceService,
{
    let v2 = Router::new()
        .route("/v2", get(oip::server_metadata::<I>))
        .route("/v2/health/live", get(oip::live::<I>))
        .route("/v2/health/ready", get(oip::ready::<I>))
        .route("/v2/repository/index", post(oip::repository_index::<I>))
        .route("/v2/models/stats", get(oip::all_statistics::<I>))
        .route("/v2/models/{model}", get(oip::model_metadata::<I>))
        .route(
            "/v2/models/{model}/versions/{version}",
            get(oip::model_metadata::<I>),
        )
        .route("/v2/models/{model}/ready", get(oip::model_ready::<I>))
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(oip::model_ready::<I>),
        )
        .route("/v2/models/{model}/config", get(oip::model_config::<I>))
        .route(
            "/v2/models/{model}/versions/{version}/config",
            get(oip::model_config::<I>),
        )
        .route("/v2/models/{model}/stats", get(oip::statistics::<I>))
        .route(
            "/v2/models/{model}/versions/{version}/stats",
            get(oip::statistics::<I>),
        )
        .route("/v2/models/{model}/infer", post(oip::infer::<I>))
        .route(
            "/v2/models/{model}/versions/{version}/infer",
            post(oip::infer::<I>),
        )
        .with_state(inference);
    let cortex = Router::new()
        .route("/{api}", post(cortex::predict::<P>))
        .with_state(predictor);
    v2.merge(cortex)
        .fallback(|| async {
            failure(
                StatusCode::NOT_FOUND,
                "no such endpoint: POST /<api> calls an API; the Open Inference Protocol is under /v2",
            )
        })
        .layer(axum::extract::Extension(limit))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        // Outermost, so axum's own refusals (a method a route does not
        // take, a path that does not decode) are rewritten too.
        .layer(axum::middleware::map_response(refusals::as_json))
}
