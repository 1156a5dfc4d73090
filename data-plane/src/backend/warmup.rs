//! A version's first inference, run right after it loads and before it is
//! published: a version that cannot run is refused while the one before
//! keeps serving, and the runtime's one-time work (memory arenas, kernel
//! selection, TensorFlow's graph preparation) is done before a caller
//! waits for it.
//!
//! A version may ship its own warm-up requests: `warmup/*.json` in its
//! folder, each a Predict JSON payload (an object of input name -> nested
//! list, or a bare nested list for one input), run in name order; a model
//! that needs inputs of a certain size says so that way. Without them the
//! inputs are zeros shaped by the signature, with 1 for each dynamic
//! dimension; inputs of an element type that cannot be made here (BYTES,
//! FP16, BF16), or too large to be worth making, skip the warm-up.

use std::path::Path;

use super::{LoadError, Model};
use crate::tensor::json::JsonPayload;
use crate::tensor::{Tensor, TensorData};

/// Elements of all warm-up inputs together, at most (256 MiB of FP32).
const MAX_ELEMENTS: usize = 64 << 20;

/// The folder of shipped warm-up requests, in a version folder.
const FOLDER: &str = "warmup";

/// Shipped requests read, at most (each is one inference at load).
const MAX_REQUESTS: usize = 64;

/// Bytes of one shipped request, at most.
const MAX_REQUEST_BYTES: u64 = 64 << 20;

/// Runs the version's shipped warm-up requests, or one inference on
/// generated inputs when it ships none; the error is the runtime's (or why
/// a shipped request could not be read).
pub(super) fn run(model: &dyn Model, dir: &Path) -> Result<(), LoadError> {
    let shipped = shipped(dir)?;
    if !shipped.is_empty() {
        for file in shipped {
            let name = format!("{FOLDER}/{}", file.display());
            let failed = |message: String| LoadError::WarmupRequest {
                file: name.clone(),
                message,
            };
            let text = std::fs::read_to_string(dir.join(FOLDER).join(&file))
                .map_err(|e| failed(format!("reading it: {e}")))?;
            let signature = model.signature();
            let inputs = JsonPayload::new(text)
                .and_then(|p| p.inputs(signature))
                .and_then(|t| signature.check_inputs(t))
                .map_err(|e| failed(hotswap_proto::error::report(&e)))?;
            model
                .infer(inputs, &[])
                .map_err(|e| failed(hotswap_proto::error::report(&e)))?;
        }
        return Ok(());
    }
    let Some(inputs) = inputs(model) else {
        tracing::debug!("warm-up skipped: an input cannot be generated");
        return Ok(());
    };
    model
        .infer(inputs, &[])
        .map(drop)
        .map_err(|e| LoadError::Warmup(hotswap_proto::error::report(&e)))
}

/// The `*.json` files of the version's `warmup/` folder, by name (none when
/// it has no such folder).
fn shipped(dir: &Path) -> Result<Vec<std::path::PathBuf>, LoadError> {
    let folder = dir.join(FOLDER);
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LoadError::Folder(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(LoadError::Folder)?;
        let path = std::path::PathBuf::from(entry.file_name());
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let size = entry.metadata().map_err(LoadError::Folder)?.len();
        if size > MAX_REQUEST_BYTES {
            return Err(LoadError::WarmupRequest {
                file: format!("{FOLDER}/{}", path.display()),
                message: format!("{size} bytes, more than the {MAX_REQUEST_BYTES} read"),
            });
        }
        files.push(path);
    }
    files.sort();
    if files.len() > MAX_REQUESTS {
        return Err(LoadError::WarmupRequest {
            file: format!("{FOLDER}/"),
            message: format!("{} requests, more than the {MAX_REQUESTS} run", files.len()),
        });
    }
    Ok(files)
}

fn inputs(model: &dyn Model) -> Option<Vec<Tensor>> {
    let mut total = 0usize;
    let mut inputs = Vec::new();
    for spec in &model.signature().inputs {
        let shape: Vec<i64> = spec
            .shape
            .iter()
            .map(|&d| if d < 0 { 1 } else { d })
            .collect();
        let count = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))?;
        total = total.checked_add(count).filter(|&t| t <= MAX_ELEMENTS)?;
        inputs.push(Tensor {
            name: spec.name.clone(),
            shape,
            data: TensorData::zeros(spec.dtype, count)?,
        });
    }
    Some(inputs)
}
