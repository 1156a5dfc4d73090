//! TensorFlow SavedModels through TensorFlow's C API (the `tensorflow`
//! crate), with the library the project's setup takes from the PyPI
//! tensorflow-cpu wheel, loaded at run time (see `runtime.rs`). One session
//! per version: TensorFlow sessions run concurrent calls themselves.

mod runtime;

use std::path::Path;

use tensorflow::{
    DataType as TfType, FetchToken, Graph, Operation, SavedModelBundle, SessionOptions,
    SessionRunArgs, Shape, Status, Tensor as TfTensor, TensorType,
};

use crate::Error;
use crate::backend::{LoadError, LoadSpec, Model, RuntimeConfig, TensorTypeError};
use crate::signature::{Signature, TensorSpec};
use crate::tensor::{DataType, Tensor, TensorData};

/// The signature served when the API names none (TensorFlow Serving's too).
pub const DEFAULT_SIGNATURE: &str = "serving_default";

/// The meta graph a SavedModel exported for serving is tagged with.
const SERVE_TAG: &str = "serve";

/// A SavedModel loaded through TensorFlow's C API.
pub struct TensorFlowModel {
    bundle: SavedModelBundle,
    /// The graph the session runs; kept alive as long as the session.
    _graph: Graph,
    /// Signature inputs and outputs, in the order of `signature`, with the
    /// graph tensor each one is.
    feeds: Vec<(Operation, i32)>,
    fetches: Vec<(Operation, i32)>,
    signature: Signature,
}

impl TensorFlowModel {
    /// Loads the SavedModel in `dir` (tag `serve`) and the signature the API
    /// names.
    pub fn load(
        dir: &Path,
        spec: &LoadSpec,
        what: &str,
        runtimes: &RuntimeConfig,
    ) -> Result<TensorFlowModel, Error> {
        let fail = |source: LoadError| Error::Load {
            what: what.to_owned(),
            source,
        };
        // No TensorFlow library on this worker is not something a retry or
        // another version fixes.
        runtime::ensure_loaded(runtimes).map_err(|e| Error::FailedPrecondition(e.to_string()))?;
        let mut graph = Graph::new();
        let options = session_options(runtimes.tf_inter_op_threads).map_err(fail)?;
        let bundle = SavedModelBundle::load(&options, [SERVE_TAG], &mut graph, dir)
            .map_err(|status| load_error(&status, dir, spec, what))?;
        let key = if spec.signature_key.is_empty() {
            DEFAULT_SIGNATURE
        } else {
            spec.signature_key.as_str()
        };
        let signatures = bundle.meta_graph_def().signatures();
        let Some(def) = signatures.get(key) else {
            let mut names: Vec<&str> = signatures
                .keys()
                .map(String::as_str)
                // TensorFlow's own initialisation entry, not a user signature.
                .filter(|k| !k.starts_with("__"))
                .collect();
            names.sort_unstable();
            return Err(fail(LoadError::NoSignature {
                key: key.to_owned(),
                known: names.into_iter().map(str::to_owned).collect(),
            }));
        };
        let tensors = |map: &std::collections::HashMap<String, tensorflow::TensorInfo>| {
            let mut named: Vec<_> = map.iter().collect();
            named.sort_by(|a, b| a.0.cmp(b.0));
            named
                .into_iter()
                .map(|(name, info)| {
                    let tensor = |source| LoadError::Tensor {
                        name: format!("signature `{key}`, `{name}`"),
                        source,
                    };
                    let spec = TensorSpec {
                        name: name.clone(),
                        dtype: dtype(info.dtype()).map_err(tensor)?,
                        shape: shape(info.shape()).map_err(tensor)?,
                    };
                    let op = graph
                        .operation_by_name_required(&info.name().name)
                        .map_err(|e| {
                            LoadError::Refused(format!("signature `{key}`, `{name}`: {e}"))
                        })?;
                    Ok((spec, (op, info.name().index)))
                })
                .collect::<Result<Vec<_>, LoadError>>()
        };
        let (inputs, feeds): (Vec<_>, Vec<_>) =
            tensors(def.inputs()).map_err(fail)?.into_iter().unzip();
        let (outputs, fetches): (Vec<_>, Vec<_>) =
            tensors(def.outputs()).map_err(fail)?.into_iter().unzip();
        Ok(TensorFlowModel {
            bundle,
            _graph: graph,
            feeds,
            fetches,
            signature: Signature { inputs, outputs },
        })
    }
}

/// Sessions run each call's ops in the calling thread by default
/// (inter-op threads -1, `RuntimeConfig::tf_inter_op_threads`): a request
/// already has a blocking thread of its own, and handing the ops to
/// TensorFlow's inter-op pool and waiting for them only adds latency (about
/// 3× per call for a small model, see BENCHMARKS.md). Ops still use the
/// intra-op pool inside (a large matrix product, say). 0 gives TensorFlow's
/// own pool of one thread per core.
fn session_options(inter_op_threads: i32) -> Result<SessionOptions, LoadError> {
    let mut options = SessionOptions::new();
    options
        .set_config(&inter_op_config(inter_op_threads))
        .map_err(|e| LoadError::SessionOptions(Box::new(e)))?;
    Ok(options)
}

/// A serialized ConfigProto with only `inter_op_parallelism_threads`
/// (field 5, an int32 varint; negative values take ten bytes).
fn inter_op_config(threads: i32) -> Vec<u8> {
    let mut out = vec![5 << 3];
    let mut v = i64::from(threads) as u64;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A failed load, in words for the user. A graph with Neuron ops was
/// compiled for Inferentia: no CPU build of TensorFlow runs it, and this
/// worker has no Neuron runtime, which no retry changes.
fn load_error(status: &Status, dir: &Path, spec: &LoadSpec, what: &str) -> Error {
    let message = status
        .to_string()
        .replace(&format!("{}/", dir.display()), "")
        .replace(&dir.display().to_string(), "the version folder");
    if let Some(op) = neuron_op(&message) {
        let asked = if spec.inferentia > 0 {
            format!("the API asks for {} Inferentia chip(s)", spec.inferentia)
        } else {
            "the API does not ask for Inferentia (compute.inf)".to_owned()
        };
        return Error::FailedPrecondition(format!(
            "{what} is compiled for AWS Inferentia (its graph runs `{op}`) and {asked}, but \
             this worker has no Neuron runtime or Inferentia device; only SavedModels that \
             also run on CPU can be served here"
        ));
    }
    Error::Load {
        what: what.to_owned(),
        source: LoadError::Refused(message),
    }
}

/// The Neuron op TensorFlow did not know, if that is why the load failed.
fn neuron_op(message: &str) -> Option<&str> {
    let rest = message.split("Op type not registered '").nth(1)?;
    let op = rest.split('\'').next()?;
    op.starts_with("Neuron").then_some(op)
}

impl Model for TensorFlowModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn platform(&self) -> &'static str {
        "tensorflow_savedmodel"
    }

    fn infer(&self, inputs: Vec<Tensor>, outputs: &[String]) -> Result<Vec<Tensor>, Error> {
        let inputs = inputs
            .into_iter()
            .map(to_tf)
            .collect::<Result<Vec<AnyTensor>, Error>>()?;
        let mut args = SessionRunArgs::new();
        for (tensor, (op, index)) in inputs.iter().zip(&self.feeds) {
            tensor.feed(&mut args, op, *index);
        }
        let wanted: Vec<usize> = if outputs.is_empty() {
            (0..self.signature.outputs.len()).collect()
        } else {
            outputs
                .iter()
                .map(|name| {
                    self.signature
                        .outputs
                        .iter()
                        .position(|s| &s.name == name)
                        .ok_or_else(|| {
                            Error::invalid(format!(
                                "unknown output `{name_shown}`; the model's outputs: {}",
                                self.signature.output_names().join(", "),
                                name_shown = hotswap_proto::error::shown(name)
                            ))
                        })
                })
                .collect::<Result<_, _>>()?
        };
        let tokens: Vec<(usize, FetchToken)> = wanted
            .iter()
            .map(|&i| {
                let (op, index) = &self.fetches[i];
                (i, args.request_fetch(op, *index))
            })
            .collect();
        self.bundle.session.run(&mut args).map_err(|status| {
            let message = status.to_string();
            match status.code() {
                // Constraints the signature cannot express (a dimension
                // shared by two inputs, say): the request is wrong.
                tensorflow::Code::InvalidArgument => {
                    Error::invalid(format!("the model refused the inputs: {message}"))
                }
                _ => Error::Inference(message),
            }
        })?;
        tokens
            .into_iter()
            .enumerate()
            .map(|(fetched, (i, token))| {
                let name = &self.signature.outputs[i].name;
                from_tf(name, &mut args, fetched, token)
            })
            .collect()
    }
}

fn dtype(t: TfType) -> Result<DataType, TensorTypeError> {
    Ok(match t {
        TfType::Bool => DataType::Bool,
        TfType::UInt8 => DataType::U8,
        TfType::UInt16 => DataType::U16,
        TfType::UInt32 => DataType::U32,
        TfType::UInt64 => DataType::U64,
        TfType::Int8 => DataType::I8,
        TfType::Int16 => DataType::I16,
        TfType::Int32 => DataType::I32,
        TfType::Int64 => DataType::I64,
        TfType::Float => DataType::F32,
        TfType::Double => DataType::F64,
        other => return Err(TensorTypeError::Dtype(other.to_string())),
    })
}

/// A signature shape with -1 for free dimensions. Tensors of unknown rank
/// cannot be checked or described, so they are refused at load.
fn shape(s: &Shape) -> Result<Vec<i64>, TensorTypeError> {
    let rank = s.dims().ok_or(TensorTypeError::UnknownRank)?;
    Ok((0..rank).map(|i| s[i].unwrap_or(-1)).collect())
}

/// An input tensor of any element type hotswap computes with.
enum AnyTensor {
    Bool(TfTensor<bool>),
    U8(TfTensor<u8>),
    U16(TfTensor<u16>),
    U32(TfTensor<u32>),
    U64(TfTensor<u64>),
    I8(TfTensor<i8>),
    I16(TfTensor<i16>),
    I32(TfTensor<i32>),
    I64(TfTensor<i64>),
    F32(TfTensor<f32>),
    F64(TfTensor<f64>),
}

impl AnyTensor {
    fn feed<'a>(&'a self, args: &mut SessionRunArgs<'a>, op: &Operation, index: i32) {
        match self {
            AnyTensor::Bool(t) => args.add_feed(op, index, t),
            AnyTensor::U8(t) => args.add_feed(op, index, t),
            AnyTensor::U16(t) => args.add_feed(op, index, t),
            AnyTensor::U32(t) => args.add_feed(op, index, t),
            AnyTensor::U64(t) => args.add_feed(op, index, t),
            AnyTensor::I8(t) => args.add_feed(op, index, t),
            AnyTensor::I16(t) => args.add_feed(op, index, t),
            AnyTensor::I32(t) => args.add_feed(op, index, t),
            AnyTensor::I64(t) => args.add_feed(op, index, t),
            AnyTensor::F32(t) => args.add_feed(op, index, t),
            AnyTensor::F64(t) => args.add_feed(op, index, t),
        }
    }
}

/// Inputs were checked against the signature, so a failure here is a shape
/// TensorFlow itself refuses (a negative dimension).
fn to_tf(t: Tensor) -> Result<AnyTensor, Error> {
    fn make<T: TensorType>(name: &str, dims: &[u64], data: &[T]) -> Result<TfTensor<T>, Error> {
        TfTensor::new(dims).with_values(data).map_err(|e| {
            Error::invalid(format!("{input}: {e}", input = crate::tensor::input(name)))
        })
    }
    let dims = t
        .shape
        .iter()
        .map(|&d| u64::try_from(d))
        .collect::<Result<Vec<u64>, _>>()
        .map_err(|_| {
            Error::invalid(format!(
                "{}: negative dimension",
                crate::tensor::input(&t.name)
            ))
        })?;
    let name = t.name.as_str();
    Ok(match &t.data {
        TensorData::Bool(v) => AnyTensor::Bool(make(name, &dims, v)?),
        TensorData::U8(v) => AnyTensor::U8(make(name, &dims, v)?),
        TensorData::U16(v) => AnyTensor::U16(make(name, &dims, v)?),
        TensorData::U32(v) => AnyTensor::U32(make(name, &dims, v)?),
        TensorData::U64(v) => AnyTensor::U64(make(name, &dims, v)?),
        TensorData::I8(v) => AnyTensor::I8(make(name, &dims, v)?),
        TensorData::I16(v) => AnyTensor::I16(make(name, &dims, v)?),
        TensorData::I32(v) => AnyTensor::I32(make(name, &dims, v)?),
        TensorData::I64(v) => AnyTensor::I64(make(name, &dims, v)?),
        TensorData::F32(v) => AnyTensor::F32(make(name, &dims, v)?),
        TensorData::F64(v) => AnyTensor::F64(make(name, &dims, v)?),
    })
}

/// Output `fetched` of the run (the order of `request_fetch`), whose token
/// is `token`.
fn from_tf(
    name: &str,
    args: &mut SessionRunArgs<'_>,
    fetched: usize,
    token: FetchToken,
) -> Result<Tensor, Error> {
    fn read<T: TensorType + Clone>(
        args: &mut SessionRunArgs<'_>,
        token: FetchToken,
    ) -> Result<(Vec<i64>, Vec<T>), Status> {
        let t = args.fetch::<T>(token)?;
        let shape = t.dims().iter().map(|&d| d as i64).collect();
        Ok((shape, t.to_vec()))
    }
    let fail = |e: Status| Error::Inference(format!("output `{name}`: {e}"));
    let ty = args
        .output_data_type(fetched)
        .ok_or_else(|| Error::Inference(format!("output `{name}` was not produced")))?;
    let (shape, data) =
        match dtype(ty).map_err(|e| Error::Inference(format!("output `{name}`: {e}")))? {
            DataType::Bool => read::<bool>(args, token).map(|(s, d)| (s, TensorData::Bool(d))),
            DataType::U8 => read::<u8>(args, token).map(|(s, d)| (s, TensorData::U8(d))),
            DataType::U16 => read::<u16>(args, token).map(|(s, d)| (s, TensorData::U16(d))),
            DataType::U32 => read::<u32>(args, token).map(|(s, d)| (s, TensorData::U32(d))),
            DataType::U64 => read::<u64>(args, token).map(|(s, d)| (s, TensorData::U64(d))),
            DataType::I8 => read::<i8>(args, token).map(|(s, d)| (s, TensorData::I8(d))),
            DataType::I16 => read::<i16>(args, token).map(|(s, d)| (s, TensorData::I16(d))),
            DataType::I32 => read::<i32>(args, token).map(|(s, d)| (s, TensorData::I32(d))),
            DataType::I64 => read::<i64>(args, token).map(|(s, d)| (s, TensorData::I64(d))),
            DataType::F32 => read::<f32>(args, token).map(|(s, d)| (s, TensorData::F32(d))),
            DataType::F64 => read::<f64>(args, token).map(|(s, d)| (s, TensorData::F64(d))),
            other => {
                return Err(Error::Inference(format!(
                    "output `{name}` has datatype {}, which hotswap cannot return yet",
                    other.name()
                )));
            }
        }
        .map_err(fail)?;
    Tensor::new(name, shape, data).map_err(|e| Error::Inference(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_config_is_a_valid_config_proto() {
        assert_eq!(inter_op_config(2), vec![0x28, 0x02]);
        assert_eq!(inter_op_config(300), vec![0x28, 0xac, 0x02]);
        let mut minus_one = vec![0x28];
        minus_one.extend([0xff; 9]);
        minus_one.push(0x01);
        assert_eq!(inter_op_config(-1), minus_one);
    }

    #[test]
    fn neuron_ops_are_recognised_in_load_errors() {
        let msg = "NOT_FOUND: Op type not registered 'NeuronOp' in binary running on vm.";
        assert_eq!(neuron_op(msg), Some("NeuronOp"));
        assert_eq!(
            neuron_op("NOT_FOUND: Op type not registered 'MyCustomOp' in binary"),
            None
        );
        assert_eq!(neuron_op("INVALID_ARGUMENT: something else"), None);
    }
}
