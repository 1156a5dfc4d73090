//! Where a model runs: inline on the async thread when its recent runs were
//! short, its inputs small and its session free (no hand-off costs more
//! than such a run), otherwise on the blocking pool; and reading large JSON
//! off the async threads.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Error;
use crate::backend::Model;
use crate::tensor::Tensor;

/// Inputs of at most this many elements in all may run inline (a model's
/// run time grows with its inputs; its recent runs say nothing of a call
/// many times their size).
const INLINE_MAX_ELEMENTS: usize = 4096;

/// Runs the model: inline when its recent runs were short, the inputs are
/// small and its session is free; otherwise on a blocking thread. Returns
/// the outputs, when the run began and how long it took.
pub(super) async fn run(
    model: &Arc<dyn Model>,
    inputs: Vec<Tensor>,
    outputs: Vec<String>,
    runs_short: bool,
) -> Result<(Vec<Tensor>, Instant, Duration), Error> {
    let small = || inputs.iter().map(|t| t.data.len()).sum::<usize>() <= INLINE_MAX_ELEMENTS;
    let inputs = if runs_short && small() {
        let began = Instant::now();
        // As on the blocking pool, a backend panic fails this request only.
        let tried =
            std::panic::catch_unwind(AssertUnwindSafe(|| model.try_infer_now(inputs, &outputs)));
        match tried {
            Ok(Ok(r)) => return r.map(|out| (out, began, began.elapsed())),
            Ok(Err(inputs)) => inputs,
            Err(_) => return Err(Error::Inference("backend panicked".to_owned())),
        }
    } else {
        inputs
    };
    let model = model.clone();
    let run = tokio::task::spawn_blocking(move || {
        let began = Instant::now();
        let r = model.infer(inputs, &outputs);
        (r, began, began.elapsed())
    })
    .await;
    match run {
        Ok((Ok(out), began, infer)) => Ok((out, began, infer)),
        Ok((Err(e), _, _)) => Err(e),
        // A backend panic fails this request only.
        Err(e) => Err(Error::Inference(format!("backend panicked: {e}"))),
    }
}

/// Runs `read` (decoding or encoding `len` bytes) on the runtime thread
/// when small, on the blocking pool when large (see
/// [`hotswap_common::blocking`]): reading one large request must not hold
/// up the other calls that thread serves.
pub(crate) async fn off_runtime<T: Send + 'static>(
    len: usize,
    read: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    hotswap_common::blocking::off_runtime(len, read)
        .await
        .map_err(|_| Error::ShuttingDown)?
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use std::sync::atomic::Ordering;

    use super::*;
    use crate::signature::Signature;
    use crate::tensor::TensorData;

    /// A backend that answers with its inputs and counts where it ran.
    #[derive(Default)]
    struct Echo {
        busy: bool,
        panics: bool,
        signature: Signature,
        inline: AtomicUsize,
        pooled: AtomicUsize,
    }

    impl Model for Echo {
        fn signature(&self) -> &Signature {
            &self.signature
        }

        fn platform(&self) -> &'static str {
            "echo"
        }

        fn infer(&self, inputs: Vec<Tensor>, _: &[String]) -> Result<Vec<Tensor>, Error> {
            self.pooled.fetch_add(1, Ordering::Relaxed);
            Ok(inputs)
        }

        fn try_infer_now(
            &self,
            inputs: Vec<Tensor>,
            _: &[String],
        ) -> Result<Result<Vec<Tensor>, Error>, Vec<Tensor>> {
            assert!(!self.panics, "the backend failed");
            if self.busy {
                return Err(inputs);
            }
            self.inline.fetch_add(1, Ordering::Relaxed);
            Ok(Ok(inputs))
        }
    }

    fn input(elements: usize) -> Vec<Tensor> {
        let data = TensorData::F32(vec![1.5; elements]);
        vec![Tensor::new("x", vec![elements as i64], data).unwrap()]
    }

    async fn ran(echo: Echo, elements: usize, runs_short: bool) -> (usize, usize) {
        let echo = Arc::new(echo);
        let model: Arc<dyn Model> = echo.clone();
        let (out, _, _) = run(&model, input(elements), Vec::new(), runs_short)
            .await
            .unwrap();
        assert_eq!(out, input(elements), "the run saw the caller's inputs");
        (
            echo.inline.load(Ordering::Relaxed),
            echo.pooled.load(Ordering::Relaxed),
        )
    }

    #[tokio::test]
    async fn short_runs_on_small_inputs_run_inline_and_the_rest_on_the_pool() {
        let short = |busy| Echo {
            busy,
            ..Echo::default()
        };
        assert_eq!(ran(short(false), 4, true).await, (1, 0), "short, small");
        assert_eq!(ran(short(false), 4, false).await, (0, 1), "not known short");
        assert_eq!(
            ran(short(false), INLINE_MAX_ELEMENTS + 1, true).await,
            (0, 1),
            "inputs too large to trust the recent run times"
        );
        assert_eq!(ran(short(true), 4, true).await, (0, 1), "session busy");
    }

    #[tokio::test]
    async fn a_panic_inline_fails_that_call_only() {
        let model: Arc<dyn Model> = Arc::new(Echo {
            panics: true,
            ..Echo::default()
        });
        let err = run(&model, input(4), Vec::new(), true).await.unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
        let (out, _, _) = run(&model, input(4), Vec::new(), false).await.unwrap();
        assert_eq!(out, input(4));
    }
}
