//! Decoding and encoding large requests and answers off the async runtime's
//! threads. Reading 16 MB of JSON takes tens of milliseconds; done on a
//! runtime thread it holds up every other task that thread serves (a
//! worker's registration reports among them: a control plane once dropped
//! both workers during a burst of large JSON calls). Small inputs stay on
//! the runtime thread, where a hand-off would cost more than the work.
//! Large inputs are handled at most one fewer at a time than there are
//! cores: eight 32 MB JSON bodies at once would otherwise take every core
//! for seconds, and the runtime threads, free but without a core, would
//! answer nothing meanwhile (a fresh client's call took over a second).

use std::sync::OnceLock;

use tokio::sync::Semaphore;

/// Inputs up to this many bytes are handled on the runtime thread; larger
/// ones on the blocking pool. At about 1 GB/s for parsing JSON, 64 KiB is
/// some 60 µs of work, a few times a hand-off's cost.
pub const INLINE_BYTES: usize = 64 * 1024;

/// Large inputs handled at once in this process.
fn large_at_once() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Semaphore::new(cores.saturating_sub(1).max(1))
    })
}

/// The blocking pool refused the work: the runtime is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("shutting down")]
pub struct ShuttingDown;

/// Runs `work` on an input of `len` bytes: inline when small, otherwise on
/// the blocking pool, when a core is free for it. A panic in `work` is
/// resumed in the caller, as if it had run inline.
pub async fn off_runtime<T: Send + 'static>(
    len: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ShuttingDown> {
    if len <= INLINE_BYTES {
        return Ok(work());
    }
    // Never closed; held until the work is done.
    let _turn = large_at_once().acquire().await.ok();
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => Ok(done),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: only when the runtime shuts down.
        Err(_) => Err(ShuttingDown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_inputs_run_on_another_thread() {
        let here = std::thread::current().id();
        let small = off_runtime(INLINE_BYTES, move || std::thread::current().id() == here);
        assert!(small.await.unwrap(), "small: inline");
        let large = off_runtime(INLINE_BYTES + 1, move || {
            std::thread::current().id() == here
        });
        assert!(!large.await.unwrap(), "large: on the blocking pool");
    }
}
