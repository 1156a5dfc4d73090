//! A version's first inference, run right after it loads and before it is
//! published: a version that cannot run is refused while the one before
//! keeps serving, and the runtime's one-time work (memory arenas, kernel
//! selection, TensorFlow's graph preparation) is done before a caller
//! waits for it.
//!
//! The inputs are zeros shaped by the signature, with 1 for each dynamic
//! dimension. Inputs of an element type that cannot be made here (BYTES,
//! FP16, BF16), or too large to be worth making, skip the warm-up.

use super::{LoadError, Model};
use crate::tensor::{Tensor, TensorData};

/// Elements of all warm-up inputs together, at most (256 MiB of FP32).
const MAX_ELEMENTS: usize = 64 << 20;

/// Runs one inference on generated inputs; the error is the runtime's.
pub(super) fn run(model: &dyn Model) -> Result<(), LoadError> {
    let Some(inputs) = inputs(model) else {
        tracing::debug!("warm-up skipped: an input cannot be generated");
        return Ok(());
    };
    model
        .infer(inputs, &[])
        .map(drop)
        .map_err(|e| LoadError::Warmup(hotswap_proto::error::report(&e)))
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
