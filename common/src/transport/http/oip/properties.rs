//! Property tests of the inference request reader (DESIGN.md §7): whatever
//! bytes a caller sends, with whatever `Inference-Header-Content-Length`,
//! the reader answers with a request or a 400, never a panic; and JSON
//! data it accepts is exactly the little-endian bytes of the numbers sent.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use hotswap_proto::limit::RequestLimit;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::request::read;
use super::{HEADER_LENGTH, ModelPath};

fn path() -> ModelPath {
    ModelPath {
        model: "m".to_owned(),
        version: String::new(),
    }
}

/// Reads `body` with `header` as the header length, under `limit`: Ok, or
/// an error answered 400. A panic fails the property.
fn answers(header: Option<&str>, body: &[u8], limit: usize) -> Result<(), TestCaseError> {
    let mut headers = HeaderMap::new();
    if let Some(value) = header.and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert(HEADER_LENGTH, value);
    }
    let body = Bytes::copy_from_slice(body);
    if let Err(bad) = read(path(), &headers, &body, RequestLimit(limit)) {
        prop_assert_eq!(bad.into_response().status(), StatusCode::BAD_REQUEST);
    }
    Ok(())
}

/// A JSON value shaped like tensor data, or like what a careless or
/// hostile caller puts where data goes.
fn data() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![Just(1e39), Just(-3.5e38), Just(f64::MAX), Just(0.5)].prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
        Just(Value::Null),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            inner.prop_map(|v| json!({ "k": v })),
        ]
    })
}

fn datatype() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
            "FP16", "BF16", "FP32", "FP64", "BYTES",
        ])
        .prop_map(str::to_owned),
        ".{0,6}",
    ]
}

/// An input object: each field present or not, of its type or not.
fn input() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop_oneof![".{0,4}".prop_map(Value::from), data()]),
        prop::option::of(datatype()),
        prop::option::of(prop_oneof![
            prop::collection::vec(-2i64..5, 0..4).prop_map(Value::from),
            data(),
        ]),
        prop::option::of(prop_oneof![
            (0u64..16).prop_map(|n| json!({ "binary_data_size": n })),
            data().prop_map(|v| json!({ "binary_data_size": v })),
        ]),
        prop::option::of(data()),
    )
        .prop_map(|(name, datatype, shape, parameters, data)| {
            let mut object = serde_json::Map::new();
            let fields = [
                ("name", name),
                ("datatype", datatype.map(Value::from)),
                ("shape", shape),
                ("parameters", parameters),
                ("data", data),
            ];
            for (field, value) in fields {
                if let Some(value) = value {
                    object.insert(field.to_owned(), value);
                }
            }
            Value::Object(object)
        })
}

/// A whole request: a head of inputs and outputs, binary bytes after it,
/// and the header length (right, wrong or absent).
fn request() -> impl Strategy<Value = (Option<String>, Vec<u8>)> {
    (
        prop::collection::vec(input(), 0..4),
        prop::option::of(prop::collection::vec(
            prop_oneof![".{0,4}".prop_map(|n| json!({ "name": n })), data(),],
            0..3,
        )),
        prop::collection::vec(any::<u8>(), 0..24),
        prop_oneof![Just(0u8), Just(1), Just(2)],
        any::<u16>(),
    )
        .prop_map(|(inputs, outputs, tail, header_kind, wrong)| {
            let mut head = json!({ "inputs": inputs });
            if let Some(outputs) = outputs {
                head["outputs"] = Value::from(outputs);
            }
            let mut body = serde_json::to_vec(&head).expect("JSON");
            let head_len = body.len();
            body.extend_from_slice(&tail);
            let header = match header_kind {
                0 => None,
                1 => Some(head_len.to_string()),
                _ => Some(wrong.to_string()),
            };
            (header, body)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_get_an_answer(
        body in prop::collection::vec(any::<u8>(), 0..256),
        header in prop::option::of(prop_oneof![
            any::<u32>().prop_map(|n| n.to_string()),
            ".{0,12}",
        ]),
        limit in 0usize..64,
    ) {
        answers(header.as_deref(), &body, limit)?;
    }

    #[test]
    fn any_request_shaped_json_gets_an_answer(
        (header, body) in request(),
        limit in prop_oneof![Just(8usize), Just(1 << 20)],
        cut in any::<prop::sample::Index>(),
    ) {
        answers(header.as_deref(), &body, limit)?;
        // And every prefix of it (a body cut short).
        let cut = cut.index(body.len() + 1);
        answers(header.as_deref(), &body[..cut], limit)?;
    }

    #[test]
    fn accepted_numbers_are_their_little_endian_bytes(
        values in prop::collection::vec(any::<f32>().prop_filter("finite", |f| f.is_finite()), 0..32),
        ints in prop::collection::vec(any::<i64>(), 0..32),
    ) {
        let body = serde_json::to_vec(&json!({"inputs": [
            {"name": "f", "datatype": "FP32", "shape": [values.len()], "data": values},
            {"name": "i", "datatype": "INT64", "shape": [ints.len()], "data": ints},
        ]}))
        .expect("JSON");
        let (request, _) = read(path(), &HeaderMap::new(), &Bytes::from(body), RequestLimit::default())
            .expect("a valid request");
        let floats: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let longs: Vec<u8> = ints.iter().flat_map(|v| v.to_le_bytes()).collect();
        prop_assert_eq!(request.raw_input_contents[0].as_ref(), floats.as_slice());
        prop_assert_eq!(request.raw_input_contents[1].as_ref(), longs.as_slice());
    }
}
