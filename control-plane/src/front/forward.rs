//! Where a ModelInfer or Predict goes and what the worker is asked, from
//! the routing fields alone; and the two calls forwarded as bytes (the
//! tonic adapter is `forwarding.rs`). The decoded calls of the HTTP
//! bindings take the same decisions.

use hotswap_common::catalog::ApiKind;
use hotswap_proto::inference::ModelInferRequest;
use hotswap_proto::routing::{InferHead, PredictHead, append_text, text_field};
use hotswap_proto::v1::PredictRequest;
use prost::Message;
use prost::bytes::{Bytes, BytesMut};

use super::{FrontDoor, forwarded_version, resolve};
use crate::Error;
use crate::forwarding::Routed;
use crate::registry::Route;
use crate::worker::Wire;

/// Where a ModelInfer goes.
pub(crate) struct InferRoute {
    pub(crate) route: Route,
    /// The model's name as the worker is asked for it.
    pub(crate) name: String,
    /// The version as the worker is asked for it.
    pub(crate) version: String,
}

/// Where a Predict goes.
pub(crate) struct PredictRoute {
    pub(crate) route: Route,
    /// The model and version the worker is asked for, for a model of an
    /// API of models (a predictor class takes the call as it came).
    pub(crate) rename: Option<(String, String)>,
}

impl FrontDoor {
    /// A ModelInfer for `name` at `version`: a call naming no version may
    /// be sent to one by `traffic`, and the worker is then asked for that
    /// number.
    pub(crate) fn route_infer(&self, name: &str, version: &str) -> Result<InferRoute, Error> {
        let catalog = self.catalog();
        let m = catalog.model_by_name(name)?;
        let picked = catalog.pick_by_traffic(&m, version);
        let version = picked.as_deref().unwrap_or(version);
        let key = resolve(&catalog, &self.registry, &m, version)?;
        Ok(InferRoute {
            name: m.protocol_name(),
            version: forwarded_version(version, &key),
            route: Route::Version(key),
        })
    }

    /// A Predict for `api` (its `model` at `version`).
    pub(crate) fn route_predict(
        &self,
        api: &str,
        model: &str,
        version: &str,
    ) -> Result<PredictRoute, Error> {
        let catalog = self.catalog();
        match catalog.kind(api) {
            // Served by its predictor class, wherever one is running.
            Some(ApiKind::Predictor) => Ok(PredictRoute {
                route: Route::Predictor(api.to_owned()),
                rename: None,
            }),
            // An unknown API gets its NOT_FOUND from the model lookup.
            Some(ApiKind::Models) | None => {
                let m = catalog.model_ref(api, model)?;
                let picked = catalog.pick_by_traffic(&m, version);
                let version = picked.as_deref().unwrap_or(version);
                let key = resolve(&catalog, &self.registry, &m, version)?;
                Ok(PredictRoute {
                    rename: Some((m.model.clone(), forwarded_version(version, &key))),
                    route: Route::Version(key),
                })
            }
        }
    }

    /// ModelInfer as it came: routed by its head, its bytes forwarded with
    /// the name and version the worker is asked for appended, the worker's
    /// answer passed back with the caller's name for the model.
    pub(crate) async fn forward_infer(&self, request: Routed<InferHead>) -> Result<Wire, Error> {
        let Routed { head, wire } = request;
        let to = self.route_infer(&head.model_name, &head.model_version)?;
        // No input is larger than the whole message.
        if wire.len() > self.limit.0 {
            let decoded = ModelInferRequest::decode(wire.clone()).map_err(undecodable)?;
            self.limit.check_infer(&decoded)?;
        }
        let renamed = to.name != head.model_name;
        let mut suffix = BytesMut::new();
        if renamed {
            append_text(&mut suffix, 1, &to.name);
        }
        if to.version != head.model_version {
            append_text(&mut suffix, 2, &to.version);
        }
        let forwarded = Wire {
            body: wire,
            suffix: suffix.freeze(),
        };
        let answer = self
            .router
            .call(&to.route, |w| {
                let request = forwarded.clone();
                async move { w.model_infer_wire(request).await }
            })
            .await?;
        // The worker echoes the name it was asked for (field 1).
        let suffix = if renamed {
            text_field(1, &head.model_name)
        } else {
            Bytes::new()
        };
        Ok(Wire {
            body: answer,
            suffix,
        })
    }

    /// Predict as it came, as [`FrontDoor::forward_infer`]; the answer
    /// goes back untouched.
    pub(crate) async fn forward_predict(
        &self,
        request: Routed<PredictHead>,
    ) -> Result<Wire, Error> {
        let Routed { head, wire } = request;
        let to = self.route_predict(&head.api, &head.model, &head.version)?;
        if wire.len() > self.limit.0 {
            let decoded = PredictRequest::decode(wire.clone()).map_err(undecodable)?;
            self.limit.check_predict(&decoded)?;
        }
        let mut suffix = BytesMut::new();
        if let Some((model, version)) = &to.rename {
            if *model != head.model {
                append_text(&mut suffix, 2, model);
            }
            if *version != head.version {
                append_text(&mut suffix, 3, version);
            }
        }
        let forwarded = Wire {
            body: wire,
            suffix: suffix.freeze(),
        };
        let answer = self
            .router
            .call(&to.route, |w| {
                let request = forwarded.clone();
                async move { w.predict_wire(request).await }
            })
            .await?;
        Ok(Wire {
            body: answer,
            suffix: Bytes::new(),
        })
    }
}

/// A message the head could be read from but not the whole of it: what a
/// worker would answer (tonic's own refusal).
fn undecodable(e: prost::DecodeError) -> Error {
    Error::Undecodable(e.to_string())
}
