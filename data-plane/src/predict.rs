//! `hotswap.v1.Predictor/Predict`, transport-free: Cortex-style JSON (or
//! named tensors) in, JSON (or tensors) out, with the version that answered;
//! for predictor classes also request bodies, query parameters and headers
//! in, text and bytes out (`body.rs`).

use std::sync::Arc;

use async_trait::async_trait;
use hotswap_common::catalog::ApiKind;
use hotswap_proto::limit::RequestLimit;
use hotswap_proto::service::PredictorService;
use hotswap_proto::v1::{
    OutputFormat, PredictRequest, PredictResponse, Tensors, predict_request, predict_response,
};
use hotswap_python::protocol::{Payload, Request};
use serde_json::Value;

use crate::Error;
use crate::body;
use crate::inference::off_runtime;
use crate::inference::{Call, Inputs};
use crate::tensor::{json, wire};
use crate::worker::Worker;

/// Both front-door services of a worker, over one [`Worker`].
#[derive(Clone)]
pub struct WorkerService {
    pub(crate) worker: Arc<Worker>,
    /// Largest request payload accepted, in bytes.
    pub(crate) max_request_bytes: usize,
}

impl WorkerService {
    /// The services of `worker`, refusing payloads over
    /// `max_request_bytes`.
    pub fn new(worker: Arc<Worker>, max_request_bytes: usize) -> WorkerService {
        WorkerService {
            worker,
            max_request_bytes,
        }
    }

    /// Refuses `bytes` of `what` over the limit, with the message the
    /// control plane also gives (it checks first, with the same limit).
    pub(crate) fn check_size(&self, what: &str, bytes: usize) -> Result<(), Error> {
        RequestLimit(self.max_request_bytes)
            .check(|| what.to_owned(), bytes)
            .map_err(|e| Error::invalid(e.to_string()))
    }
}

#[async_trait]
impl PredictorService for WorkerService {
    type Error = Error;

    async fn predict(&self, request: PredictRequest) -> Result<PredictResponse, Error> {
        match self.worker.catalog().kind(&request.api) {
            Some(ApiKind::Predictor) => self.predictor_predict(request).await,
            // An unknown API gets its NOT_FOUND from the model lookup.
            Some(ApiKind::Models) | None => self.model_predict(request).await,
        }
    }
}

impl WorkerService {
    /// An API whose models the worker runs: tensors (or JSON read with the
    /// model's signature) in, tensors or JSON out.
    async fn model_predict(&self, request: PredictRequest) -> Result<PredictResponse, Error> {
        let m = self
            .worker
            .catalog()
            .model_ref(&request.api, &request.model)?;
        // Everything that can be checked without the model is checked before
        // a version is picked: a bad request must not load or evict models.
        let sent_tensors = matches!(request.payload, Some(predict_request::Payload::Tensors(_)));
        let payload = match request.payload {
            None => return Err(Error::invalid("payload is missing: send json or tensors")),
            Some(predict_request::Payload::Body(_)) => {
                return Err(Error::invalid(format!(
                    "api `{}` serves a model: send the payload as json or tensors \
                     (a body is for predictor classes)",
                    hotswap_proto::error::shown(&request.api)
                )));
            }
            Some(predict_request::Payload::Json(text)) => {
                self.check_size("payload", text.len())?;
                // Syntax and sizes only: the typed read waits for the
                // model's signature.
                Inputs::Json(off_runtime(text.len(), move || json::JsonPayload::new(text)).await?)
            }
            Some(predict_request::Payload::Tensors(t)) => Inputs::Tensors(
                t.tensors
                    .iter()
                    .map(|t| {
                        self.check_size(&crate::tensor::input(&t.name), t.data.len())?;
                        wire::from_v1(t)
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let answer = self
            .worker
            .inference()
            .infer(Call {
                model: m.clone(),
                version: request.version,
                traffic: true,
                inputs: payload,
                outputs: Vec::new(),
            })
            .await?;
        let outputs = answer.outputs;
        let as_tensors = match OutputFormat::try_from(request.output_format) {
            Ok(OutputFormat::Tensors) => true,
            Ok(OutputFormat::Json) => false,
            _ => sent_tensors,
        };
        let output = if as_tensors {
            predict_response::Output::Tensors(Tensors {
                tensors: outputs.iter().map(wire::to_v1).collect(),
            })
        } else {
            // Large answers are written off the runtime threads.
            let elements: usize = outputs.iter().map(|t| t.data.len()).sum();
            let text = off_runtime(elements.saturating_mul(8), move || {
                let object = outputs
                    .iter()
                    .map(|t| Ok((t.name.clone(), json::to_json(t)?)))
                    .collect::<Result<serde_json::Map<String, Value>, Error>>()?;
                Ok(Value::Object(object).to_string())
            })
            .await?;
            predict_response::Output::Json(text)
        };
        Ok(PredictResponse {
            api: m.api,
            model: m.model,
            version: answer.key.version,
            output: Some(output),
            ..PredictResponse::default()
        })
    }

    /// An API served by a predictor class: the payload (JSON, or a body
    /// read by its Content-Type) goes to the user's `predict` with the
    /// query parameters and headers; its answer comes back as JSON, text,
    /// bytes or what a response object chose.
    async fn predictor_predict(&self, request: PredictRequest) -> Result<PredictResponse, Error> {
        let payload = match request.payload {
            Some(predict_request::Payload::Json(text)) => {
                self.check_size("payload", text.len())?;
                let value = off_runtime(text.len(), move || {
                    serde_json::from_str(&text)
                        .map_err(|e| Error::invalid(format!("payload is not valid JSON: {e}")))
                })
                .await?;
                Payload::Json(value)
            }
            Some(predict_request::Payload::Body(body)) => {
                self.check_size("body", body.len())?;
                // The decoded body's own buffer when nothing else shares it.
                body::payload(Vec::from(body), &request.content_type).await?
            }
            Some(predict_request::Payload::Tensors(_)) => {
                return Err(Error::invalid(format!(
                    "api `{}` is a Python predictor: send the payload as json or body",
                    hotswap_proto::error::shown(&request.api)
                )));
            }
            None => return Err(Error::invalid("payload is missing: send json or body")),
        };
        let call = Request {
            payload,
            query_params: request.query_params.into_iter().collect(),
            headers: request
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        };
        let output = self.worker.python().predict(&request.api, call).await?;
        Ok(body::response(request.api, output))
    }
}
