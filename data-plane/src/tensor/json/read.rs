//! Reading a JSON payload straight into typed tensors: the model's signature
//! says each input's element type, and a serde visitor walks the nested
//! lists once, checking that they are rectangular and converting each
//! number as it comes. No tree of JSON values is built: a 16 MB list of
//! floats becomes 6 MB of f32, not hundreds of MB of `serde_json::Value`.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::super::{DataType, Tensor, TensorData, dtype_supported};
use crate::signature::Signature;

/// The payload: an object of input name -> nested list, or a bare nested
/// list (or scalar) for a model with one input.
pub(super) struct Payload<'a> {
    pub signature: &'a Signature,
    /// What [`Count`] found in the same text: each tensor is then allocated
    /// once at its final size. Growing a large vector by doubling copies it,
    /// and the allocator may keep old and new resident at once.
    pub sizes: Option<&'a [usize]>,
}

impl<'de> DeserializeSeed<'de> for Payload<'_> {
    type Value = Vec<Tensor>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<Tensor>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Payload<'_> {
    type Value = Vec<Tensor>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of input name -> nested list, or a nested list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Tensor>, A::Error> {
        let mut tensors = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let capacity = self.capacity(tensors.len());
            let Some(spec) = self.signature.input(&name) else {
                return Err(de::Error::custom(format!(
                    "unknown {}; the model's inputs: {}",
                    crate::tensor::input(&name),
                    super::input_names(self.signature)
                )));
            };
            tensors.push(map.next_value_seed(Input {
                name: &name,
                dtype: spec.dtype,
                capacity,
            })?);
        }
        Ok(tensors)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<Tensor>, A::Error> {
        let (name, dtype) = self.only_input()?;
        let mut builder = Builder::new(name, dtype, self.capacity(0))?;
        Level {
            builder: &mut builder,
            depth: 0,
        }
        .visit_seq(seq)?;
        Ok(vec![builder.finish()?])
    }

    // A bare scalar: a one-input model's input of shape [].
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Vec<Tensor>, E> {
        self.scalar(Leaf::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Vec<Tensor>, E> {
        self.scalar(Leaf::I64(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Vec<Tensor>, E> {
        self.scalar(Leaf::U64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Vec<Tensor>, E> {
        self.scalar(Leaf::F64(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<Tensor>, E> {
        self.scalar(Leaf::Other(format!("{v:?}")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<Tensor>, E> {
        self.scalar(Leaf::Other("null".to_owned()))
    }
}

impl Payload<'_> {
    /// Elements to allocate for the `index`th input of the payload.
    fn capacity(&self, index: usize) -> usize {
        self.sizes
            .and_then(|sizes| sizes.get(index).copied())
            .unwrap_or(0)
    }

    fn only_input<E: de::Error>(&self) -> Result<(&str, DataType), E> {
        match self.signature.inputs.as_slice() {
            [only] => Ok((&only.name, only.dtype)),
            _ => Err(E::custom(format!(
                "payload is a bare value but the model has inputs {}: send an object of input \
                 name -> nested list",
                super::input_names(self.signature)
            ))),
        }
    }

    fn scalar<E: de::Error>(self, leaf: Leaf) -> Result<Vec<Tensor>, E> {
        let (name, dtype) = self.only_input()?;
        let mut builder = Builder::new(name, dtype, 1)?;
        builder.leaf(0, leaf)?;
        Ok(vec![builder.finish()?])
    }
}

/// One input's nested lists, read into a tensor of its element type.
pub(super) struct Input<'a> {
    pub name: &'a str,
    pub dtype: DataType,
    /// Elements to allocate up front (a hint; 0 to grow as read).
    pub capacity: usize,
}

impl<'de> DeserializeSeed<'de> for Input<'_> {
    type Value = Tensor;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Tensor, D::Error> {
        let mut builder = Builder::new(self.name, self.dtype, self.capacity)?;
        Level {
            builder: &mut builder,
            depth: 0,
        }
        .deserialize(d)?;
        builder.finish()
    }
}

/// A leaf value as the JSON reader gives it.
enum Leaf {
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    /// Anything else (a string, null), as JSON text for the message.
    Other(String),
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leaf::Bool(v) => write!(f, "{v}"),
            Leaf::I64(v) => write!(f, "{v}"),
            Leaf::U64(v) => write!(f, "{v}"),
            // As JSON writes it: 1e+39, not forty digits.
            Leaf::F64(v) => match serde_json::Number::from_f64(*v) {
                Some(n) => write!(f, "{n}"),
                None => write!(f, "{v}"),
            },
            Leaf::Other(text) => f.write_str(text),
        }
    }
}

/// The tensor being read: its elements so far, the length every list at
/// each depth must have (set by the first list that ends at that depth),
/// and its rank once the first leaf shows it.
struct Builder<'a> {
    name: &'a str,
    dtype: DataType,
    data: TensorData,
    dims: Vec<Option<usize>>,
    rank: Option<usize>,
}

impl<'a> Builder<'a> {
    fn new<E: de::Error>(
        name: &'a str,
        dtype: DataType,
        capacity: usize,
    ) -> Result<Builder<'a>, E> {
        if !dtype_supported(dtype) {
            return Err(E::custom(format!(
                "{}: datatype {} is not supported by hotswap",
                crate::tensor::input(name),
                dtype.name()
            )));
        }
        Ok(Builder {
            name,
            dtype,
            data: TensorData::with_capacity(dtype, capacity),
            dims: Vec::new(),
            rank: None,
        })
    }

    fn ragged<E: de::Error>(&self) -> E {
        E::custom(format!(
            "{}: nested lists are not rectangular",
            crate::tensor::input(self.name)
        ))
    }

    /// A list at `depth` begins.
    fn open<E: de::Error>(&mut self, depth: usize) -> Result<(), E> {
        if self.rank.is_some_and(|r| depth >= r) {
            return Err(self.ragged());
        }
        Ok(())
    }

    /// A list at `depth` ended with `len` items.
    fn close<E: de::Error>(&mut self, depth: usize, len: usize) -> Result<(), E> {
        if self.dims.len() <= depth {
            self.dims.resize(depth + 1, None);
        }
        match self.dims[depth] {
            None => self.dims[depth] = Some(len),
            Some(first) if first == len => {}
            Some(_) => return Err(self.ragged()),
        }
        Ok(())
    }

    /// A leaf at `depth`: the tensor's rank is its depth, everywhere.
    fn leaf<E: de::Error>(&mut self, depth: usize, leaf: Leaf) -> Result<(), E> {
        match self.rank {
            None if self.dims.len() > depth => return Err(self.ragged()),
            None => self.rank = Some(depth),
            Some(r) if r != depth => return Err(self.ragged()),
            Some(_) => {}
        }
        if !self.data.push(&leaf) {
            return Err(E::custom(format!(
                "{}: {} is not a valid {} element",
                crate::tensor::input(self.name),
                hotswap_proto::error::shown(&leaf.to_string()),
                self.dtype.name()
            )));
        }
        Ok(())
    }

    fn finish<E: de::Error>(self) -> Result<Tensor, E> {
        let rank = self.rank.unwrap_or(self.dims.len());
        if self.dims.len() != rank || self.dims.iter().any(Option::is_none) {
            return Err(self.ragged());
        }
        let shape = self.dims.iter().map(|d| d.unwrap_or(0) as i64).collect();
        Tensor::new(self.name, shape, self.data).map_err(|e| E::custom(e.to_string()))
    }
}

/// One depth of the nested lists.
struct Level<'b, 'a> {
    builder: &'b mut Builder<'a>,
    depth: usize,
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
        f.write_str("a nested list of numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.builder.open(self.depth)?;
        let mut len = 0;
        while seq
            .next_element_seed(Level {
                builder: &mut *self.builder,
                depth: self.depth + 1,
            })?
            .is_some()
        {
            len += 1;
        }
        self.builder.close(self.depth, len)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.builder.leaf(self.depth, Leaf::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.builder.leaf(self.depth, Leaf::I64(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.builder.leaf(self.depth, Leaf::U64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.builder.leaf(self.depth, Leaf::F64(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.builder.leaf(self.depth, Leaf::Other(format!("{v:?}")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.builder
            .leaf(self.depth, Leaf::Other("null".to_owned()))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.builder
            .leaf(self.depth, Leaf::Other("an object".to_owned()))
    }
}

impl TensorData {
    /// Empty, of `dtype` (a supported one), with room for `n` elements.
    fn with_capacity(dtype: DataType, n: usize) -> TensorData {
        match dtype {
            DataType::Bool => TensorData::Bool(Vec::with_capacity(n)),
            DataType::U8 => TensorData::U8(Vec::with_capacity(n)),
            DataType::U16 => TensorData::U16(Vec::with_capacity(n)),
            DataType::U32 => TensorData::U32(Vec::with_capacity(n)),
            DataType::U64 => TensorData::U64(Vec::with_capacity(n)),
            DataType::I8 => TensorData::I8(Vec::with_capacity(n)),
            DataType::I16 => TensorData::I16(Vec::with_capacity(n)),
            DataType::I32 => TensorData::I32(Vec::with_capacity(n)),
            DataType::I64 => TensorData::I64(Vec::with_capacity(n)),
            DataType::F64 => TensorData::F64(Vec::with_capacity(n)),
            DataType::F32 | DataType::F16 | DataType::BF16 | DataType::Bytes => {
                TensorData::F32(Vec::with_capacity(n))
            }
        }
    }

    /// Appends a leaf converted to the element type; false when it does not
    /// fit (a fraction for an integer type, out of range, not a number).
    fn push(&mut self, leaf: &Leaf) -> bool {
        fn int<T: TryFrom<i64> + TryFrom<u64>>(leaf: &Leaf) -> Option<T> {
            match *leaf {
                Leaf::I64(i) => T::try_from(i).ok(),
                Leaf::U64(u) => T::try_from(u).ok(),
                // 2.0 is an integer written as a float; 2.5 is not.
                Leaf::F64(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => T::try_from(f as i64).ok(),
                _ => None,
            }
        }
        fn float(leaf: &Leaf) -> Option<f64> {
            match *leaf {
                Leaf::I64(i) => Some(i as f64),
                Leaf::U64(u) => Some(u as f64),
                Leaf::F64(f) => Some(f),
                _ => None,
            }
        }
        fn put<T>(v: &mut Vec<T>, x: Option<T>) -> bool {
            x.map(|x| v.push(x)).is_some()
        }
        match self {
            TensorData::Bool(v) => put(
                v,
                matches!(leaf, Leaf::Bool(_)).then(|| matches!(leaf, Leaf::Bool(true))),
            ),
            TensorData::U8(v) => put(v, int(leaf)),
            TensorData::U16(v) => put(v, int(leaf)),
            TensorData::U32(v) => put(v, int(leaf)),
            TensorData::U64(v) => put(v, int(leaf)),
            TensorData::I8(v) => put(v, int(leaf)),
            TensorData::I16(v) => put(v, int(leaf)),
            TensorData::I32(v) => put(v, int(leaf)),
            TensorData::I64(v) => put(v, int(leaf)),
            // A double beyond FP32's range would become infinity, a value
            // the caller never sent.
            TensorData::F32(v) => put(v, float(leaf).map(|f| f as f32).filter(|f| f.is_finite())),
            TensorData::F64(v) => put(v, float(leaf)),
        }
    }
}

/// The syntax pass, before the model is known: checks that the text is
/// JSON and counts the leaves of each top-level value of an object (in
/// order), or of a bare value, building nothing.
pub(super) struct Count;

impl<'de> DeserializeSeed<'de> for Count {
    type Value = Vec<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<usize>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count {
    type Value = Vec<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<usize>, A::Error> {
        let mut sizes = Vec::new();
        while map.next_key::<de::IgnoredAny>()?.is_some() {
            sizes.push(map.next_value_seed(Leaves)?);
        }
        Ok(sizes)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<usize>, A::Error> {
        Ok(vec![Leaves.visit_seq(seq)?])
    }

    fn visit_bool<E>(self, _: bool) -> Result<Vec<usize>, E> {
        Ok(vec![1])
    }
    fn visit_i64<E>(self, _: i64) -> Result<Vec<usize>, E> {
        Ok(vec![1])
    }
    fn visit_u64<E>(self, _: u64) -> Result<Vec<usize>, E> {
        Ok(vec![1])
    }
    fn visit_f64<E>(self, _: f64) -> Result<Vec<usize>, E> {
        Ok(vec![1])
    }
    fn visit_str<E>(self, _: &str) -> Result<Vec<usize>, E> {
        Ok(vec![1])
    }
    fn visit_unit<E>(self) -> Result<Vec<usize>, E> {
        Ok(vec![1])
    }
}

/// The leaves under one value (an object inside the lists counts as one:
/// the typed read refuses it).
struct Leaves;

impl<'de> DeserializeSeed<'de> for Leaves {
    type Value = usize;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Leaves {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut n = 0;
        while let Some(m) = seq.next_element_seed(Leaves)? {
            n += m;
        }
        Ok(n)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<usize, A::Error> {
        de::IgnoredAny.visit_map(map).map(|_| 1)
    }

    fn visit_bool<E>(self, _: bool) -> Result<usize, E> {
        Ok(1)
    }
    fn visit_i64<E>(self, _: i64) -> Result<usize, E> {
        Ok(1)
    }
    fn visit_u64<E>(self, _: u64) -> Result<usize, E> {
        Ok(1)
    }
    fn visit_f64<E>(self, _: f64) -> Result<usize, E> {
        Ok(1)
    }
    fn visit_str<E>(self, _: &str) -> Result<usize, E> {
        Ok(1)
    }
    fn visit_unit<E>(self) -> Result<usize, E> {
        Ok(1)
    }
}
