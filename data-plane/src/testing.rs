//! Test doubles for the worker's unit tests: a model that runs a closure,
//! counting its runs (no runtime library needed).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Error;
use crate::backend::Model;
use crate::signature::{Signature, TensorSpec};
use crate::tensor::{DataType, Tensor, TensorData};

type Run = dyn Fn(Vec<Tensor>) -> Result<Vec<Tensor>, Error> + Send + Sync;

/// A model of one f32 input `x` and one output `y`, both `[-1, width]`,
/// whose runs call `run`.
pub struct Fake {
    signature: Signature,
    run: Box<Run>,
    /// Runs so far, and the rows of each.
    pub runs: AtomicUsize,
    pub rows: std::sync::Mutex<Vec<i64>>,
}

impl Fake {
    /// `y = x * 2`, row by row.
    pub fn doubling() -> Arc<Fake> {
        Fake::running(|inputs| {
            let x = &inputs[0];
            let TensorData::F32(values) = &x.data else {
                return Err(Error::invalid("not f32"));
            };
            let doubled = values.iter().map(|v| v * 2.0).collect();
            Ok(vec![Tensor::new(
                "y",
                x.shape.clone(),
                TensorData::F32(doubled),
            )?])
        })
    }

    /// A model whose runs call `run`.
    pub fn running(
        run: impl Fn(Vec<Tensor>) -> Result<Vec<Tensor>, Error> + Send + Sync + 'static,
    ) -> Arc<Fake> {
        let spec = |name: &str| TensorSpec {
            name: name.to_owned(),
            dtype: DataType::F32,
            shape: vec![-1, 2],
        };
        Arc::new(Fake {
            signature: Signature {
                inputs: vec![spec("x")],
                outputs: vec![spec("y")],
            },
            run: Box::new(run),
            runs: AtomicUsize::new(0),
            rows: Default::default(),
        })
    }

    /// Runs so far.
    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

impl Model for Fake {
    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn platform(&self) -> &'static str {
        "fake"
    }

    fn infer(&self, inputs: Vec<Tensor>, _outputs: &[String]) -> Result<Vec<Tensor>, Error> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let rows = inputs.first().and_then(|t| t.shape.first()).copied();
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(rows.unwrap_or(0));
        (self.run)(inputs)
    }
}

/// An `x` input of `rows` rows of two values, each row `[r, r]` counting
/// from `first`.
pub fn rows(first: usize, rows: usize) -> Vec<Tensor> {
    let values = (first..first + rows)
        .flat_map(|r| [r as f32, r as f32])
        .collect();
    vec![Tensor::new("x", vec![rows as i64, 2], TensorData::F32(values)).expect("a valid tensor")]
}
