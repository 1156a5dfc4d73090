//! JSON tensor data, as the REST binding carries it, to and from the raw
//! little-endian contents the services take and give.

use serde_json::{Value, json};

/// Why JSON data is not a tensor of its datatype, or raw contents cannot
/// be written as JSON.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DataError {
    /// An element that is not of the tensor's datatype (or out of its
    /// range).
    #[error("{value} is not a {datatype} element")]
    NotElement { value: Value, datatype: String },
    /// A datatype JSON data cannot be read as.
    #[error("datatype {0} cannot be sent as JSON data")]
    NotSendable(String),
    /// Lists nested deeper than [`MAX_DEPTH`].
    #[error("data is nested too deeply")]
    TooDeep,
    /// A BYTES element whose length runs past the contents' end.
    #[error("a BYTES element runs past the end")]
    BytesPastEnd,
    /// A datatype JSON data cannot be written as.
    #[error("datatype {0} cannot be returned as JSON data")]
    NotReturnable(String),
}

/// JSON tensor data (flat or nested lists) as raw little-endian contents.
pub(super) fn encode(data: &Value, datatype: &str) -> Result<Vec<u8>, DataError> {
    let mut flat = Vec::new();
    flatten(data, &mut flat, 0)?;
    let mut out = Vec::new();
    for v in flat {
        let bad = || DataError::NotElement {
            value: v.clone(),
            datatype: datatype.to_owned(),
        };
        macro_rules! int {
            ($t:ty, $get:ident) => {{
                let n = v.$get().ok_or_else(bad)?;
                out.extend_from_slice(&<$t>::try_from(n).map_err(|_| bad())?.to_le_bytes());
            }};
        }
        match datatype {
            "BOOL" => out.push(match v {
                Value::Bool(b) => u8::from(*b),
                _ => return Err(bad()),
            }),
            "UINT8" => int!(u8, as_u64),
            "UINT16" => int!(u16, as_u64),
            "UINT32" => int!(u32, as_u64),
            "UINT64" => int!(u64, as_u64),
            "INT8" => int!(i8, as_i64),
            "INT16" => int!(i16, as_i64),
            "INT32" => int!(i32, as_i64),
            "INT64" => int!(i64, as_i64),
            "FP32" => out.extend_from_slice(&(v.as_f64().ok_or_else(bad)? as f32).to_le_bytes()),
            "FP64" => out.extend_from_slice(&v.as_f64().ok_or_else(bad)?.to_le_bytes()),
            "BYTES" => {
                let s = v.as_str().ok_or_else(bad)?;
                let len = u32::try_from(s.len()).map_err(|_| bad())?;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            other => return Err(DataError::NotSendable(other.to_owned())),
        }
    }
    Ok(out)
}

/// Nested lists deeper than this are refused rather than risk the stack.
const MAX_DEPTH: usize = 64;

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>, depth: usize) -> Result<(), DataError> {
    if depth > MAX_DEPTH {
        return Err(DataError::TooDeep);
    }
    match v {
        Value::Array(items) => items.iter().try_for_each(|i| flatten(i, out, depth + 1)),
        scalar => {
            out.push(scalar);
            Ok(())
        }
    }
}

/// Raw little-endian contents as a flat JSON list.
pub(super) fn decode(raw: &[u8], datatype: &str) -> Result<Value, DataError> {
    macro_rules! each {
        ($t:ty, $n:expr) => {
            raw.chunks_exact($n)
                .map(|c| json!(<$t>::from_le_bytes(c.try_into().unwrap_or_default())))
                .collect::<Vec<Value>>()
        };
    }
    Ok(Value::Array(match datatype {
        "BOOL" => raw.iter().map(|b| json!(*b != 0)).collect(),
        "UINT8" => raw.iter().map(|b| json!(b)).collect(),
        "INT8" => raw.iter().map(|b| json!(*b as i8)).collect(),
        "UINT16" => each!(u16, 2),
        "INT16" => each!(i16, 2),
        "UINT32" => each!(u32, 4),
        "INT32" => each!(i32, 4),
        "UINT64" => each!(u64, 8),
        "INT64" => each!(i64, 8),
        "FP32" => each!(f32, 4),
        "FP64" => each!(f64, 8),
        "BYTES" => {
            let mut items = Vec::new();
            let mut rest = raw;
            while rest.len() >= 4 {
                let (len, tail) = rest.split_at(4);
                let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
                if len > tail.len() {
                    return Err(DataError::BytesPastEnd);
                }
                let (item, tail) = tail.split_at(len);
                items.push(json!(String::from_utf8_lossy(item)));
                rest = tail;
            }
            items
        }
        other => return Err(DataError::NotReturnable(other.to_owned())),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_data_round_trips_through_raw_contents() {
        for (data, datatype) in [
            (json!([[1, 2], [3, 4]]), "INT32"),
            (json!([true, false]), "BOOL"),
            (json!([1.5, -2.0]), "FP32"),
            (json!(["a", "bc"]), "BYTES"),
        ] {
            let raw = encode(&data, datatype).expect(datatype);
            let flat: Vec<Value> = data
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|v| v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]))
                .collect();
            assert_eq!(decode(&raw, datatype).expect(datatype), Value::Array(flat));
        }
    }

    #[test]
    fn data_that_is_not_the_datatype_is_refused() {
        let bad = |data: Value, datatype| encode(&data, datatype).expect_err(datatype).to_string();
        assert_eq!(bad(json!([300]), "UINT8"), "300 is not a UINT8 element");
        assert_eq!(bad(json!(["x"]), "FP64"), "\"x\" is not a FP64 element");
        assert_eq!(
            bad(json!([1]), "FP16"),
            "datatype FP16 cannot be sent as JSON data"
        );
        let mut deep = json!(1);
        for _ in 0..=MAX_DEPTH + 1 {
            deep = json!([deep]);
        }
        assert_eq!(bad(deep, "INT32"), "data is nested too deeply");
        assert_eq!(
            decode(&[9, 0, 0, 0, b'a'], "BYTES")
                .expect_err("short")
                .to_string(),
            "a BYTES element runs past the end"
        );
    }
}
