//! Property tests of the JSON tensor reader (DESIGN.md §7): any text as a
//! payload, read against a model's signature, gives tensors or a request
//! error (INVALID_ARGUMENT, a 4xx), never a panic; and tensors it reads
//! hold exactly the numbers sent.

use hotswap_proto::error::{Code, ServiceError};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{JsonPayload, from_json, inputs};
use crate::signature::{Signature, TensorSpec};
use crate::tensor::{DataType, TensorData};

/// A signature of one or two inputs of the given types.
fn signature(types: &[DataType]) -> Signature {
    Signature {
        inputs: types
            .iter()
            .enumerate()
            .map(|(i, &dtype)| TensorSpec {
                name: ["x", "y"][i % 2].to_owned(),
                dtype,
                shape: vec![-1, 2],
            })
            .collect(),
        outputs: vec![],
    }
}

fn dtype() -> impl Strategy<Value = DataType> {
    prop::sample::select(DataType::ALL.to_vec())
}

/// JSON shaped like a payload, or like what a careless or hostile caller
/// sends instead.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![Just(1e39), Just(-3.5e38), Just(2.0), Just(0.5)].prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        ".{0,6}".prop_map(Value::from),
        Just(Value::Null),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((prop_oneof![Just("x"), Just("y"), Just("z")], inner), 0..3)
                .prop_map(|fields| {
                    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
        ]
    })
}

/// Ok, or an error a caller is told is theirs.
fn answered<T>(read: Result<T, crate::Error>) -> Result<(), TestCaseError> {
    if let Err(e) = read {
        prop_assert_eq!(e.code(), Code::InvalidArgument, "{}", e);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_gets_tensors_or_a_request_error(
        text in prop_oneof![
            ".{0,64}",
            prop::collection::vec(any::<u8>(), 0..64)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ],
        types in prop::collection::vec(dtype(), 1..3),
    ) {
        answered(JsonPayload::new(text).and_then(|p| p.inputs(&signature(&types))))?;
    }

    #[test]
    fn any_json_gets_tensors_or_a_request_error(
        payload in value(),
        types in prop::collection::vec(dtype(), 1..3),
        cut in any::<prop::sample::Index>(),
    ) {
        let signature = signature(&types);
        let text = payload.to_string();
        answered(JsonPayload::new(text.clone()).and_then(|p| p.inputs(&signature)))?;
        // The same payload as a Python predictor's client passes it.
        answered(inputs(&signature, &payload))?;
        answered(from_json("x", types[0], &payload))?;
        // And cut short.
        let mut end = cut.index(text.len() + 1);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        answered(JsonPayload::new(text[..end].to_owned()).and_then(|p| p.inputs(&signature)))?;
    }

    #[test]
    fn accepted_numbers_are_the_numbers_sent(
        rows in prop::collection::vec((any::<f32>(), any::<f32>()), 0..16)
            .prop_filter("finite", |r| r.iter().all(|(a, b)| a.is_finite() && b.is_finite())),
    ) {
        let text = json!({ "x": rows.iter().map(|&(a, b)| vec![a, b]).collect::<Vec<_>>() })
            .to_string();
        let read = JsonPayload::new(text)
            .and_then(|p| p.inputs(&signature(&[DataType::F32])))
            .expect("a valid payload");
        let flat: Vec<f32> = rows.iter().flat_map(|&(a, b)| [a, b]).collect();
        prop_assert_eq!(&read[0].data, &TensorData::F32(flat));
    }
}
