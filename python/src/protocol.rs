//! The frames between the worker and a Python child: a little-endian u32
//! length, then that many bytes of JSON.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest frame either side accepts.
pub const MAX_FRAME: u32 = 256 << 20;

/// The file descriptor the worker hands a child its end of the socket on.
pub const PROTOCOL_FD: std::os::fd::RawFd = 3;

/// A frame from the worker to a child.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ToChild {
    /// First message: the user's predictor file and the API's config.
    Init {
        /// The predictor file's contents.
        source: String,
        /// Its name, for tracebacks.
        file: String,
        /// `predictor.config`, handed to the constructor.
        config: serde_json::Value,
        /// Models `get_model` keeps loaded (0: no limit).
        #[serde(default)]
        cache_size: u32,
        /// A virtualenv (made from the same Python) whose packages the
        /// predictor imports.
        #[serde(default)]
        venv: Option<String>,
        /// Which contract: `PythonPredictor(config, python_client)` or
        /// `ONNXPredictor(onnx_client, config)` or
        /// `TensorFlowPredictor(tensorflow_client, config)`.
        #[serde(default)]
        class: PredictorClass,
        /// Python threads running calls at once in the process
        /// (threads_per_process).
        #[serde(default = "one")]
        threads: u32,
        /// The API has models: a Python predictor must define `load_model`.
        #[serde(default)]
        has_models: bool,
    },
    /// Run `predict` on a free Python thread.
    Predict {
        /// The call's number in this process, echoed in its answer.
        id: u64,
        /// What `predict` receives.
        request: Request,
    },
    /// A model version changed or went away: a cached model of it whose
    /// content is not `content_hash` ("" once removed) is dropped now.
    Evict {
        /// The model's name.
        model: String,
        /// The version.
        version: u64,
        /// The version's current content ("" once removed).
        content_hash: String,
    },
    /// The answer to a [`FromChild::GetModel`] with the same `call`.
    Model {
        /// The request's number.
        call: u64,
        /// Where the model is, or why not.
        answer: ModelAnswer,
    },
    /// The answer to a [`FromChild::RunModel`] or
    /// [`FromChild::ModelSignature`] with the same `call`.
    Run {
        /// The request's number.
        call: u64,
        /// The model's outputs or signature, or why not.
        answer: RunAnswer,
    },
}

fn one() -> u32 {
    1
}

/// One call as the predictor receives it: Cortex's `payload`,
/// `query_params` and `headers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The body.
    pub payload: Payload,
    /// The URL's query parameters.
    #[serde(default)]
    pub query_params: BTreeMap<String, String>,
    /// The HTTP headers, by lower-case name.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The body as Cortex handed it to `predict`, chosen by its Content-Type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Payload {
    /// `application/json`: the parsed document.
    Json(serde_json::Value),
    /// `text/plain`: a `str`.
    Text(String),
    /// Any other type: `bytes`, as sent.
    Bytes(#[serde(with = "base64_bytes")] Vec<u8>),
    /// `multipart/form-data` or `application/x-www-form-urlencoded`: a
    /// mapping of field name to `str`, or to an `UploadFile` for a file.
    Form(Vec<FormField>),
}

/// One field of a form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormField {
    /// The field's name.
    pub name: String,
    /// Its value.
    pub value: FormValue,
}

/// A form field's value: text, or an uploaded file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FormValue {
    /// A plain field: a `str`.
    Text {
        /// The value.
        text: String,
    },
    /// A file: an `UploadFile`.
    File {
        /// The name the client gave it.
        filename: String,
        /// Its type, when the client gave one.
        content_type: Option<String>,
        /// Its bytes.
        #[serde(with = "base64_bytes")]
        data: Vec<u8>,
    },
}

/// What `predict` returned, as Cortex answered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    /// Anything JSON can hold (numpy values through `tolist()`).
    Json {
        /// The value.
        value: serde_json::Value,
    },
    /// A `str`: answered as `text/plain`.
    Text {
        /// The text.
        text: String,
    },
    /// `bytes` or `bytearray`: answered as `application/octet-stream`.
    Bytes {
        /// The bytes.
        #[serde(with = "base64_bytes")]
        data: Vec<u8>,
    },
    /// A response object (starlette's `Response`, or anything with
    /// `status_code` and `body`): the predictor chose the status, type and
    /// headers.
    Response {
        /// The HTTP status.
        status_code: u16,
        /// The Content-Type, when set.
        media_type: Option<String>,
        /// The other headers.
        headers: BTreeMap<String, String>,
        /// The body.
        #[serde(with = "base64_bytes")]
        body: Vec<u8>,
    },
}

/// Bytes inside the JSON frames, as base64.
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// Which predictor class a file defines, as the API's `predictor.type`
/// says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictorClass {
    /// `PythonPredictor(config, python_client)`.
    #[default]
    Python,
    /// `ONNXPredictor(onnx_client, config)`.
    Onnx,
    /// `TensorFlowPredictor(tensorflow_client, config)`.
    TensorFlow,
}

/// One tensor of a model: name, numpy type name, shape (-1: free).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TensorInfo {
    /// The tensor's name in the model.
    pub name: String,
    /// Its element type, as numpy names it (`float32`, ...).
    pub dtype: String,
    /// Its dimensions; -1 for a free one.
    pub shape: Vec<i64>,
}

/// The worker's answer to a model-client request: the model's outputs or
/// signature, or why there are none.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RunAnswer {
    /// The model's outputs in its output order.
    Outputs {
        /// Each output, described, with its values as nested lists.
        outputs: Vec<(TensorInfo, serde_json::Value)>,
    },
    /// The model's inputs and outputs.
    Signature {
        /// Its inputs.
        inputs: Vec<TensorInfo>,
        /// Its outputs.
        outputs: Vec<TensorInfo>,
    },
    /// `lookup`: no such model or version (LookupError); `invalid`: the
    /// input does not fit the model (ValueError); otherwise RuntimeError.
    Failed {
        /// What went wrong, for the Python exception.
        message: String,
        /// No such model or version.
        lookup: bool,
        /// The input does not fit the model.
        invalid: bool,
    },
}

/// Where a model version's files are, or why there is none.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ModelAnswer {
    /// The version is on disk.
    Found {
        /// The model's name, resolved.
        model: String,
        /// The version ("latest" resolved).
        version: u64,
        /// Changes whenever the version's files do.
        content_hash: String,
        /// Its folder in the worker's disk cache.
        path: String,
    },
    /// `lookup`: the model or version does not exist (LookupError in
    /// Python); otherwise it could not be fetched.
    Missing {
        /// What went wrong, for the Python exception.
        message: String,
        /// No such model or version.
        lookup: bool,
    },
}

/// A frame from a child to the worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FromChild {
    /// The predictor is built: calls may come.
    Ready,
    /// The file did not import, or the class is missing, or `__init__`
    /// raised: the Python traceback.
    InitFailed {
        /// The Python traceback.
        traceback: String,
    },
    /// What `predict` returned for call `id`.
    Answer {
        /// The call's number.
        id: u64,
        /// What `predict` returned.
        output: Output,
        /// `post_predict` runs next on the call's thread, which is free
        /// again at the [`FromChild::Freed`] with this `id`.
        #[serde(default)]
        post_predict: bool,
    },
    /// The thread that ran call `id` finished its `post_predict`.
    Freed {
        /// The call's number.
        id: u64,
    },
    /// `python_client.get_model(...)` during a call: the child waits for a
    /// [`ToChild::Model`] before it goes on.
    GetModel {
        /// The request's number, echoed in the answer.
        call: u64,
        /// The model's name; None: the API's only model.
        model: Option<String>,
        /// A version number, or "latest".
        version: String,
        /// For "latest": the highest valid version below this one (the
        /// child falls back past versions whose `load_model` failed).
        #[serde(default)]
        below: Option<u64>,
    },
    /// `onnx_client.predict(...)` or `tensorflow_client.predict(...)`: run
    /// the model in the worker.
    RunModel {
        /// The request's number, echoed in the answer.
        call: u64,
        /// The model's name; None: the API's only model.
        model: Option<String>,
        /// A version number, or "latest".
        version: String,
        /// A nested list, or an object of input name -> nested list.
        input: serde_json::Value,
    },
    /// `onnx_client.get_model(...)`: the model's signature.
    ModelSignature {
        /// The request's number, echoed in the answer.
        call: u64,
        /// The model's name; None: the API's only model.
        model: Option<String>,
        /// A version number, or "latest".
        version: String,
    },
    /// `predict` raised; `lookup` when it was a LookupError (from
    /// `get_model`), which callers see as NOT_FOUND.
    Failed {
        /// The call's number.
        id: u64,
        /// The Python traceback.
        traceback: String,
        /// The exception was a LookupError.
        lookup: bool,
    },
}

/// Reads one frame (the child's side, blocking); None at the end of the
/// stream.
pub fn read_sync<T: for<'de> Deserialize<'de>>(from: &mut impl Read) -> std::io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match from.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "frame of {len} bytes is over the limit"
        )));
    }
    let mut body = vec![0u8; len as usize];
    from.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(std::io::Error::other)
}

/// Writes one frame (the child's side, blocking).
pub fn write_sync<T: Serialize>(to: &mut impl Write, message: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("frame over the limit"))?;
    to.write_all(&len.to_le_bytes())?;
    to.write_all(&body)?;
    to.flush()
}

/// Reads one frame (the worker's side); None at the end of the stream.
pub async fn read_async<T: for<'de> Deserialize<'de>>(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
) -> std::io::Result<Option<T>> {
    let len = match from.read_u32_le().await {
        Ok(len) => len,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "frame of {len} bytes is over the limit"
        )));
    }
    let mut body = vec![0u8; len as usize];
    from.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(std::io::Error::other)
}

/// Writes one frame (the worker's side).
pub async fn write_async<T: Serialize>(
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    message: &T,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("frame over the limit"))?;
    to.write_u32_le(len).await?;
    to.write_all(&body).await?;
    to.flush().await
}
