use std::sync::Mutex;

use tokio::time::Instant;

use super::*;

const MIN: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(1);

/// A session that fails at once, except the runs listed in `progress_on`,
/// which make progress first; it records when each run started and what
/// was reported interrupted.
#[derive(Clone, Default)]
struct Flaky {
    starts: Arc<Mutex<Vec<Instant>>>,
    interrupted: Arc<Mutex<Vec<(usize, Duration)>>>,
    progress_on: Vec<usize>,
    /// Runs end without an error from this one on.
    clean_from: Option<usize>,
}

impl Session for Flaky {
    /// The number of the run that failed.
    type Error = usize;

    async fn run(&mut self, progress: &Progress) -> Result<(), usize> {
        let n = {
            let mut starts = self.starts.lock().unwrap();
            starts.push(Instant::now());
            starts.len() - 1
        };
        if self.progress_on.contains(&n) {
            progress.made();
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        if self.clean_from.is_some_and(|c| n >= c) {
            return Ok(());
        }
        Err(n)
    }

    fn interrupted(&self, error: &usize, retry_in: Duration) {
        self.interrupted.lock().unwrap().push((*error, retry_in));
    }
}

/// The waits between consecutive runs, after `runs` runs (the loop is
/// stopped then).
async fn gaps(session: Flaky, runs: usize) -> Vec<Duration> {
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(
        session.clone(),
        Delays { min: MIN, max: MAX },
        shutdown.clone(),
    ));
    while session.starts.lock().unwrap().len() < runs {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    task.await.unwrap();
    let starts = session.starts.lock().unwrap().clone();
    starts.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn failed_sessions_wait_longer_each_time_up_to_the_ceiling() {
    let gaps = gaps(Flaky::default(), 8).await;
    for (i, gap) in gaps.iter().enumerate() {
        // Doubling from MIN, with up to the delay again as jitter.
        let floor = (MIN * 2u32.pow(i as u32)).min(MAX);
        assert!(
            *gap >= floor && *gap <= floor * 2,
            "gap {i} was {gap:?}, expected {floor:?}..{:?}",
            floor * 2
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_session_that_made_progress_starts_the_delays_over() {
    let session = Flaky {
        progress_on: vec![4],
        ..Flaky::default()
    };
    let gaps = gaps(session, 7).await;
    // Runs 0..4 failed at once (growing waits); run 4 made progress for
    // 30 s, then the wait before run 5 is the shortest again.
    assert!(gaps[3] >= MIN * 8, "{gaps:?}");
    let after = gaps[4] - Duration::from_secs(30);
    assert!(after >= MIN && after < MIN * 2, "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn errors_are_reported_with_the_wait_and_clean_ends_are_not() {
    let session = Flaky {
        clean_from: Some(2),
        ..Flaky::default()
    };
    gaps(session.clone(), 4).await;
    let reported = session.interrupted.lock().unwrap().clone();
    let errors: Vec<usize> = reported.iter().map(|(e, _)| *e).collect();
    assert_eq!(errors, [0, 1]);
    assert!(reported[0].1 >= MIN && reported[0].1 < MIN * 2);
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_the_loop_in_a_session_and_in_a_wait() {
    // During a session that never ends.
    let session = Flaky {
        progress_on: vec![0],
        ..Flaky::default()
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(
        session.clone(),
        Delays { min: MIN, max: MAX },
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(session.starts.lock().unwrap().len(), 1);
    // During a wait: no run after it.
    let session = Flaky::default();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(
        session.clone(),
        Delays { min: MAX, max: MAX },
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(10)).await;
    shutdown.cancel();
    task.await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(session.starts.lock().unwrap().len(), 1);
}
