use std::sync::{Condvar, Mutex};

use tokio::task::JoinHandle;

use super::*;
use crate::tensor::TensorData;
use crate::testing::{Fake, rows};

const INTERVAL: Duration = Duration::from_millis(10);

fn batcher(model: Arc<Fake>, max_rows: usize) -> (Batcher, Arc<VersionStats>) {
    let stats = Arc::new(VersionStats::default());
    let key = VersionKey {
        api: "a".into(),
        model: "m".into(),
        version: 1,
    };
    let settings = Batching {
        max_rows,
        interval: INTERVAL,
    };
    (Batcher::start(model, settings, &key, stats.clone()), stats)
}

/// Starts a call of `n` rows counting from `first` in the background.
fn call(batcher: &Arc<Batcher>, first: usize, n: usize) -> JoinHandle<Ran> {
    let batcher = batcher.clone();
    tokio::spawn(async move {
        let inputs = rows(first, n);
        let rows = batcher.rows(&inputs).expect("a batchable call");
        batcher.run(inputs, Vec::new(), rows, None).await
    })
}

/// As [`call`], by a caller whose deadline is `within` from now.
fn call_within(
    batcher: &Arc<Batcher>,
    first: usize,
    n: usize,
    within: Duration,
) -> JoinHandle<Ran> {
    let batcher = batcher.clone();
    let deadline = (tokio::time::Instant::now() + within).into_std();
    tokio::spawn(async move {
        let inputs = rows(first, n);
        let rows = batcher.rows(&inputs).expect("a batchable call");
        batcher.run(inputs, Vec::new(), rows, Some(deadline)).await
    })
}

/// The values of a call's only output.
fn values(ran: Ran) -> Vec<f32> {
    let (outputs, _, _) = ran.expect("the call succeeded");
    match &outputs[0].data {
        TensorData::F32(v) => v.clone(),
        other => panic!("unexpected output {other:?}"),
    }
}

/// What `doubling` answers a call of `n` rows from `first`.
fn doubled(first: usize, n: usize) -> Vec<f32> {
    (first..first + n)
        .flat_map(|r| [2.0 * r as f32, 2.0 * r as f32])
        .collect()
}

#[tokio::test(start_paused = true)]
async fn calls_within_the_interval_run_once_and_get_their_own_rows() {
    let model = Fake::doubling();
    let (b, stats) = batcher(model.clone(), 8);
    let b = Arc::new(b);
    let calls = [call(&b, 0, 1), call(&b, 10, 2), call(&b, 20, 1)];
    let mut answers = Vec::new();
    for c in calls {
        answers.push(values(c.await.unwrap()));
    }
    assert_eq!(answers, [doubled(0, 1), doubled(10, 2), doubled(20, 1)]);
    assert_eq!(*model.rows.lock().unwrap(), vec![4], "one run of 4 rows");
    // Triton's execution count: three calls, one execution.
    for _ in 0..3 {
        stats.success(Duration::ZERO, super::super::Phases::default());
    }
    let key = VersionKey {
        api: "a".into(),
        model: "m".into(),
        version: 1,
    };
    let counted = stats.to_proto(&key, "a/m");
    assert_eq!((counted.inference_count, counted.execution_count), (3, 1));
}

#[tokio::test(start_paused = true)]
async fn a_batch_never_passes_max_batch_size_and_larger_calls_run_alone() {
    let model = Fake::doubling();
    let (b, _) = batcher(model.clone(), 4);
    assert_eq!(b.rows(&rows(0, 5)), None, "more rows than a batch holds");
    assert_eq!(b.rows(&rows(0, 4)), Some(4));
    let b = Arc::new(b);
    // All three are waiting once the third arrives (1 + 2 rows are short
    // of a full batch), and they do not all fit in one.
    let calls = [call(&b, 0, 1), call(&b, 10, 2), call(&b, 20, 3)];
    let mut answers = Vec::new();
    for c in calls {
        answers.push(values(c.await.unwrap()));
    }
    assert_eq!(answers, [doubled(0, 1), doubled(10, 2), doubled(20, 3)]);
    assert_eq!(
        *model.rows.lock().unwrap(),
        vec![3, 3],
        "1 + 2 rows in one run; the 3-row call would pass 4, so it runs next"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lone_call_waits_the_interval_and_a_full_batch_does_not() {
    let (b, _) = batcher(Fake::doubling(), 2);
    let b = Arc::new(b);
    let start = tokio::time::Instant::now();
    call(&b, 0, 1).await.unwrap().unwrap();
    assert!(start.elapsed() >= INTERVAL, "waited for company");
    let start = tokio::time::Instant::now();
    call(&b, 0, 2).await.unwrap().unwrap();
    assert!(start.elapsed() < INTERVAL, "a full batch runs at once");
}

#[tokio::test(start_paused = true)]
async fn calls_asking_for_other_outputs_are_not_joined() {
    let model = Fake::doubling();
    let (b, _) = batcher(model.clone(), 8);
    let b = Arc::new(b);
    let other = {
        let b = b.clone();
        tokio::spawn(async move { b.run(rows(5, 1), vec!["y".to_owned()], 1, None).await })
    };
    let same = call(&b, 0, 1);
    assert_eq!(values(other.await.unwrap()), doubled(5, 1));
    assert_eq!(values(same.await.unwrap()), doubled(0, 1));
    assert_eq!(*model.rows.lock().unwrap(), vec![1, 1]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_joined_run_is_repeated_per_call_and_fails_only_its_culprit() {
    let model = Fake::running(|inputs| {
        let TensorData::F32(v) = &inputs[0].data else {
            unreachable!()
        };
        if v.contains(&99.0) {
            return Err(Error::invalid("row 99 is out of range"));
        }
        Fake::doubling().infer(inputs, &[])
    });
    let (b, _) = batcher(model.clone(), 8);
    let b = Arc::new(b);
    let calls = [call(&b, 1, 1), call(&b, 99, 1), call(&b, 3, 1)];
    let mut results = Vec::new();
    for c in calls {
        results.push(c.await.unwrap());
    }
    assert_eq!(values(results.remove(0)), doubled(1, 1));
    let err = results.remove(0).unwrap_err();
    assert!(err.to_string().contains("row 99"), "{err}");
    assert_eq!(values(results.remove(0)), doubled(3, 1));
    assert_eq!(*model.rows.lock().unwrap(), vec![3, 1, 1, 1]);
}

#[tokio::test(start_paused = true)]
async fn a_caller_gone_before_its_batch_is_not_run() {
    // The first run holds the model until the gate opens.
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let model = Fake::running({
        let gate = gate.clone();
        move |inputs| {
            let (open, cv) = &*gate;
            let _open = cv.wait_while(open.lock().unwrap(), |o| !*o).unwrap();
            Fake::doubling().infer(inputs, &[])
        }
    });
    let (b, _) = batcher(model.clone(), 2);
    let b = Arc::new(b);
    let first = call(&b, 0, 2);
    // Yields, not sleeps: a paused clock stands still while a blocking
    // task runs.
    while model.runs() == 0 {
        tokio::task::yield_now().await;
    }
    let gone = call(&b, 10, 1);
    let kept = call(&b, 20, 1);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    gone.abort();
    let _ = gone.await;
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    first.await.unwrap().unwrap();
    assert_eq!(values(kept.await.unwrap()), doubled(20, 1));
    assert_eq!(
        *model.rows.lock().unwrap(),
        vec![2, 1],
        "the call whose caller left was not run"
    );
}

/// A batcher whose first call waits `interval` for company.
fn waiting(model: Arc<Fake>, interval: Duration) -> Arc<Batcher> {
    let key = VersionKey {
        api: "a".into(),
        model: "m".into(),
        version: 1,
    };
    let settings = Batching {
        max_rows: 8,
        interval,
    };
    let stats = Arc::new(VersionStats::default());
    Arc::new(Batcher::start(model, settings, &key, stats))
}

#[tokio::test(start_paused = true)]
async fn a_lone_call_is_answered_before_its_deadline_not_after_the_interval() {
    let b = waiting(Fake::doubling(), Duration::from_secs(3600));
    let start = tokio::time::Instant::now();
    let within = Duration::from_millis(100);
    let ran = call_within(&b, 0, 1, within).await.unwrap();
    let took = start.elapsed();
    assert_eq!(values(ran), doubled(0, 1));
    assert!(took < within, "answered after its deadline: {took:?}");
    assert!(
        took >= within - DEADLINE_MARGIN,
        "waited for company until close to the deadline: {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_with_a_near_deadline_closes_the_batch_it_joins() {
    let model = Fake::doubling();
    let b = waiting(model.clone(), Duration::from_millis(500));
    let start = tokio::time::Instant::now();
    let first = call(&b, 0, 1);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let hurried = call_within(&b, 10, 1, Duration::from_millis(50));
    assert_eq!(values(hurried.await.unwrap()), doubled(10, 1));
    assert!(
        start.elapsed() < Duration::from_millis(60),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(values(first.await.unwrap()), doubled(0, 1));
    assert_eq!(*model.rows.lock().unwrap(), vec![2], "they ran together");
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_that_cannot_join_does_not_wait_past_its_deadline() {
    let model = Fake::doubling();
    let b = waiting(model.clone(), Duration::from_millis(500));
    let start = tokio::time::Instant::now();
    let first = call(&b, 0, 1);
    tokio::time::sleep(Duration::from_millis(10)).await;
    // Other outputs: it cannot join the filling batch, which closes early
    // so that it runs next, in time.
    let other = {
        let b = b.clone();
        let deadline = (tokio::time::Instant::now() + Duration::from_millis(50)).into_std();
        tokio::spawn(async move {
            b.run(rows(5, 1), vec!["y".to_owned()], 1, Some(deadline))
                .await
        })
    };
    assert_eq!(values(other.await.unwrap()), doubled(5, 1));
    assert!(
        start.elapsed() < Duration::from_millis(60),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(values(first.await.unwrap()), doubled(0, 1));
    assert_eq!(*model.rows.lock().unwrap(), vec![1, 1]);
}
