//! Tensors from and to JSON nested lists, Cortex-style: `[[5.1, 3.5, 1.4,
//! 0.2]]` is a float tensor of shape [1, 4] once the model says the input is
//! FP32. Leaves are converted to the model's element type as they are read;
//! a value that does not fit (a fraction for an integer input, an
//! out-of-range number, a string) is refused with the input's name.

#[cfg(test)]
mod properties;
mod read;

use serde::de::DeserializeSeed;
use serde_json::Value;

use super::{DataType, Tensor, TensorData};
use crate::Error;
use crate::signature::Signature;

/// A request's JSON payload, checked to be JSON before the model is known
/// (a bad request must not pick or load a version), with the number of
/// values of each input so that they are allocated once.
pub struct JsonPayload {
    text: String,
    sizes: Vec<usize>,
}

impl JsonPayload {
    /// Checks `text` and counts its inputs' values; a request error if it
    /// is not JSON of the expected form.
    pub fn new(text: String) -> Result<JsonPayload, Error> {
        let mut de = serde_json::Deserializer::from_str(&text);
        let sizes = read::Count
            .deserialize(&mut de)
            .and_then(|sizes| de.end().map(|()| sizes))
            .map_err(|e| Error::invalid(format!("payload is not valid JSON: {e}")))?;
        Ok(JsonPayload { text, sizes })
    }

    /// Bytes of JSON text.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// The model's inputs: an object of input name -> nested list, or a
    /// bare nested list for a model with one input, read straight into
    /// typed tensors (see `read.rs`).
    pub fn inputs(&self, signature: &Signature) -> Result<Vec<Tensor>, Error> {
        let mut de = serde_json::Deserializer::from_str(&self.text);
        read::Payload {
            signature,
            sizes: Some(&self.sizes),
        }
        .deserialize(&mut de)
        .map_err(|e| Error::invalid(e.to_string()))
    }
}

/// As [`JsonPayload::inputs`], for a payload already parsed (what a Python
/// predictor passes to its model client).
pub fn inputs(signature: &Signature, value: &Value) -> Result<Vec<Tensor>, Error> {
    read::Payload {
        signature,
        sizes: None,
    }
    .deserialize(value)
    .map_err(|e| Error::invalid(e.to_string()))
}

fn input_names(signature: &Signature) -> String {
    signature
        .inputs
        .iter()
        .map(|s| format!("`{}`", s.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a nested list as a tensor of `dtype`.
pub fn from_json(name: &str, dtype: DataType, value: &Value) -> Result<Tensor, Error> {
    read::Input {
        name,
        dtype,
        capacity: 0,
    }
    .deserialize(value)
    .map_err(|e| Error::invalid(e.to_string()))
}

/// Writes a tensor as nested lists (a scalar for shape []).
pub fn to_json(tensor: &Tensor) -> Result<Value, Error> {
    check_json_size(tensor)?;
    let leaves: Vec<Value> = match &tensor.data {
        TensorData::Bool(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::U8(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::U16(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::U32(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::U64(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::I8(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::I16(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::I32(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::I64(v) => v.iter().map(|x| Value::from(*x)).collect(),
        // JSON has no NaN or infinity: those become null.
        TensorData::F32(v) => v.iter().map(|x| Value::from(f64::from(*x))).collect(),
        TensorData::F64(v) => v.iter().map(|x| Value::from(*x)).collect(),
    };
    let dims: Vec<usize> = tensor.shape.iter().map(|&d| d.max(0) as usize).collect();
    let mut iter = leaves.into_iter();
    Ok(nest(&dims, &mut iter))
}

/// Nested lists a JSON form may have beyond one per element (rows of
/// zero-width tensors, say) before it is refused.
const SPARE_LISTS: u64 = 1 << 20;

/// An output's shape comes from the model: a shape such as [4294967295, 0]
/// holds no element, yet its JSON form would be four billion empty lists.
/// Counts the lists first, with checked arithmetic, and refuses forms far
/// larger than the data.
fn check_json_size(tensor: &Tensor) -> Result<(), Error> {
    let mut lists: Option<u64> = Some(0);
    let mut level: Option<u64> = Some(1);
    for &d in &tensor.shape {
        lists = lists.zip(level).and_then(|(l, n)| l.checked_add(n));
        level = level.and_then(|n| n.checked_mul(u64::try_from(d).unwrap_or(0)));
    }
    let elements = tensor.data.len() as u64;
    let allowed = (tensor.shape.len() as u64)
        .saturating_mul(elements)
        .max(SPARE_LISTS);
    match lists {
        Some(n) if n <= allowed => Ok(()),
        _ => Err(Error::Inference(format!(
            "output `{}` of shape {} is too large to write as JSON ({} nested lists for {elements} \
             elements); ask for tensors (output_format TENSORS, or ModelInfer)",
            hotswap_proto::error::shown(&tensor.name),
            crate::signature::shape_text(&tensor.shape),
            lists.map_or_else(|| "more than 2^64".to_owned(), |n| n.to_string()),
        ))),
    }
}

fn nest(dims: &[usize], leaves: &mut impl Iterator<Item = Value>) -> Value {
    match dims.split_first() {
        None => leaves.next().unwrap_or(Value::Null),
        Some((&n, rest)) => Value::Array((0..n).map(|_| nest(rest, leaves)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_outputs_write_their_rows_unless_absurd() {
        let rows = Tensor::new("x", vec![5, 0], TensorData::F32(vec![])).unwrap();
        assert_eq!(to_json(&rows).unwrap(), json!([[], [], [], [], []]));
        let absurd = Tensor::new("x", vec![4_294_967_295, 0], TensorData::F32(vec![])).unwrap();
        let err = to_json(&absurd).unwrap_err().to_string();
        assert!(
            err.contains("too large") && err.contains("4294967296 nested lists"),
            "{err}"
        );
    }

    #[test]
    fn nested_lists_become_tensors_and_back() {
        let v = json!([[5.1, 3.5, 1.4, 0.2], [1, 2, 3, 4]]);
        let t = from_json("input", DataType::F32, &v).unwrap();
        assert_eq!(t.shape, vec![2, 4]);
        assert_eq!(t.data.len(), 8);
        let back = to_json(&t).unwrap();
        assert_eq!(back[1], json!([1.0, 2.0, 3.0, 4.0]));
        assert!((back[0][0].as_f64().unwrap() - 5.1).abs() < 1e-6);
    }

    #[test]
    fn integer_inputs_refuse_fractions_and_strings() {
        let ok = from_json("ids", DataType::I64, &json!([[1, 2.0]])).unwrap();
        assert_eq!(ok.data, TensorData::I64(vec![1, 2]));
        let err = from_json("ids", DataType::I64, &json!([[1, 2.5]])).unwrap_err();
        assert!(err.to_string().contains("input `ids`"), "{err}");
        let err = from_json("ids", DataType::I32, &json!([["a"]])).unwrap_err();
        assert!(err.to_string().contains("INT32"), "{err}");
        let err = from_json("ids", DataType::U8, &json!([300])).unwrap_err();
        assert!(err.to_string().contains("300"), "{err}");
    }

    #[test]
    fn numbers_beyond_fp32_are_refused_not_made_infinite() {
        let err = from_json("x", DataType::F32, &json!([[1e39, 0.0]])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "input `x`: 1e+39 is not a valid FP32 element"
        );
        let err = JsonPayload::new("[-3.5e38]".to_owned())
            .and_then(|p| {
                p.inputs(&Signature {
                    inputs: vec![crate::signature::TensorSpec {
                        name: "x".to_owned(),
                        dtype: DataType::F32,
                        shape: vec![-1],
                    }],
                    outputs: vec![],
                })
            })
            .unwrap_err();
        assert!(err.to_string().contains("-3.5e+38"), "{err}");
        let max = from_json("x", DataType::F32, &json!([3.4e38])).unwrap();
        assert_eq!(max.data, TensorData::F32(vec![3.4e38]));
        // FP64 holds any JSON number.
        assert!(from_json("x", DataType::F64, &json!([1e300])).is_ok());
    }

    #[test]
    fn ragged_lists_are_refused() {
        for bad in [json!([[1, 2], [3]]), json!([[1, 2], 3]), json!([1, [2]])] {
            let err = from_json("x", DataType::F64, &bad).unwrap_err();
            assert!(err.to_string().contains("not rectangular"), "{bad}: {err}");
        }
    }

    #[test]
    fn payload_text_reads_into_typed_tensors() {
        use crate::signature::TensorSpec;
        let spec = |name: &str, dtype| TensorSpec {
            name: name.to_owned(),
            dtype,
            shape: vec![-1, 2],
        };
        let two = Signature {
            inputs: vec![spec("x", DataType::F32), spec("ids", DataType::I64)],
            outputs: vec![],
        };
        let read_as = |signature: &Signature, text: &str| {
            JsonPayload::new(text.to_owned()).and_then(|p| p.inputs(signature))
        };
        let read = read_as(&two, r#"{"x": [[1, 2.5]], "ids": [[3, 4], [5, 6]]}"#).unwrap();
        assert_eq!(read[0].data, TensorData::F32(vec![1.0, 2.5]));
        assert_eq!(
            (read[1].shape.clone(), read[1].data.clone()),
            (vec![2, 2], TensorData::I64(vec![3, 4, 5, 6]))
        );
        for (bad, says) in [
            (r#"{"y": [1]}"#, "unknown input `y`"),
            ("[[1, 2]]", "bare value"),
            (r#"{"x": [[1, 2]]} 7"#, "trailing"),
            (r#"{"x": [[], [1]]}"#, "not rectangular"),
            (r#"{"x": [[1], []]}"#, "not rectangular"),
            (
                r#"{"ids": [[1, {"a": 1}]]}"#,
                "an object is not a valid INT64",
            ),
        ] {
            let err = read_as(&two, bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let one = Signature {
            inputs: vec![spec("x", DataType::F64)],
            outputs: vec![],
        };
        let read = read_as(&one, "[[], []]").unwrap();
        assert_eq!(read[0].shape, vec![2, 0]);
        assert_eq!(read_as(&one, "3").unwrap()[0].shape, Vec::<i64>::new());
    }

    #[test]
    fn scalars_have_an_empty_shape() {
        let t = from_json("s", DataType::F64, &json!(2.5)).unwrap();
        assert!(t.shape.is_empty());
        assert_eq!(to_json(&t).unwrap(), json!(2.5));
    }
}
