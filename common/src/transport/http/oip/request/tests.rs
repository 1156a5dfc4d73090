//! The reader's answers: requests read, and each malformed one refused
//! with what is wrong.

use super::*;

fn read_body(
    header_len: Option<&str>,
    body: &[u8],
) -> Result<(pb::ModelInferRequest, BinaryOutputs), BadRequest> {
    let mut headers = HeaderMap::new();
    if let Some(n) = header_len {
        headers.insert(HEADER_LENGTH, n.parse().expect("header value"));
    }
    let path = ModelPath {
        model: "m".to_owned(),
        version: String::new(),
    };
    read(
        path,
        &headers,
        &Bytes::copy_from_slice(body),
        RequestLimit::default(),
    )
}

#[test]
fn json_and_binary_inputs_are_read() {
    let head = br#"{"id":"7","inputs":[
        {"name":"a","datatype":"INT32","shape":[2],"data":[1,2]},
        {"name":"b","datatype":"UINT8","shape":[3],"parameters":{"binary_data_size":3}}],
        "outputs":[{"name":"y","parameters":{"binary_data":true}},{"name":"z"}]}"#;
    let mut body = head.to_vec();
    body.extend_from_slice(&[7, 8, 9]);
    let (request, binary) =
        read_body(Some(&head.len().to_string()), &body).expect("a valid request");
    assert_eq!(request.id, "7");
    assert_eq!(request.model_name, "m");
    assert_eq!(
        request.raw_input_contents,
        vec![vec![1, 0, 0, 0, 2, 0, 0, 0], vec![7, 8, 9]]
    );
    assert_eq!(request.inputs[1].shape, vec![3]);
    assert_eq!(request.outputs.len(), 2);
    assert!(binary.wants("y") && !binary.wants("z"));
}

#[test]
fn malformed_requests_say_what_is_wrong() {
    for (header_len, body, message) in [
        (
            Some("99"),
            &br#"{}"#[..],
            "inference-header-content-length must be a length within the body (2 bytes)",
        ),
        (None, br#"[]"#, "the request must be a JSON object"),
        (None, br#"{"inputs":{}}"#, "inputs must be a list"),
        (
            None,
            br#"{"inputs":[{"name":"a","datatype":"FP32","shape":[1.5]}]}"#,
            "inputs[0].shape: dimensions are integers",
        ),
        (
            None,
            br#"{"inputs":[{"name":"a","datatype":"FP32","shape":[1]}]}"#,
            "input `a` has no data",
        ),
        (
            None,
            br#"{"inputs":[{"name":"a","datatype":"INT8","shape":[1],"data":[300]}]}"#,
            "input `a`: 300 is not a INT8 element",
        ),
        (
            None,
            br#"{"inputs":[],"outputs":[{"name":1}]}"#,
            "outputs[0].name must be a string",
        ),
        (
            Some("13"),
            br#"{"inputs":[]}xyz"#,
            "3 bytes after the inputs' binary data belong to no input",
        ),
        (None, br#"{"inputs":[1]}"#, "inputs[0].name must be a string"),
        (
            None,
            br#"{"inputs":[{"name":"a","datatype":"FP32","shape":{}}]}"#,
            "inputs[0].shape must be a list",
        ),
        (
            None,
            br#"{"inputs":[{"name":"a","datatype":"FP32","shape":[1],"data":[1e39]}]}"#,
            "input `a`: 1e+39 is not a FP32 element",
        ),
        (
            None,
            br#"{"inputs":[{"name":"a","datatype":"UINT8","shape":[1],
                "parameters":{"binary_data_size":-1}}]}"#,
            "inputs[0].parameters.binary_data_size: a length",
        ),
        (
            Some("92"),
            br#"{"inputs":[{"name":"a","datatype":"UINT8","shape":[9],"parameters":{"binary_data_size":9}}]}xyz"#,
            "input `a`: binary_data_size 9 runs past the body's end",
        ),
        (None, br#"{"inputs":[], "#, "the request is not valid JSON: EOF while parsing a value at line 1 column 14"),
    ] {
        assert_eq!(
            read_body(header_len, body)
                .err()
                .map(|e| hotswap_proto::error::report(&e))
                .as_deref(),
            Some(message),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

fn read_limited(
    header_len: Option<usize>,
    body: &[u8],
    limit: usize,
) -> Result<pb::ModelInferRequest, String> {
    let mut headers = HeaderMap::new();
    if let Some(n) = header_len {
        headers.insert(HEADER_LENGTH, n.into());
    }
    let path = ModelPath {
        model: "m".to_owned(),
        version: String::new(),
    };
    read(
        path,
        &headers,
        &Bytes::copy_from_slice(body),
        RequestLimit(limit),
    )
    .map(|(request, _)| request)
    .map_err(|e| hotswap_proto::error::report(&e))
}

#[test]
fn inputs_over_the_limit_are_refused_as_a_worker_refuses_them() {
    let json = br#"{"inputs":[{"name":"x","datatype":"INT16","shape":[5],"data":[1,2,3,4,5]}]}"#;
    assert_eq!(
        read_limited(None, json, 8).unwrap_err(),
        "input `x` is 10 bytes; requests are limited to 8 bytes"
    );
    assert!(read_limited(None, json, 10).is_ok());
    let head = br#"{"inputs":[{"name":"b","datatype":"UINT8","shape":[9],"parameters":{"binary_data_size":9}}]}"#;
    let mut body = head.to_vec();
    body.extend_from_slice(&[0; 9]);
    assert_eq!(
        read_limited(Some(head.len()), &body, 8).unwrap_err(),
        "input `b` is 9 bytes; requests are limited to 8 bytes"
    );
}

#[test]
fn shapes_have_at_most_64_dimensions() {
    let shape = |n: usize| vec!["1"; n].join(",");
    let body = |n: usize| {
        format!(
            r#"{{"inputs":[{{"name":"x","datatype":"UINT8","shape":[{}],"data":[1]}}]}}"#,
            shape(n)
        )
    };
    assert!(read_limited(None, body(MAX_DIMENSIONS).as_bytes(), 8).is_ok());
    assert_eq!(
        read_limited(None, body(MAX_DIMENSIONS + 1).as_bytes(), 8).unwrap_err(),
        "inputs[0].shape: at most 64 dimensions"
    );
}

#[test]
fn binary_inputs_are_slices_of_the_body() {
    let head = br#"{"inputs":[{"name":"b","datatype":"UINT8","shape":[3],"parameters":{"binary_data_size":3}}]}"#;
    let mut body = head.to_vec();
    body.extend_from_slice(&[7, 8, 9]);
    let body = Bytes::from(body);
    let (request, _) = read(
        ModelPath {
            model: "m".to_owned(),
            version: String::new(),
        },
        &{
            let mut h = HeaderMap::new();
            h.insert(HEADER_LENGTH, head.len().into());
            h
        },
        &body,
        RequestLimit::default(),
    )
    .expect("valid");
    let raw = &request.raw_input_contents[0];
    assert_eq!(raw.as_ref(), &[7, 8, 9]);
    assert_eq!(raw.as_ptr(), body[head.len()..].as_ptr(), "not a copy");
}
