//! JSON tensor data read straight into little-endian bytes: a serde visitor
//! walks the (flat or nested) lists once and writes each element as it
//! comes, converted to the input's datatype, into one buffer allocated at
//! the size the input's shape announces. No tree of JSON values is built: a
//! 16 MB list of numbers costs the bytes of its tensor and nothing more.
//!
//! The rules are the Open Inference Protocol's, as Triton reads JSON: a
//! number must fit its datatype exactly (no fraction for an integer, no
//! float beyond FP32's range, which would become infinity), BOOL takes
//! `true`/`false` and BYTES takes strings. Nesting is flattened in order
//! (the worker checks the element count against the shape).

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{DataError, MAX_DEPTH};

/// The element types JSON data is read as. FP16 and BF16 are not among
/// them: as with Triton, half floats travel as binary data (JSON numbers
/// are doubles, and no backend here computes in half precision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    Bool,
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F32,
    F64,
    Bytes,
}

impl Element {
    fn of(datatype: &str) -> Option<Element> {
        Some(match datatype {
            "BOOL" => Element::Bool,
            "UINT8" => Element::U8,
            "UINT16" => Element::U16,
            "UINT32" => Element::U32,
            "UINT64" => Element::U64,
            "INT8" => Element::I8,
            "INT16" => Element::I16,
            "INT32" => Element::I32,
            "INT64" => Element::I64,
            "FP32" => Element::F32,
            "FP64" => Element::F64,
            "BYTES" => Element::Bytes,
            _ => return None,
        })
    }

    /// Bytes per element; None for BYTES (a length and the string).
    fn size(self) -> Option<usize> {
        Some(match self {
            Element::Bool | Element::U8 | Element::I8 => 1,
            Element::U16 | Element::I16 => 2,
            Element::U32 | Element::I32 | Element::F32 => 4,
            Element::U64 | Element::I64 | Element::F64 => 8,
            Element::Bytes => return None,
        })
    }
}

/// What one input's data came to.
#[derive(Debug, PartialEq)]
pub(in super::super) enum Read {
    /// Its raw contents.
    Bytes(Vec<u8>),
    /// Its raw contents would be this many bytes, over the limit: nothing
    /// past the limit was kept.
    TooLarge(usize),
}

/// Reads `data` as `datatype` into raw contents of at most `max` bytes.
/// `shape` (as declared; it may lie) sizes the buffer up front.
pub(in super::super) fn read(
    data: &RawValue,
    datatype: &str,
    shape: &[i64],
    max: usize,
) -> Result<Read, DataError> {
    let element = Element::of(datatype);
    let capacity = match element.and_then(Element::size) {
        Some(size) => shape
            .iter()
            .try_fold(size, |n, &d| n.checked_mul(usize::try_from(d).ok()?))
            .unwrap_or(0),
        // BYTES: no more than the text that holds the strings.
        None => data.get().len(),
    };
    let mut state = State {
        datatype,
        element,
        out: Vec::with_capacity(capacity.min(max)),
        total: 0,
        max,
        error: None,
    };
    let mut de = serde_json::Deserializer::from_str(data.get());
    let walked = Level {
        state: &mut state,
        depth: 0,
    }
    .deserialize(&mut de);
    match (state.error, walked) {
        (Some(e), _) => Err(e),
        // Checked JSON already (the head was read): not the caller's fault.
        (None, Err(e)) => Err(DataError::Json(e)),
        (None, Ok(())) if state.total > max => Ok(Read::TooLarge(state.total)),
        (None, Ok(())) => Ok(Read::Bytes(state.out)),
    }
}

/// One input's data being read.
struct State<'d> {
    datatype: &'d str,
    /// None: a datatype JSON cannot carry (refused at its first element).
    element: Option<Element>,
    out: Vec<u8>,
    /// Bytes the data comes to, also past `max` (where `out` is dropped and
    /// the rest only counted, so that the refusal can say the size).
    total: usize,
    max: usize,
    /// Why the read stopped; serde's own errors are text only.
    error: Option<DataError>,
}

/// A leaf as the JSON reader gives it.
enum Leaf<'s> {
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(&'s str),
    Null,
    Object,
}

impl fmt::Display for Leaf<'_> {
    /// As JSON writes it (a string cut when long).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leaf::Bool(v) => write!(f, "{v}"),
            Leaf::I64(v) => write!(f, "{v}"),
            Leaf::U64(v) => write!(f, "{v}"),
            Leaf::F64(v) => match serde_json::Number::from_f64(*v) {
                Some(n) => write!(f, "{n}"),
                None => f.write_str("null"),
            },
            Leaf::Str(s) => {
                let shown = hotswap_proto::error::shown(s);
                write!(f, "{}", serde_json::Value::from(shown.as_ref()))
            }
            Leaf::Null => f.write_str("null"),
            Leaf::Object => f.write_str("an object"),
        }
    }
}

impl State<'_> {
    fn leaf(&mut self, leaf: Leaf<'_>) -> Result<(), DataError> {
        let Some(element) = self.element else {
            return Err(DataError::NotSendable(self.datatype.to_owned()));
        };
        let datatype = self.datatype;
        let bad = |leaf: &Leaf<'_>| DataError::NotElement {
            value: leaf.to_string(),
            datatype: datatype.to_owned(),
        };
        fn int<T: TryFrom<i64> + TryFrom<u64>>(leaf: &Leaf<'_>) -> Option<T> {
            match *leaf {
                Leaf::I64(i) => T::try_from(i).ok(),
                Leaf::U64(u) => T::try_from(u).ok(),
                _ => None,
            }
        }
        fn float(leaf: &Leaf<'_>) -> Option<f64> {
            match *leaf {
                Leaf::I64(i) => Some(i as f64),
                Leaf::U64(u) => Some(u as f64),
                Leaf::F64(f) => Some(f),
                _ => None,
            }
        }
        match element {
            Element::Bool => match leaf {
                Leaf::Bool(b) => self.push(&[u8::from(b)]),
                other => return Err(bad(&other)),
            },
            Element::U8 => self.push(&int::<u8>(&leaf).ok_or_else(|| bad(&leaf))?.to_le_bytes()),
            Element::U16 => self.push(&int::<u16>(&leaf).ok_or_else(|| bad(&leaf))?.to_le_bytes()),
            Element::U32 => self.push(&int::<u32>(&leaf).ok_or_else(|| bad(&leaf))?.to_le_bytes()),
            Element::U64 => self.push(&int::<u64>(&leaf).ok_or_else(|| bad(&leaf))?.to_le_bytes()),
            Element::I8 => self.push(&int::<i8>(&leaf).ok_or_else(|| bad(&leaf))?.to_le_bytes()),
            Element::I16 => self.push(&int::<i16>(&leaf).ok_or_else(|| bad(&leaf))?.to_le_bytes()),
            Element::I32 => self.push(&int::<i32>(&leaf).ok_or_else(|| bad(&leaf))?.to_le_bytes()),
            Element::I64 => self.push(&int::<i64>(&leaf).ok_or_else(|| bad(&leaf))?.to_le_bytes()),
            Element::F32 => {
                // A double beyond FP32's range would become infinity, a
                // value the caller never sent.
                let v = float(&leaf)
                    .map(|f| f as f32)
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| bad(&leaf))?;
                self.push(&v.to_le_bytes());
            }
            Element::F64 => self.push(&float(&leaf).ok_or_else(|| bad(&leaf))?.to_le_bytes()),
            Element::Bytes => match leaf {
                Leaf::Str(s) => {
                    let len = u32::try_from(s.len()).map_err(|_| bad(&leaf))?;
                    self.push(&len.to_le_bytes());
                    self.push(s.as_bytes());
                }
                other => return Err(bad(&other)),
            },
        }
        Ok(())
    }

    /// Appends `bytes`, or past the limit only counts them.
    fn push(&mut self, bytes: &[u8]) {
        self.total = self.total.saturating_add(bytes.len());
        if self.total <= self.max {
            self.out.extend_from_slice(bytes);
        } else if self.out.capacity() > 0 {
            self.out = Vec::new();
        }
    }
}

/// One depth of the nested lists.
struct Level<'s, 'd> {
    state: &'s mut State<'d>,
    depth: usize,
}

impl Level<'_, '_> {
    fn leaf<E: de::Error>(self, leaf: Leaf<'_>) -> Result<(), E> {
        let read = if self.depth > MAX_DEPTH {
            Err(DataError::TooDeep)
        } else {
            self.state.leaf(leaf)
        };
        read.map_err(|e| {
            self.state.error = Some(e);
            E::custom("stopped")
        })
    }
}

impl<'de> DeserializeSeed<'de> for Level<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of elements")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth > MAX_DEPTH {
            self.state.error = Some(DataError::TooDeep);
            return Err(de::Error::custom("stopped"));
        }
        while seq
            .next_element_seed(Level {
                state: &mut *self.state,
                depth: self.depth + 1,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.leaf(Leaf::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.leaf(Leaf::I64(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.leaf(Leaf::U64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.leaf(Leaf::F64(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.leaf(Leaf::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf(Leaf::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.leaf(Leaf::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(data: &str, datatype: &str, max: usize) -> Result<Read, DataError> {
        let raw: &RawValue = serde_json::from_str(data).expect("JSON");
        read(raw, datatype, &[], max)
    }

    #[test]
    fn elements_are_written_little_endian_in_order() {
        assert_eq!(
            bytes("[[1, -2], [3, 4]]", "INT16", 64).unwrap(),
            Read::Bytes(vec![1, 0, 0xfe, 0xff, 3, 0, 4, 0])
        );
        assert_eq!(
            bytes(r#"["ab", ""]"#, "BYTES", 64).unwrap(),
            Read::Bytes(vec![2, 0, 0, 0, b'a', b'b', 0, 0, 0, 0])
        );
        assert_eq!(bytes("[]", "FP16", 64).unwrap(), Read::Bytes(vec![]));
    }

    #[test]
    fn values_beyond_the_datatype_are_refused() {
        for (data, datatype, message) in [
            ("[1e39]", "FP32", "1e+39 is not a FP32 element"),
            ("[-3.5e38]", "FP32", "-3.5e+38 is not a FP32 element"),
            ("[2.0]", "INT32", "2.0 is not a INT32 element"),
            ("[-1]", "UINT64", "-1 is not a UINT64 element"),
            ("[1]", "BOOL", "1 is not a BOOL element"),
            (r#"[{"a": 1}]"#, "INT8", "an object is not a INT8 element"),
            ("[null]", "FP64", "null is not a FP64 element"),
            ("[1]", "FP16", "datatype FP16 cannot be sent as JSON data"),
        ] {
            let err = bytes(data, datatype, 64).expect_err(data).to_string();
            assert_eq!(err, message, "{data}");
        }
        // The largest FP32 is one.
        assert!(matches!(bytes("[3.4e38]", "FP32", 64), Ok(Read::Bytes(_))));
    }

    #[test]
    fn data_over_the_limit_is_counted_not_kept() {
        assert_eq!(bytes("[1, 2, 3]", "INT32", 8).unwrap(), Read::TooLarge(12));
        assert_eq!(
            bytes("[1, 2]", "INT32", 8).unwrap(),
            Read::Bytes(vec![1, 0, 0, 0, 2, 0, 0, 0])
        );
    }
}
