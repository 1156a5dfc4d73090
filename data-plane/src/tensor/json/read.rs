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
            })?);
        }
        Ok(tensors)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<Tensor>, A::Error> {
        let (name, dtype) = self.only_input()?;
        let mut builder = Builder::new(name, dtype)?;
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
        let mut builder = Builder::new(name, dtype)?;
        builder.leaf(0, leaf)?;
        Ok(vec![builder.finish()?])
    }
}

/// One input's nested lists, read into a tensor of its element type.
pub(super) struct Input<'a> {
    pub name: &'a str,
    pub dtype: DataType,
}

impl<'de> DeserializeSeed<'de> for Input<'_> {
    type Value = Tensor;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Tensor, D::Error> {
        let mut builder = Builder::new(self.name, self.dtype)?;
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
            Leaf::F64(v) => write!(f, "{v}"),
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
    fn new<E: de::Error>(name: &'a str, dtype: DataType) -> Result<Builder<'a>, E> {
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
            data: TensorData::empty(dtype),
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
    /// Empty, of `dtype` (a supported one).
    fn empty(dtype: DataType) -> TensorData {
        match dtype {
            DataType::Bool => TensorData::Bool(Vec::new()),
            DataType::U8 => TensorData::U8(Vec::new()),
            DataType::U16 => TensorData::U16(Vec::new()),
            DataType::U32 => TensorData::U32(Vec::new()),
            DataType::U64 => TensorData::U64(Vec::new()),
            DataType::I8 => TensorData::I8(Vec::new()),
            DataType::I16 => TensorData::I16(Vec::new()),
            DataType::I32 => TensorData::I32(Vec::new()),
            DataType::I64 => TensorData::I64(Vec::new()),
            DataType::F64 => TensorData::F64(Vec::new()),
            DataType::F32 | DataType::F16 | DataType::BF16 | DataType::Bytes => {
                TensorData::F32(Vec::new())
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
            TensorData::F32(v) => put(v, float(leaf).map(|f| f as f32)),
            TensorData::F64(v) => put(v, float(leaf)),
        }
    }
}
