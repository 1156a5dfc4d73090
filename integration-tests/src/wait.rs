//! Waiting for a condition: every wait in the tests polls through here,
//! bounded, and a timeout's panic names what was awaited.

use std::future::Future;
use std::time::{Duration, Instant};

/// Every wait in these tests is bounded by this unless it says otherwise;
/// it is a hang guard, not a speed claim.
pub const WAIT: Duration = Duration::from_secs(30);

/// How often a wait looks again unless it says otherwise.
const EVERY: Duration = Duration::from_millis(50);

/// Retries `check` every 50 ms until it returns Some; panics after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    Wait::new(what).until(check).await
}

/// A bounded wait: for what, how long at most, how often to look, and
/// what a timeout's panic adds (a process's log, say).
pub struct Wait<'a> {
    what: String,
    within: Duration,
    every: Duration,
    context: Option<Box<dyn Fn() -> String + 'a>>,
}

impl<'a> Wait<'a> {
    /// A wait for `what`: up to [`WAIT`], looking every 50 ms.
    pub fn new(what: impl Into<String>) -> Wait<'a> {
        Wait {
            what: what.into(),
            within: WAIT,
            every: EVERY,
            context: None,
        }
    }

    /// Gives up after `within` rather than [`WAIT`].
    pub fn within(mut self, within: Duration) -> Wait<'a> {
        self.within = within;
        self
    }

    /// Looks every `every` rather than every 50 ms.
    pub fn every(mut self, every: Duration) -> Wait<'a> {
        self.every = every;
        self
    }

    /// Adds `context()`, read when the time is up, to the panic.
    pub fn context(mut self, context: impl Fn() -> String + 'a) -> Wait<'a> {
        self.context = Some(Box::new(context));
        self
    }

    /// Calls `check` until it returns Some; None once the time is up.
    pub async fn poll<T, F, Fut>(&self, mut check: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + self.within;
        loop {
            if let Some(v) = check().await {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(self.every).await;
        }
    }

    /// As [`Wait::poll`], panicking when the time is up.
    pub async fn until<T, F, Fut>(self, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        match self.poll(check).await {
            Some(v) => v,
            None => self.timed_out(),
        }
    }

    /// As [`Wait::poll`], blocking the thread (tests without a runtime,
    /// or code that must not yield).
    pub fn poll_blocking<T>(&self, mut check: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + self.within;
        loop {
            if let Some(v) = check() {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(self.every);
        }
    }

    /// As [`Wait::until`], blocking the thread.
    pub fn until_blocking<T>(self, check: impl FnMut() -> Option<T>) -> T {
        match self.poll_blocking(check) {
            Some(v) => v,
            None => self.timed_out(),
        }
    }

    fn timed_out(&self) -> ! {
        match &self.context {
            Some(context) => panic!(
                "timed out waiting for {} (within {:?})\n{}",
                self.what,
                self.within,
                context()
            ),
            None => panic!(
                "timed out waiting for {} (within {:?})",
                self.what, self.within
            ),
        }
    }
}
