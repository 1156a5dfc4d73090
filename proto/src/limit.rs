//! The limit on one request's payload, which both planes apply with the
//! same rule and the same message: a worker refuses an input over its
//! `--max-request-bytes`, and the control plane refuses it first, before it
//! forwards anything (a worker would refuse it anyway, after the front
//! door had decoded, copied and sent it).

use crate::error::shown;
use crate::inference::ModelInferRequest;
use crate::v1::{PredictRequest, predict_request};

/// A payload over the limit: what it is (`input `x``, `payload`, `body`),
/// its size and the limit. A request error (INVALID_ARGUMENT, HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    /// What is too large, as messages name it: "input `x`", "payload".
    pub what: String,
    /// Its size in bytes.
    pub bytes: usize,
    /// The limit in bytes.
    pub limit: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is {} bytes; requests are limited to {} bytes",
            self.what, self.bytes, self.limit
        )
    }
}

impl std::error::Error for TooLarge {}

/// How messages name an input: "input `NAME`", the name cut when long.
pub fn input(name: &str) -> String {
    format!("input `{}`", shown(name))
}

/// The largest payload one request may carry, in bytes: each input's
/// contents, a JSON payload's text, a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimit(pub usize);

impl Default for RequestLimit {
    fn default() -> RequestLimit {
        RequestLimit(crate::DEFAULT_MAX_REQUEST_BYTES)
    }
}

impl RequestLimit {
    /// Refuses `bytes` of `what` (named only when refused) over the limit.
    pub fn check(self, what: impl FnOnce() -> String, bytes: usize) -> Result<(), TooLarge> {
        if bytes > self.0 {
            return Err(TooLarge {
                what: what(),
                bytes,
                limit: self.0,
            });
        }
        Ok(())
    }

    /// Each input of a ModelInfer call: its raw contents, or its typed
    /// contents as encoded (what a worker checks).
    pub fn check_infer(self, r: &ModelInferRequest) -> Result<(), TooLarge> {
        for (i, t) in r.inputs.iter().enumerate() {
            let bytes = match r.raw_input_contents.get(i) {
                Some(raw) => raw.len(),
                None => t.contents.as_ref().map_or(0, prost::Message::encoded_len),
            };
            self.check(|| input(&t.name), bytes)?;
        }
        Ok(())
    }

    /// A Predict call's payload: its JSON text, its body, or each tensor's
    /// data (what a worker checks).
    pub fn check_predict(self, r: &PredictRequest) -> Result<(), TooLarge> {
        match &r.payload {
            Some(predict_request::Payload::Json(text)) => {
                self.check(|| "payload".into(), text.len())
            }
            Some(predict_request::Payload::Body(body)) => self.check(|| "body".into(), body.len()),
            Some(predict_request::Payload::Tensors(t)) => t
                .tensors
                .iter()
                .try_for_each(|t| self.check(|| input(&t.name), t.data.len())),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::model_infer_request::InferInputTensor;

    #[test]
    fn inputs_over_the_limit_are_named() {
        let limit = RequestLimit(4);
        let request = ModelInferRequest {
            inputs: vec![
                InferInputTensor {
                    name: "a".into(),
                    ..Default::default()
                },
                InferInputTensor {
                    name: "b".into(),
                    ..Default::default()
                },
            ],
            raw_input_contents: vec![vec![0; 4].into(), vec![0; 5].into()],
            ..Default::default()
        };
        assert_eq!(
            limit.check_infer(&request).unwrap_err().to_string(),
            "input `b` is 5 bytes; requests are limited to 4 bytes"
        );
        let json = PredictRequest {
            payload: Some(predict_request::Payload::Json("[1, 2]".into())),
            ..Default::default()
        };
        assert_eq!(
            limit.check_predict(&json).unwrap_err().to_string(),
            "payload is 6 bytes; requests are limited to 4 bytes"
        );
        assert_eq!(RequestLimit(6).check_predict(&json), Ok(()));
    }
}
