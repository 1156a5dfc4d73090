//! ONNX models through ONNX Runtime (`ort`, loaded at run time from the
//! library the project's setup installs; see `runtime.rs`).

mod runtime;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, TryLockError};

use ort::session::Session;
use ort::value::{DynValue, TensorElementType, ValueType};

use crate::Error;
use crate::backend::{LoadError, Model, RuntimeConfig, TensorTypeError};
use crate::signature::{Signature, TensorSpec};
use crate::tensor::{DataType, Tensor, TensorData};

/// A version loaded into ONNX Runtime.
pub struct OnnxModel {
    /// One session per version, its calls one at a time (`Session::run`
    /// takes `&mut self`), each spread over ONNX Runtime's intra-op threads
    /// (one per core). A pool of sessions held the weights once per
    /// session, and their thread pools together oversubscribed the cores:
    /// on two cores, two sessions took 2.0× a model's weights in memory and
    /// served a model computing ~1.3 ms a call at 367 calls/s where one
    /// session serves 553 (BENCHMARKS.md, perf_analyzer).
    session: Mutex<Session>,
    signature: Signature,
}

impl OnnxModel {
    /// Loads the one `*.onnx` file in `dir` (the model-store validated that
    /// there is exactly one).
    pub fn load(dir: &Path, runtimes: &RuntimeConfig) -> Result<OnnxModel, LoadError> {
        let file = onnx_file(dir)?;
        let env = runtime::environment(runtimes)?;
        let session = Session::builder(&env)
            .and_then(|mut b| b.commit_from_file(&file))
            // ONNX Runtime names the full path; callers only need the
            // file's name within the version.
            .map_err(|e| {
                let name = file
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                LoadError::Refused(format!(
                    "{name}: {}",
                    e.to_string().replace(&file.display().to_string(), &name)
                ))
            })?;
        let signature = Signature {
            inputs: specs(session.inputs())?,
            outputs: specs(session.outputs())?,
        };
        Ok(OnnxModel {
            session: Mutex::new(session),
            signature,
        })
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(
        &self,
        session: &mut Session,
        inputs: Vec<Tensor>,
        outputs: &[String],
    ) -> Result<Vec<Tensor>, Error> {
        let values = inputs
            .into_iter()
            .map(|t| Ok((t.name.clone(), to_value(t)?)))
            .collect::<Result<Vec<(String, DynValue)>, Error>>()?;
        let mut results = session.run(values).map_err(|e| match e.code() {
            // Constraints the signature cannot express (a dimension shared
            // by two inputs, say): the request is wrong, not the server.
            ort::ErrorCode::InvalidArgument => {
                Error::invalid(format!("the model refused the inputs: {}", e.message()))
            }
            _ => Error::Inference(e.to_string()),
        })?;
        let wanted: Vec<String> = if outputs.is_empty() {
            self.signature.output_names()
        } else {
            outputs.to_vec()
        };
        wanted
            .iter()
            .map(|name| {
                let value = results.remove(name).ok_or_else(|| {
                    Error::invalid(format!(
                        "unknown output `{name_shown}`; the model's outputs: {}",
                        self.signature.output_names().join(", "),
                        name_shown = hotswap_proto::error::shown(name)
                    ))
                })?;
                from_value(name, &value)
            })
            .collect()
    }
}

impl Model for OnnxModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn platform(&self) -> &'static str {
        "onnxruntime_onnx"
    }

    fn infer(&self, inputs: Vec<Tensor>, outputs: &[String]) -> Result<Vec<Tensor>, Error> {
        self.run(&mut self.session(), inputs, outputs)
    }

    fn try_infer_now(
        &self,
        inputs: Vec<Tensor>,
        outputs: &[String],
    ) -> Result<Result<Vec<Tensor>, Error>, Vec<Tensor>> {
        let mut session = match self.session.try_lock() {
            Ok(session) => session,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            // Another call holds the session: waiting here would block an
            // async thread, so the caller takes the blocking pool.
            Err(TryLockError::WouldBlock) => return Err(inputs),
        };
        Ok(self.run(&mut session, inputs, outputs))
    }
}

fn onnx_file(dir: &Path) -> Result<PathBuf, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(LoadError::Folder)?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "onnx") && path.is_file() {
            found.push(path);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(LoadError::OnnxFiles(n)),
    }
}

fn dtype(t: TensorElementType) -> Result<DataType, TensorTypeError> {
    Ok(match t {
        TensorElementType::Bool => DataType::Bool,
        TensorElementType::Uint8 => DataType::U8,
        TensorElementType::Uint16 => DataType::U16,
        TensorElementType::Uint32 => DataType::U32,
        TensorElementType::Uint64 => DataType::U64,
        TensorElementType::Int8 => DataType::I8,
        TensorElementType::Int16 => DataType::I16,
        TensorElementType::Int32 => DataType::I32,
        TensorElementType::Int64 => DataType::I64,
        TensorElementType::Float16 => DataType::F16,
        TensorElementType::Bfloat16 => DataType::BF16,
        TensorElementType::Float32 => DataType::F32,
        TensorElementType::Float64 => DataType::F64,
        TensorElementType::String => DataType::Bytes,
        other => return Err(TensorTypeError::Element(format!("{other:?}"))),
    })
}

fn specs(outlets: &[ort::value::Outlet]) -> Result<Vec<TensorSpec>, LoadError> {
    outlets
        .iter()
        .map(|o| {
            let fail = |source| LoadError::Tensor {
                name: format!("`{}`", o.name()),
                source,
            };
            match o.dtype() {
                ValueType::Tensor { ty, shape, .. } => Ok(TensorSpec {
                    name: o.name().to_owned(),
                    dtype: dtype(*ty).map_err(fail)?,
                    shape: shape.iter().copied().collect(),
                }),
                other => Err(fail(TensorTypeError::NotATensor(format!("{other:?}")))),
            }
        })
        .collect()
}

fn to_value(t: Tensor) -> Result<DynValue, Error> {
    fn make<T: ort::value::PrimitiveTensorElementType + Clone + std::fmt::Debug + 'static>(
        shape: Vec<i64>,
        data: Vec<T>,
    ) -> ort::Result<DynValue> {
        Ok(ort::value::Tensor::from_array((shape, data))?.into_dyn())
    }
    let name = t.name;
    let shape = t.shape;
    let value = match t.data {
        TensorData::Bool(v) => make(shape, v),
        TensorData::U8(v) => make(shape, v),
        TensorData::U16(v) => make(shape, v),
        TensorData::U32(v) => make(shape, v),
        TensorData::U64(v) => make(shape, v),
        TensorData::I8(v) => make(shape, v),
        TensorData::I16(v) => make(shape, v),
        TensorData::I32(v) => make(shape, v),
        TensorData::I64(v) => make(shape, v),
        TensorData::F32(v) => make(shape, v),
        TensorData::F64(v) => make(shape, v),
    };
    value.map_err(|e| Error::invalid(format!("{input}: {e}", input = crate::tensor::input(&name))))
}

fn from_value(name: &str, value: &DynValue) -> Result<Tensor, Error> {
    fn read<T: ort::value::PrimitiveTensorElementType + Clone>(
        value: &DynValue,
    ) -> ort::Result<(Vec<i64>, Vec<T>)> {
        let (shape, data) = value.try_extract_tensor::<T>()?;
        Ok((shape.to_vec(), data.to_vec()))
    }
    let ty = match value.dtype() {
        ValueType::Tensor { ty, .. } => *ty,
        other => {
            return Err(Error::Inference(format!(
                "output `{name}` is a {other:?}, not a tensor"
            )));
        }
    };
    let fail = |e: ort::Error| Error::Inference(format!("output `{name}`: {e}"));
    let (shape, data) =
        match dtype(ty).map_err(|e| Error::Inference(format!("output `{name}`: {e}")))? {
            DataType::Bool => read::<bool>(value).map(|(s, d)| (s, TensorData::Bool(d))),
            DataType::U8 => read::<u8>(value).map(|(s, d)| (s, TensorData::U8(d))),
            DataType::U16 => read::<u16>(value).map(|(s, d)| (s, TensorData::U16(d))),
            DataType::U32 => read::<u32>(value).map(|(s, d)| (s, TensorData::U32(d))),
            DataType::U64 => read::<u64>(value).map(|(s, d)| (s, TensorData::U64(d))),
            DataType::I8 => read::<i8>(value).map(|(s, d)| (s, TensorData::I8(d))),
            DataType::I16 => read::<i16>(value).map(|(s, d)| (s, TensorData::I16(d))),
            DataType::I32 => read::<i32>(value).map(|(s, d)| (s, TensorData::I32(d))),
            DataType::I64 => read::<i64>(value).map(|(s, d)| (s, TensorData::I64(d))),
            DataType::F32 => read::<f32>(value).map(|(s, d)| (s, TensorData::F32(d))),
            DataType::F64 => read::<f64>(value).map(|(s, d)| (s, TensorData::F64(d))),
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
