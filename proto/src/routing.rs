//! What the front door routes a request by, read off its encoded bytes: the
//! model's name and version of a ModelInfer, the API, model and version of
//! a Predict. The rest of the request (its tensors) is never decoded on the
//! way through; the control plane forwards the bytes it received, with the
//! fields it changes appended. A protobuf parser keeps the last value of a
//! field that appears more than once, so an appended `model_version`
//! replaces the client's on the worker without rewriting the message.

use prost::bytes::{BufMut, Bytes, BytesMut};

use crate::guarded::varint;
use crate::inference::ModelInferRequest;
use crate::v1::PredictRequest;

/// The routing fields of a ModelInferRequest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InferHead {
    /// `model_name` (field 1).
    pub model_name: String,
    /// `model_version` (field 2).
    pub model_version: String,
}

/// The routing fields of a `hotswap.v1.PredictRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PredictHead {
    /// `api` (field 1).
    pub api: String,
    /// `model` (field 2).
    pub model: String,
    /// `version` (field 3).
    pub version: String,
}

/// A request's routing fields, read off its wire form.
pub trait Head: Sized + Send + 'static {
    /// The message the fields are read from.
    type Message: prost::Message + Default + Send + 'static;

    /// The fields, or None when `wire` is not a message this reader
    /// follows (malformed, or using groups): the message is then decoded
    /// whole, and prost says what is wrong with it.
    fn read(wire: &[u8]) -> Option<Self>;

    /// The fields of a decoded message.
    fn of(message: &Self::Message) -> Self;
}

impl Head for InferHead {
    type Message = ModelInferRequest;

    fn of(m: &ModelInferRequest) -> InferHead {
        InferHead {
            model_name: m.model_name.clone(),
            model_version: m.model_version.clone(),
        }
    }

    fn read(wire: &[u8]) -> Option<InferHead> {
        let mut head = InferHead::default();
        each_field(wire, |number, value| {
            match number {
                1 => head.model_name = text(value?)?,
                2 => head.model_version = text(value?)?,
                _ => {}
            }
            Some(())
        })?;
        Some(head)
    }
}

impl Head for PredictHead {
    type Message = PredictRequest;

    fn of(m: &PredictRequest) -> PredictHead {
        PredictHead {
            api: m.api.clone(),
            model: m.model.clone(),
            version: m.version.clone(),
        }
    }

    fn read(wire: &[u8]) -> Option<PredictHead> {
        let mut head = PredictHead::default();
        each_field(wire, |number, value| {
            match number {
                1 => head.api = text(value?)?,
                2 => head.model = text(value?)?,
                3 => head.version = text(value?)?,
                _ => {}
            }
            Some(())
        })?;
        Some(head)
    }
}

/// Appends field `number` holding `value` (a string) to `out`: on the
/// receiving end it replaces whatever the message said before.
pub fn append_text(out: &mut BytesMut, number: u32, value: &str) {
    put_varint(out, u64::from(number) << 3 | 2);
    put_varint(out, value.len() as u64);
    out.put_slice(value.as_bytes());
}

/// Field `number` holding `value`, encoded alone.
pub fn text_field(number: u32, value: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(value.len() + 6);
    append_text(&mut out, number, value);
    out.freeze()
}

fn put_varint(out: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// Calls `f` with each top-level field's number and, for length-delimited
/// ones, its value (None for varints and fixed-width values). None when
/// the wire is malformed or `f` says so.
fn each_field(mut wire: &[u8], mut f: impl FnMut(u32, Option<&[u8]>) -> Option<()>) -> Option<()> {
    while !wire.is_empty() {
        let key = varint(&mut wire)?;
        let number = u32::try_from(key >> 3).ok().filter(|n| *n > 0)?;
        let value = match key & 7 {
            0 => {
                varint(&mut wire)?;
                None
            }
            1 => {
                wire = wire.get(8..)?;
                None
            }
            5 => {
                wire = wire.get(4..)?;
                None
            }
            2 => {
                let len = usize::try_from(varint(&mut wire)?).ok()?;
                let (value, rest) = wire.split_at_checked(len)?;
                wire = rest;
                Some(value)
            }
            // Groups are not in these messages; anything else is malformed.
            _ => return None,
        };
        f(number, value)?;
    }
    Some(())
}

fn text(value: &[u8]) -> Option<String> {
    std::str::from_utf8(value).ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::model_infer_request::InferInputTensor;
    use crate::v1::predict_request;
    use prost::Message;

    #[test]
    fn the_head_is_read_and_appended_fields_win() {
        let request = ModelInferRequest {
            model_name: "iris".into(),
            model_version: "latest".into(),
            id: "x".into(),
            inputs: vec![InferInputTensor {
                name: "input".into(),
                datatype: "FP32".into(),
                shape: vec![1, 4],
                ..Default::default()
            }],
            raw_input_contents: vec![Bytes::from(vec![0u8; 16])],
            ..Default::default()
        };
        let wire = request.encode_to_vec();
        assert_eq!(
            InferHead::read(&wire),
            Some(InferHead {
                model_name: "iris".into(),
                model_version: "latest".into(),
            })
        );
        let mut forwarded = BytesMut::from(&wire[..]);
        append_text(&mut forwarded, 1, "api/iris");
        append_text(&mut forwarded, 2, &"7".repeat(200));
        let decoded = ModelInferRequest::decode(forwarded.freeze()).unwrap();
        assert_eq!(decoded.model_name, "api/iris");
        assert_eq!(decoded.model_version, "7".repeat(200));
        assert_eq!(decoded.raw_input_contents, request.raw_input_contents);
        assert_eq!(decoded.inputs, request.inputs);

        let predict = PredictRequest {
            api: "a".into(),
            model: "m".into(),
            version: "3".into(),
            payload: Some(predict_request::Payload::Json("[1]".into())),
            ..Default::default()
        };
        assert_eq!(
            PredictHead::read(&predict.encode_to_vec()),
            Some(PredictHead {
                api: "a".into(),
                model: "m".into(),
                version: "3".into(),
            })
        );
    }

    #[test]
    fn malformed_wire_has_no_head() {
        let wire = ModelInferRequest {
            model_name: "iris".into(),
            ..Default::default()
        }
        .encode_to_vec();
        // Cut inside the name, a name that is not UTF-8, a group.
        assert_eq!(InferHead::read(&wire[..wire.len() - 1]), None);
        assert_eq!(InferHead::read(&[0x0a, 0x01, 0xff]), None);
        assert_eq!(InferHead::read(&[0x0b, 0x0c]), None);
        assert_eq!(InferHead::read(&[]), Some(InferHead::default()));
    }
}
