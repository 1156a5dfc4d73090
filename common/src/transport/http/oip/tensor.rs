//! JSON tensor data, as the REST binding carries it, to and from the raw
//! little-endian contents the services take and give: read straight into
//! bytes (`tensor/read.rs`), written from them.

mod read;

use serde_json::{Value, json};

pub(super) use read::{Read, read};

/// Why JSON data is not a tensor of its datatype, or raw contents cannot
/// be written as JSON.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DataError {
    /// An element that is not of the tensor's datatype (or out of its
    /// range), as JSON writes it.
    #[error("{value} is not a {datatype} element")]
    NotElement { value: String, datatype: String },
    /// A datatype JSON data cannot be read as.
    #[error("datatype {0} cannot be sent as JSON data")]
    NotSendable(String),
    /// Lists nested deeper than [`MAX_DEPTH`].
    #[error("data is nested too deeply")]
    TooDeep,
    /// Data that is not JSON after all (it was checked with the request's
    /// head, so this is a bug rather than the caller's mistake).
    #[error("data is not JSON")]
    Json(#[source] serde_json::Error),
    /// A BYTES element whose length runs past the contents' end.
    #[error("a BYTES element runs past the end")]
    BytesPastEnd,
    /// A datatype JSON data cannot be written as.
    #[error("datatype {0} cannot be returned as JSON data")]
    NotReturnable(String),
}

/// Nested lists deeper than this are refused rather than risk the stack.
const MAX_DEPTH: usize = 64;

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
    use serde_json::value::RawValue;

    use super::*;

    fn encode(data: &Value, datatype: &str) -> Result<Vec<u8>, DataError> {
        let text = data.to_string();
        let raw: &RawValue = serde_json::from_str(&text).expect("JSON");
        match read(raw, datatype, &[], usize::MAX)? {
            Read::Bytes(bytes) => Ok(bytes),
            Read::TooLarge(n) => panic!("{n} bytes over no limit"),
        }
    }

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
        let mut deepest = json!(1);
        for _ in 0..MAX_DEPTH {
            deepest = json!([deepest]);
        }
        assert_eq!(encode(&deepest, "UINT8").expect("64 deep"), vec![1]);
        assert_eq!(
            decode(&[9, 0, 0, 0, b'a'], "BYTES")
                .expect_err("short")
                .to_string(),
            "a BYTES element runs past the end"
        );
    }
}
