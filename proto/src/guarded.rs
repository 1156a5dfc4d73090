//! The gRPC codec of the front-door services: prost's, but a request is
//! decoded only when decoding it costs at most twice its size (or 1 MiB)
//! beyond the bytes already received. prost makes a struct of a few hundred
//! bytes for every repeated message, and eight bytes for every one-byte
//! varint: a ModelInfer of two million empty inputs, 4 MB on the wire, took
//! 628 MB before any check could see it. The cost is read off the wire
//! first, field by field, without allocating; a request over it is refused
//! INVALID_ARGUMENT, saying how to send it instead.

use std::marker::PhantomData;
use std::mem::size_of;

use prost::Message;
use prost::bytes::Buf;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

use crate::inference::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use crate::inference::{InferParameter, InferTensorContents, ModelInferRequest};
use crate::v1::{PredictRequest, Tensor};

/// Decoded bytes a request may cost beyond twice its size: small requests
/// (a few typed int64 elements, say) are never refused.
const ALLOWANCE: usize = 1 << 20;

/// prost's codec with the cost check on decoding (see the module's doc).
pub struct GuardedCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for GuardedCodec<T, U> {
    fn default() -> Self {
        GuardedCodec(PhantomData)
    }
}

impl<T, U> Codec for GuardedCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = GuardedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        GuardedDecoder(ProstCodec::<T, U>::default().decoder())
    }
}

/// prost's decoder, after the cost check.
pub struct GuardedDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default + 'static> Decoder for GuardedDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        if let Some(shape) = shape_of::<U>() {
            let wire = buf.chunk();
            // A message that does not parse is left to prost, which says
            // what is wrong with it.
            if wire.len() == buf.remaining()
                && let Some(cost) = cost(wire, shape)
                && cost > wire.len().saturating_mul(2).saturating_add(ALLOWANCE)
            {
                return Err(Status::invalid_argument(format!(
                    "the request is {} bytes but would take {cost} bytes decoded; send tensor \
                     data as raw contents (raw_input_contents, or Tensor.data) rather than many \
                     small items",
                    wire.len()
                )));
            }
        }
        self.0.decode(buf)
    }
}

/// Whether `wire` has the structure of a `U` as far as this module reads
/// it (every length within its bounds, nested messages included, no
/// groups): the front door, which forwards a request without decoding it,
/// decodes one that has not, so its caller gets prost's own account of
/// what is wrong, as the worker would give it.
pub fn well_formed<U: 'static>(wire: &[u8]) -> bool {
    shape_of::<U>().is_none_or(|shape| cost(wire, shape).is_some())
}

/// The shape of the requests that are checked: what clients send.
fn shape_of<U: 'static>() -> Option<&'static Shape> {
    let id = std::any::TypeId::of::<U>();
    if id == std::any::TypeId::of::<ModelInferRequest>() {
        Some(&MODEL_INFER_REQUEST)
    } else if id == std::any::TypeId::of::<PredictRequest>() {
        Some(&PREDICT_REQUEST)
    } else {
        None
    }
}

/// What a message costs decoded: its struct, and per field number what
/// the field adds.
struct Shape {
    size: usize,
    fields: &'static [(u32, Field)],
}

enum Field {
    /// A message (repeated, a map entry, or one).
    Message(&'static Shape),
    /// Owned bytes or text: `each` for its container, plus its length.
    Owned { each: usize },
    /// Bytes shared with the receive buffer: the container only.
    Shared,
    /// Packed varints, `elem` bytes each decoded (also sent unpacked).
    Varints { elem: usize },
}

/// A map entry of `HashMap<String, V>`: the pair and the table's control
/// bytes.
const fn entry<V>() -> usize {
    size_of::<(String, V)>() + 8
}

static PARAMETER: Shape = Shape {
    size: 0,
    fields: &[(3, Field::Owned { each: 0 })],
};
static PARAMETER_ENTRY: Shape = Shape {
    size: entry::<InferParameter>(),
    fields: &[
        (1, Field::Owned { each: 0 }),
        (2, Field::Message(&PARAMETER)),
    ],
};
static CONTENTS: Shape = Shape {
    size: size_of::<InferTensorContents>(),
    fields: &[
        (1, Field::Varints { elem: 1 }),
        (2, Field::Varints { elem: 4 }),
        (3, Field::Varints { elem: 8 }),
        (4, Field::Varints { elem: 4 }),
        (5, Field::Varints { elem: 8 }),
        (6, Field::Owned { each: 0 }),
        (7, Field::Owned { each: 0 }),
        (
            8,
            Field::Owned {
                each: size_of::<Vec<u8>>(),
            },
        ),
    ],
};
static INPUT: Shape = Shape {
    size: size_of::<InferInputTensor>(),
    fields: &[
        (1, Field::Owned { each: 0 }),
        (2, Field::Owned { each: 0 }),
        (3, Field::Varints { elem: 8 }),
        (4, Field::Message(&PARAMETER_ENTRY)),
        (5, Field::Message(&CONTENTS)),
    ],
};
static OUTPUT: Shape = Shape {
    size: size_of::<InferRequestedOutputTensor>(),
    fields: &[
        (1, Field::Owned { each: 0 }),
        (2, Field::Message(&PARAMETER_ENTRY)),
    ],
};
static MODEL_INFER_REQUEST: Shape = Shape {
    size: size_of::<ModelInferRequest>(),
    fields: &[
        (1, Field::Owned { each: 0 }),
        (2, Field::Owned { each: 0 }),
        (3, Field::Owned { each: 0 }),
        (4, Field::Message(&PARAMETER_ENTRY)),
        (5, Field::Message(&INPUT)),
        (6, Field::Message(&OUTPUT)),
        (7, Field::Shared),
    ],
};
static STRING_ENTRY: Shape = Shape {
    size: entry::<String>(),
    fields: &[(1, Field::Owned { each: 0 }), (2, Field::Owned { each: 0 })],
};
static TENSOR: Shape = Shape {
    size: size_of::<Tensor>(),
    fields: &[
        (1, Field::Owned { each: 0 }),
        (2, Field::Owned { each: 0 }),
        (3, Field::Varints { elem: 8 }),
        (4, Field::Owned { each: 0 }),
    ],
};
static TENSORS: Shape = Shape {
    size: 0,
    fields: &[(1, Field::Message(&TENSOR))],
};
static PREDICT_REQUEST: Shape = Shape {
    size: size_of::<PredictRequest>(),
    fields: &[
        (1, Field::Owned { each: 0 }),
        (2, Field::Owned { each: 0 }),
        (3, Field::Owned { each: 0 }),
        (4, Field::Owned { each: 0 }),
        (5, Field::Message(&TENSORS)),
        (6, Field::Message(&STRING_ENTRY)),
        (8, Field::Shared),
        (9, Field::Owned { each: 0 }),
        (10, Field::Message(&STRING_ENTRY)),
    ],
};

/// What `wire`, a message of `shape`, costs decoded beyond its own bytes;
/// None when it is not a well-formed message.
fn cost(mut wire: &[u8], shape: &Shape) -> Option<usize> {
    let mut total = shape.size;
    while !wire.is_empty() {
        let key = varint(&mut wire)?;
        let (number, wire_type) = (u32::try_from(key >> 3).ok()?, key & 7);
        let field = shape
            .fields
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, f)| f);
        let added = match wire_type {
            // A varint: one element of a repeated number sent unpacked.
            0 => {
                varint(&mut wire)?;
                match field {
                    Some(Field::Varints { elem }) => *elem,
                    _ => 0,
                }
            }
            1 => {
                wire = wire.get(8..)?;
                8
            }
            5 => {
                wire = wire.get(4..)?;
                4
            }
            2 => {
                let len = usize::try_from(varint(&mut wire)?).ok()?;
                let (value, rest) = wire.split_at_checked(len)?;
                wire = rest;
                match field {
                    Some(Field::Message(inner)) => cost(value, inner)?,
                    Some(Field::Owned { each }) => each + len,
                    Some(Field::Shared) => size_of::<prost::bytes::Bytes>(),
                    Some(Field::Varints { elem }) => {
                        // Each varint ends in a byte below 0x80.
                        value.iter().filter(|b| **b < 0x80).count() * elem
                    }
                    // Unknown fields are skipped by prost.
                    None => 0,
                }
            }
            _ => return None,
        };
        total = total.saturating_add(added);
    }
    Some(total)
}

/// The varint at the front of `wire`, consumed.
pub(crate) fn varint(wire: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in 0..10 {
        let (&byte, rest) = wire.split_first()?;
        *wire = rest;
        value |= u64::from(byte & 0x7f) << (7 * shift);
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost_of<M: Message>(message: &M, shape: &Shape) -> usize {
        cost(&message.encode_to_vec(), shape).expect("a well-formed message")
    }

    #[test]
    fn many_small_items_cost_far_more_than_their_bytes() {
        let empty = ModelInferRequest {
            inputs: vec![InferInputTensor::default(); 10_000],
            ..Default::default()
        };
        let wire = empty.encode_to_vec().len();
        assert_eq!(wire, 20_000);
        let decoded = cost_of(&empty, &MODEL_INFER_REQUEST);
        assert!(
            decoded >= 10_000 * size_of::<InferInputTensor>(),
            "{decoded}"
        );

        let ids = ModelInferRequest {
            inputs: vec![InferInputTensor {
                contents: Some(InferTensorContents {
                    int64_contents: vec![1; 100_000],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let decoded = cost_of(&ids, &MODEL_INFER_REQUEST);
        assert!(
            decoded >= 800_000,
            "varints decode to 8 bytes each: {decoded}"
        );
    }

    #[test]
    fn raw_contents_cost_about_their_bytes() {
        let raw = ModelInferRequest {
            model_name: "m".to_owned(),
            inputs: vec![InferInputTensor {
                name: "x".to_owned(),
                datatype: "FP32".to_owned(),
                shape: vec![1, 1_000_000],
                ..Default::default()
            }],
            raw_input_contents: vec![prost::bytes::Bytes::from(vec![0u8; 4_000_000])],
            ..Default::default()
        };
        let decoded = cost_of(&raw, &MODEL_INFER_REQUEST);
        assert!(decoded < 4096, "raw contents share the buffer: {decoded}");
        let json = PredictRequest {
            api: "a".to_owned(),
            payload: Some(crate::v1::predict_request::Payload::Json(
                "[1]".repeat(1000),
            )),
            ..Default::default()
        };
        let decoded = cost_of(&json, &PREDICT_REQUEST);
        assert!(
            decoded < 3000 + size_of::<PredictRequest>() + 64,
            "{decoded}"
        );
    }

    #[test]
    fn malformed_messages_are_left_to_prost() {
        assert_eq!(cost(&[0x2a, 0x05, 0x01], &MODEL_INFER_REQUEST), None);
        assert_eq!(cost(&[0xff; 11], &MODEL_INFER_REQUEST), None);
    }
}
