//! Dense tensors as requests carry them and models take them: a datatype,
//! a shape and typed elements. Conversions to and from JSON and the Open
//! Inference Protocol live in the sub-modules; every conversion checks the
//! element count against the shape and names the tensor in its errors.

pub mod json;
pub mod wire;

use crate::Error;

/// Element types, with the Open Inference Protocol's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `BOOL`.
    Bool,
    /// `UINT8`.
    U8,
    /// `UINT16`.
    U16,
    /// `UINT32`.
    U32,
    /// `UINT64`.
    U64,
    /// `INT8`.
    I8,
    /// `INT16`.
    I16,
    /// `INT32`.
    I32,
    /// `INT64`.
    I64,
    /// `FP16`: half precision.
    F16,
    /// `BF16`: bfloat16.
    BF16,
    /// `FP32`.
    F32,
    /// `FP64`.
    F64,
    /// `BYTES`: strings or byte strings.
    Bytes,
}

impl DataType {
    /// Every datatype, for lookups by name.
    pub const ALL: [DataType; 14] = [
        DataType::Bool,
        DataType::U8,
        DataType::U16,
        DataType::U32,
        DataType::U64,
        DataType::I8,
        DataType::I16,
        DataType::I32,
        DataType::I64,
        DataType::F16,
        DataType::BF16,
        DataType::F32,
        DataType::F64,
        DataType::Bytes,
    ];

    /// The protocol name: "FP32", "INT64", ...
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::U8 => "UINT8",
            DataType::U16 => "UINT16",
            DataType::U32 => "UINT32",
            DataType::U64 => "UINT64",
            DataType::I8 => "INT8",
            DataType::I16 => "INT16",
            DataType::I32 => "INT32",
            DataType::I64 => "INT64",
            DataType::F16 => "FP16",
            DataType::BF16 => "BF16",
            DataType::F32 => "FP32",
            DataType::F64 => "FP64",
            DataType::Bytes => "BYTES",
        }
    }

    /// The datatype the protocol calls `name` ("FP32", ...).
    pub fn parse(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bytes per element in raw (little-endian) form; None for BYTES.
    pub fn size(self) -> Option<usize> {
        Some(match self {
            DataType::Bool | DataType::U8 | DataType::I8 => 1,
            DataType::U16 | DataType::I16 | DataType::F16 | DataType::BF16 => 2,
            DataType::U32 | DataType::I32 | DataType::F32 => 4,
            DataType::U64 | DataType::I64 | DataType::F64 => 8,
            DataType::Bytes => return None,
        })
    }
}

/// Defines [`TensorData`] with one variant per element type hotswap can
/// compute with, and the per-variant plumbing.
macro_rules! tensor_data {
    ($($variant:ident($t:ty) = $dtype:ident),* $(,)?) => {
        /// Elements in row-major order.
        #[derive(Debug, Clone, PartialEq)]
        pub enum TensorData {
            $(#[doc = concat!("`", stringify!($t), "` elements.")] $variant(Vec<$t>),)*
        }

        impl TensorData {
            /// The elements' datatype.
            pub fn dtype(&self) -> DataType {
                match self {
                    $(TensorData::$variant(_) => DataType::$dtype,)*
                }
            }

            /// How many elements there are.
            pub fn len(&self) -> usize {
                match self {
                    $(TensorData::$variant(v) => v.len(),)*
                }
            }

            /// Reads little-endian elements; `bytes.len()` must be a multiple
            /// of the element size (checked by the caller against the shape).
            fn from_le_bytes(dtype: DataType, bytes: &[u8]) -> Option<TensorData> {
                match dtype {
                    $(DataType::$dtype => Some(TensorData::$variant(
                        bytes
                            .chunks_exact(std::mem::size_of::<$t>())
                            .map(|c| <$t as LeBytes>::read(c))
                            .collect(),
                    )),)*
                    _ => None,
                }
            }

            /// Appends `other`'s elements; false (and nothing appended)
            /// when the element types differ.
            pub fn append(&mut self, other: &TensorData) -> bool {
                match (self, other) {
                    $((TensorData::$variant(a), TensorData::$variant(b)) => {
                        a.extend_from_slice(b);
                        true
                    })*
                    _ => false,
                }
            }

            /// The elements in `range` (within `len()`).
            pub fn slice(&self, range: std::ops::Range<usize>) -> TensorData {
                match self {
                    $(TensorData::$variant(v) => TensorData::$variant(v[range].to_vec()),)*
                }
            }

            /// The elements as little-endian bytes, as the wire carries them.
            pub fn to_le_bytes(&self) -> Vec<u8> {
                match self {
                    $(TensorData::$variant(v) => {
                        let mut out = Vec::with_capacity(v.len() * std::mem::size_of::<$t>());
                        for x in v {
                            <$t as LeBytes>::write(*x, &mut out);
                        }
                        out
                    })*
                }
            }
        }
    };
}

tensor_data! {
    Bool(bool) = Bool,
    U8(u8) = U8,
    U16(u16) = U16,
    U32(u32) = U32,
    U64(u64) = U64,
    I8(i8) = I8,
    I16(i16) = I16,
    I32(i32) = I32,
    I64(i64) = I64,
    F32(f32) = F32,
    F64(f64) = F64,
}

impl TensorData {
    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `count` zeros of `dtype`; None for element types without a variant
    /// here (BYTES, FP16, BF16) or a count too large to hold.
    pub fn zeros(dtype: DataType, count: usize) -> Option<TensorData> {
        let bytes = count.checked_mul(dtype.size()?)?;
        TensorData::from_le_bytes(dtype, &vec![0; bytes])
    }
}

/// Little-endian element encoding.
trait LeBytes: Sized {
    fn read(bytes: &[u8]) -> Self;
    fn write(self, out: &mut Vec<u8>);
}

macro_rules! le_bytes {
    ($($t:ty),*) => {$(
        impl LeBytes for $t {
            fn read(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("chunk of the element size"))
            }
            fn write(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
le_bytes!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

impl LeBytes for bool {
    fn read(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
    fn write(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

/// A named tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The input or output it is.
    pub name: String,
    /// Its dimensions.
    pub shape: Vec<i64>,
    /// Its elements, as many as the shape holds.
    pub data: TensorData,
}

impl Tensor {
    /// Builds a tensor, checking that the shape holds exactly the elements.
    pub fn new(name: &str, shape: Vec<i64>, data: TensorData) -> Result<Tensor, Error> {
        let count = element_count(name, &shape)?;
        if count != data.len() {
            return Err(Error::invalid(format!(
                "{input}: shape {shape_shown} holds {count} elements, got {}",
                data.len(),
                input = crate::tensor::input(name),
                shape_shown = crate::signature::shape_text(&shape)
            )));
        }
        Ok(Tensor {
            name: name.to_owned(),
            shape,
            data,
        })
    }

    /// A tensor from little-endian element bytes.
    pub fn from_raw(
        name: &str,
        dtype: DataType,
        shape: Vec<i64>,
        bytes: &[u8],
    ) -> Result<Tensor, Error> {
        let count = element_count(name, &shape)?;
        let Some(size) = dtype.size().filter(|_| dtype_supported(dtype)) else {
            return Err(unsupported(name, dtype));
        };
        let expected = count.saturating_mul(size);
        if bytes.len() != expected {
            return Err(Error::invalid(format!(
                "{input}: {} raw bytes do not match shape {shape_shown} of {} ({expected} bytes)",
                bytes.len(),
                dtype.name(),
                input = crate::tensor::input(name),
                shape_shown = crate::signature::shape_text(&shape)
            )));
        }
        let data =
            TensorData::from_le_bytes(dtype, bytes).ok_or_else(|| unsupported(name, dtype))?;
        Tensor::new(name, shape, data)
    }

    /// Its elements' datatype.
    pub fn dtype(&self) -> DataType {
        self.data.dtype()
    }
}

/// How errors name a request's input: "input `NAME`", the name cut when
/// long (see `hotswap_proto::error::shown`).
pub(crate) fn input(name: &str) -> String {
    format!("input `{}`", hotswap_proto::error::shown(name))
}

/// Whether hotswap computes with this element type (FP16, BF16 and BYTES
/// appear in metadata but cannot be sent yet).
pub fn dtype_supported(dtype: DataType) -> bool {
    !matches!(dtype, DataType::F16 | DataType::BF16 | DataType::Bytes)
}

fn unsupported(name: &str, dtype: DataType) -> Error {
    Error::invalid(format!(
        "{input}: datatype {} is not supported by hotswap",
        dtype.name(),
        input = crate::tensor::input(name)
    ))
}

/// Largest dimension accepted. A shape like [2^62, 0] holds no element yet
/// would make every loop over its rows run forever.
const MAX_DIMENSION: i64 = u32::MAX as i64;

/// Elements a shape holds; negative and absurd dimensions are refused.
pub fn element_count(name: &str, shape: &[i64]) -> Result<usize, Error> {
    shape.iter().try_fold(1usize, |acc, &d| {
        if d > MAX_DIMENSION {
            return Err(Error::invalid(format!(
                "{input}: dimension {d} in shape {shape_shown} is too large",
                input = crate::tensor::input(name),
                shape_shown = crate::signature::shape_text(shape)
            )));
        }
        let d = usize::try_from(d).map_err(|_| {
            Error::invalid(format!(
                "{input}: negative dimension in shape {shape_shown}",
                input = crate::tensor::input(name),
                shape_shown = crate::signature::shape_text(shape)
            ))
        })?;
        acc.checked_mul(d).ok_or_else(|| {
            Error::invalid(format!(
                "{input}: shape {shape_shown} is too large",
                input = crate::tensor::input(name),
                shape_shown = crate::signature::shape_text(shape)
            ))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_round_trip_and_length_check() {
        let t = Tensor::new("x", vec![2, 2], TensorData::F32(vec![1.0, -2.5, 3.0, 0.0])).unwrap();
        let raw = t.data.to_le_bytes();
        assert_eq!(raw.len(), 16);
        let back = Tensor::from_raw("x", DataType::F32, vec![2, 2], &raw).unwrap();
        assert_eq!(back, t);
        let err = Tensor::from_raw("x", DataType::F32, vec![2, 3], &raw).unwrap_err();
        assert!(err.to_string().contains("input `x`"), "{err}");
        assert!(err.to_string().contains("16 raw bytes"), "{err}");
    }

    #[test]
    fn shape_must_hold_the_elements() {
        let err = Tensor::new("ids", vec![3], TensorData::I64(vec![1, 2])).unwrap_err();
        assert!(err.to_string().contains("input `ids`"), "{err}");
        assert!(Tensor::new("ids", vec![-1], TensorData::I64(vec![])).is_err());
        let err = Tensor::new("ids", vec![1 << 62, 0], TensorData::I64(vec![])).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
    }

    #[test]
    fn names_round_trip() {
        for d in DataType::ALL {
            assert_eq!(DataType::parse(d.name()), Some(d));
        }
        assert_eq!(DataType::parse("float"), None);
    }
}
