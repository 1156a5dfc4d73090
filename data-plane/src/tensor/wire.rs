//! Tensors from and to the wire: the Open Inference Protocol's typed
//! contents and raw contents, and hotswap.v1's raw tensors.

use hotswap_proto::inference::InferTensorContents;
use hotswap_proto::inference::model_infer_request::InferInputTensor;
use hotswap_proto::inference::model_infer_response::InferOutputTensor;
use hotswap_proto::v1;

use super::{DataType, Tensor, TensorData};
use crate::Error;

fn parse_dtype(name: &str, datatype: &str) -> Result<DataType, Error> {
    DataType::parse(datatype).ok_or_else(|| {
        Error::invalid(format!(
            "{input}: unknown datatype {datatype_shown:?} (expected one of BOOL, UINT8, \
             UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, BF16, FP32, FP64, BYTES)",
            input = crate::tensor::input(name),
            datatype_shown = hotswap_proto::error::shown(datatype)
        ))
    })
}

/// An Open Inference Protocol input; `raw` is its entry of
/// `raw_input_contents`, if the request used those.
pub fn from_infer_input(input: InferInputTensor, raw: Option<&[u8]>) -> Result<Tensor, Error> {
    let InferInputTensor {
        name,
        datatype,
        shape,
        contents,
        ..
    } = input;
    let dtype = parse_dtype(&name, &datatype)?;
    match (raw, contents) {
        (Some(_), Some(c)) if !contents_empty(&c) => Err(Error::invalid(format!(
            "{input}: both contents and raw_input_contents are set",
            input = crate::tensor::input(&name)
        ))),
        (Some(bytes), _) => Tensor::from_raw(&name, dtype, shape, bytes),
        // The request is owned: its typed contents move into the tensor.
        (None, c) => {
            let data = from_contents(&name, dtype, c.unwrap_or_default())?;
            Tensor::new(&name, shape, data)
        }
    }
}

fn contents_empty(c: &InferTensorContents) -> bool {
    c == &InferTensorContents::default()
}

/// Typed contents; narrow integers travel widened and are narrowed back
/// with a range check.
fn from_contents(name: &str, dtype: DataType, c: InferTensorContents) -> Result<TensorData, Error> {
    fn narrow<W: Copy + std::fmt::Display, N: TryFrom<W>>(
        name: &str,
        dtype: DataType,
        values: &[W],
    ) -> Result<Vec<N>, Error> {
        values
            .iter()
            .map(|&v| {
                N::try_from(v).map_err(|_| {
                    Error::invalid(format!(
                        "{input}: {v_shown} is out of range for {}",
                        dtype.name(),
                        input = crate::tensor::input(name),
                        v_shown = hotswap_proto::error::shown(&v.to_string())
                    ))
                })
            })
            .collect()
    }
    Ok(match dtype {
        DataType::Bool => TensorData::Bool(c.bool_contents),
        DataType::U8 => TensorData::U8(narrow(name, dtype, &c.uint_contents)?),
        DataType::U16 => TensorData::U16(narrow(name, dtype, &c.uint_contents)?),
        DataType::U32 => TensorData::U32(c.uint_contents),
        DataType::U64 => TensorData::U64(c.uint64_contents),
        DataType::I8 => TensorData::I8(narrow(name, dtype, &c.int_contents)?),
        DataType::I16 => TensorData::I16(narrow(name, dtype, &c.int_contents)?),
        DataType::I32 => TensorData::I32(c.int_contents),
        DataType::I64 => TensorData::I64(c.int64_contents),
        DataType::F32 => TensorData::F32(c.fp32_contents),
        DataType::F64 => TensorData::F64(c.fp64_contents),
        DataType::F16 | DataType::BF16 | DataType::Bytes => {
            return Err(Error::invalid(format!(
                "{input}: datatype {} is not supported by hotswap",
                dtype.name(),
                input = crate::tensor::input(name)
            )));
        }
    })
}

/// An output as the Open Inference Protocol returns it: metadata in the
/// tensor, elements as raw bytes (what Triton does, and what its clients
/// read fastest).
pub fn to_infer_output(tensor: &Tensor) -> (InferOutputTensor, Vec<u8>) {
    (
        InferOutputTensor {
            name: tensor.name.clone(),
            datatype: tensor.dtype().name().to_owned(),
            shape: tensor.shape.clone(),
            parameters: Default::default(),
            contents: None,
        },
        tensor.data.to_le_bytes(),
    )
}

/// A tensor from `hotswap.v1`'s wire form (little-endian bytes).
pub fn from_v1(tensor: &v1::Tensor) -> Result<Tensor, Error> {
    let dtype = parse_dtype(&tensor.name, &tensor.datatype)?;
    Tensor::from_raw(&tensor.name, dtype, tensor.shape.clone(), &tensor.data)
}

/// A tensor in `hotswap.v1`'s wire form.
pub fn to_v1(tensor: &Tensor) -> v1::Tensor {
    v1::Tensor {
        name: tensor.name.clone(),
        datatype: tensor.dtype().name().to_owned(),
        shape: tensor.shape.clone(),
        data: tensor.data.to_le_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(datatype: &str, shape: Vec<i64>, contents: InferTensorContents) -> InferInputTensor {
        InferInputTensor {
            name: "x".into(),
            datatype: datatype.into(),
            shape,
            parameters: Default::default(),
            contents: Some(contents),
        }
    }

    #[test]
    fn typed_contents_are_narrowed_with_a_range_check() {
        let ok = from_infer_input(
            input(
                "INT8",
                vec![2],
                InferTensorContents {
                    int_contents: vec![-3, 7],
                    ..Default::default()
                },
            ),
            None,
        )
        .unwrap();
        assert_eq!(ok.data, TensorData::I8(vec![-3, 7]));
        let err = from_infer_input(
            input(
                "INT8",
                vec![1],
                InferTensorContents {
                    int_contents: vec![300],
                    ..Default::default()
                },
            ),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("input `x`"), "{err}");
    }

    #[test]
    fn wrong_contents_field_is_a_count_mismatch() {
        // FP32 declared, elements sent in int64_contents: nothing in fp32.
        let err = from_infer_input(
            input(
                "FP32",
                vec![2],
                InferTensorContents {
                    int64_contents: vec![1, 2],
                    ..Default::default()
                },
            ),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("input `x`"), "{err}");
    }

    #[test]
    fn raw_and_typed_together_are_refused() {
        let i = input(
            "FP32",
            vec![1],
            InferTensorContents {
                fp32_contents: vec![1.0],
                ..Default::default()
            },
        );
        let err = from_infer_input(i.clone(), Some(&1.0f32.to_le_bytes())).unwrap_err();
        assert!(err.to_string().contains("both"), "{err}");
        let err = from_infer_input(
            InferInputTensor {
                datatype: "FLOAT".into(),
                ..i.clone()
            },
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown datatype"), "{err}");
    }
}
