//! Well-formed load that runs beside a fault: client tasks that call
//! without pause until told to stop (or a bound passes), counting every call
//! that did not succeed with the reason, so a fault test can say "zero
//! failed calls" and show the ones that did.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// No load runs longer than this, whatever the test does.
const BOUND: Duration = Duration::from_secs(180);

/// Calls running in the background until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Tally>>,
}

/// What a load saw: calls that succeeded, and why the others failed.
#[derive(Debug, Default)]
pub struct Tally {
    /// Calls that succeeded.
    pub ok: u64,
    /// The errors of the calls that failed.
    pub failed: Vec<String>,
}

impl Tally {
    /// Panics with the failures unless there were none and some calls
    /// succeeded.
    pub fn assert_clean(&self, what: &str) {
        assert!(
            self.failed.is_empty(),
            "{what}: {} of {} well-formed calls failed: {:?}",
            self.failed.len(),
            self.ok + self.failed.len() as u64,
            &self.failed[..self.failed.len().min(10)]
        );
        assert!(self.ok > 0, "{what}: no call succeeded");
    }
}

impl Load {
    /// One task per client, each calling `call` with a clone of its client
    /// (its own connection) until [`Load::stop`].
    pub fn start<C, F, Fut>(clients: Vec<C>, call: F) -> Load
    where
        C: Clone + Send + 'static,
        F: Fn(C) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks = clients
            .into_iter()
            .map(|client| {
                let (call, stop) = (call.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < BOUND {
                        match call(client.clone()).await {
                            Ok(()) => tally.ok += 1,
                            Err(e) => tally.failed.push(e),
                        }
                    }
                    tally
                })
            })
            .collect();
        Load { stop, tasks }
    }

    /// Stops every task and adds up what they saw.
    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Tally::default();
        for task in self.tasks {
            let t = task.await.expect("load task");
            all.ok += t.ok;
            all.failed.extend(t.failed);
        }
        all
    }
}
