//! The JSON head of an inference request, read without building a tree of
//! JSON values: an object's fields the reader asks for are kept as the
//! caller wrote them (checked JSON text borrowed from the body, serde_json's
//! `RawValue`), every other field is skipped, and lists are walked one item
//! at a time. Each field is then read into its own type where it is used:
//! a tensor's data straight into its bytes (`tensor/read.rs`), a name into
//! a string. A tree of `serde_json::Value` costs tens of bytes for each
//! number of a tensor's data; this costs nothing for the data.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The visitor methods of every scalar (bool, numbers, string, null), all
/// answering `$value`: what a reader makes of a value of the wrong kind.
macro_rules! scalars_are {
    ($ty:ty, $value:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_i64<E>(self, _: i64) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_u64<E>(self, _: u64) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_f64<E>(self, _: f64) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_str<E>(self, _: &str) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_unit<E>(self) -> Result<$ty, E> {
            Ok($value)
        }
    };
}

/// The fields named `names` of a JSON value, in that order: `None` for a
/// field it lacks, and all `None` for a value that is not an object (a
/// field read from a list or a number is missing, as `Value::get` has it).
/// A field given twice is read from its last occurrence.
pub(super) fn fields<'a, const N: usize>(
    value: &'a RawValue,
    names: [&'static str; N],
) -> Result<[Option<&'a RawValue>; N], serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(value.get());
    Fields { names }.deserialize(&mut de)
}

/// As [`fields`], for the whole head: `None` when it is not an object.
pub(super) fn head<'a, const N: usize>(
    text: &'a [u8],
    names: [&'static str; N],
) -> Result<Option<[Option<&'a RawValue>; N]>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let object = ObjectOrNot(Fields { names }).deserialize(&mut de)?;
    de.end()?;
    Ok(object)
}

/// Calls `each` with the fields named `names` of every item of a list, in
/// order (see [`fields`]); `None` when `value` is not a list. `each` stops
/// the walk by failing; its error is returned as is.
pub(super) fn each<'a, E, const N: usize>(
    value: &'a RawValue,
    names: [&'static str; N],
    mut each: impl FnMut(usize, [Option<&'a RawValue>; N]) -> Result<(), E>,
) -> Result<Option<()>, Stopped<E>> {
    let mut stopped = None;
    let mut de = serde_json::Deserializer::from_str(value.get());
    let walked = Items {
        names,
        each: &mut each,
        stopped: &mut stopped,
    }
    .deserialize(&mut de);
    match (walked, stopped) {
        (_, Some(e)) => Err(Stopped::By(e)),
        (Ok(walked), None) => Ok(walked),
        (Err(e), None) => Err(Stopped::Json(e)),
    }
}

/// Why a walk over a list ended early.
#[derive(Debug)]
pub(super) enum Stopped<E> {
    /// The callback refused an item.
    By(E),
    /// The text is not JSON. It was checked as the head was read, so this
    /// is a broken invariant rather than the caller's mistake.
    Json(serde_json::Error),
}

/// `value` read as `T`, or `None` when it is not one (a string field that
/// holds a number, say).
pub(super) fn read<'a, T: serde::Deserialize<'a>>(value: &'a RawValue) -> Option<T> {
    serde_json::from_str(value.get()).ok()
}

/// A list of integers as read by [`integers`].
#[derive(Debug, PartialEq)]
pub(super) enum Integers {
    /// Every item, in order.
    Read(Vec<i64>),
    /// An item that is not an integer (a fraction, a string, a list).
    NotInteger,
    /// More items than asked for at most.
    TooMany,
}

/// `value` as a list of at most `max` integers; `None` when it is not a
/// list. A longer list is skipped past, never held.
pub(super) fn integers(
    value: &RawValue,
    max: usize,
) -> Result<Option<Integers>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(value.get());
    IntegerList { max }.deserialize(&mut de)
}

struct Fields<const N: usize> {
    names: [&'static str; N],
}

impl<'de, const N: usize> DeserializeSeed<'de> for Fields<N> {
    type Value = [Option<&'de RawValue>; N];

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A key, matched against the names asked for without copying it.
struct Key<const N: usize>([&'static str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for Key<N> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<const N: usize> Visitor<'_> for Key<N> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|n| *n == key))
    }
}

impl<'de, const N: usize> Visitor<'de> for Fields<N> {
    type Value = [Option<&'de RawValue>; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = [None; N];
        while let Some(key) = map.next_key_seed(Key(self.names))? {
            match key {
                Some(i) => found[i] = Some(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| [None; N])
    }

    scalars_are!(Self::Value, [None; N]);
}

/// [`Fields`] of an object; `None` for anything else.
struct ObjectOrNot<const N: usize>(Fields<N>);

impl<'de, const N: usize> DeserializeSeed<'de> for ObjectOrNot<N> {
    type Value = Option<[Option<&'de RawValue>; N]>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for ObjectOrNot<N> {
    type Value = Option<[Option<&'de RawValue>; N]>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(map).map(Some)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| None)
    }

    scalars_are!(Self::Value, None);
}

struct IntegerList {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for IntegerList {
    type Value = Option<Integers>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IntegerList {
    type Value = Option<Integers>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut read = Vec::new();
        let mut not_integer = false;
        while read.len() < self.max {
            match seq.next_element_seed(Integer)? {
                None => {
                    return Ok(Some(if not_integer {
                        Integers::NotInteger
                    } else {
                        Integers::Read(read)
                    }));
                }
                Some(Some(i)) => read.push(i),
                Some(None) => not_integer = true,
            }
        }
        // As many as may be: one more is one too many.
        if seq.next_element::<IgnoredAny>()?.is_none() {
            return Ok(Some(if not_integer {
                Integers::NotInteger
            } else {
                Integers::Read(read)
            }));
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Some(if not_integer {
            Integers::NotInteger
        } else {
            Integers::TooMany
        }))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_map(map).map(|_| None)
    }
    scalars_are!(Self::Value, None);
}

/// One item of an integer list: `None` when it is something else.
struct Integer;

impl<'de> DeserializeSeed<'de> for Integer {
    type Value = Option<i64>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Integer {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).ok())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_map(map).map(|_| None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// The items of a list, each handed to a callback as it is read: a list of
/// a million inputs is never held as a million parsed items.
struct Items<'c, Bad, F, const N: usize> {
    names: [&'static str; N],
    each: &'c mut F,
    /// Where the callback's error waits while serde unwinds (serde's own
    /// errors are text only).
    stopped: &'c mut Option<Bad>,
}

impl<'a, Bad, F, const N: usize> DeserializeSeed<'a> for Items<'_, Bad, F, N>
where
    F: FnMut(usize, [Option<&'a RawValue>; N]) -> Result<(), Bad>,
{
    type Value = Option<()>;

    fn deserialize<D: de::Deserializer<'a>>(self, d: D) -> Result<Option<()>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a, Bad, F, const N: usize> Visitor<'a> for Items<'_, Bad, F, N>
where
    F: FnMut(usize, [Option<&'a RawValue>; N]) -> Result<(), Bad>,
{
    type Value = Option<()>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<Option<()>, A::Error> {
        let mut i = 0;
        while let Some(item) = seq.next_element_seed(Fields { names: self.names })? {
            if let Err(e) = (self.each)(i, item) {
                *self.stopped = Some(e);
                return Err(de::Error::custom("stopped"));
            }
            i += 1;
        }
        Ok(Some(()))
    }

    fn visit_map<A: MapAccess<'a>>(self, map: A) -> Result<Option<()>, A::Error> {
        IgnoredAny.visit_map(map).map(|_| None)
    }
    scalars_are!(Option<()>, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).expect("JSON")
    }

    #[test]
    fn fields_are_kept_as_written_and_the_rest_skipped() {
        let [a, b] = fields(raw(r#"{"a": [1, 2], "x": {"y": 3}, "a": "z"}"#), ["a", "b"]).unwrap();
        assert_eq!(a.map(RawValue::get), Some(r#""z""#), "the last one given");
        assert!(b.is_none());
        assert!(fields(raw("[1]"), ["a"]).unwrap()[0].is_none());
        assert_eq!(
            head(br#" {"a": 1} "#, ["a"])
                .unwrap()
                .map(|[a]| a.map(RawValue::get)),
            Some(Some("1"))
        );
        assert!(head(b"[1]", ["a"]).unwrap().is_none());
        assert!(head(b"{} x", ["a"]).is_err());
    }

    #[test]
    fn lists_are_walked_until_the_callback_stops() {
        let list = raw(r#"[{"n": 1}, 7, {"n": 3}, {"n": 4}]"#);
        let mut seen = Vec::new();
        let walked = each(list, ["n"], |i, [n]| {
            seen.push((i, n.map(|n| n.get().to_owned())));
            if i == 2 { Err("stop") } else { Ok(()) }
        });
        assert!(matches!(walked, Err(Stopped::By("stop"))));
        assert_eq!(
            seen,
            vec![
                (0, Some("1".to_owned())),
                (1, None),
                (2, Some("3".to_owned()))
            ]
        );
        assert!(matches!(
            each(raw("{}"), ["n"], |_, _| Ok::<(), ()>(())),
            Ok(None)
        ));
    }

    #[test]
    fn integer_lists_are_bounded() {
        let read = |text: &str| integers(raw(text), 3).unwrap();
        assert_eq!(read("[1, -2, 3]"), Some(Integers::Read(vec![1, -2, 3])));
        assert_eq!(read("[1, 2.5]"), Some(Integers::NotInteger));
        assert_eq!(read("[1, [2]]"), Some(Integers::NotInteger));
        assert_eq!(read("[18446744073709551615]"), Some(Integers::NotInteger));
        assert_eq!(read("[1, 2, 3, 4, 5]"), Some(Integers::TooMany));
        assert_eq!(read("{}"), None);
    }
}
