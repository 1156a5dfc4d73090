//! Swap under load: clients call Predict without pause while a version is
//! published, rewritten in place and removed, several times over. No
//! request fails, every answer comes from content that was published and
//! not yet known to be removed, and afterwards every replaced instance has
//! been freed. The same with dynamic batching, whose queue belongs to each
//! loaded instance.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{IRIS_INPUT, answer, iris, iris_label, predict_json};

use super::stack;

const CONFIG: &str = "- {name: iris, predictor: {type: onnx, models: {path: '{root}iris'}}}";
const BATCHED: &str = "- {name: iris, predictor: {type: onnx, models: {path: '{root}iris'}, \
                       server_side_batching: {max_batch_size: 8, batch_interval: 1ms}}}";
const CLIENTS: usize = 4;
const ROUNDS: usize = 3;

struct Answer {
    started: Instant,
    finished: Instant,
    version: u64,
    label: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swaps_under_load_fail_no_request() {
    swaps_fail_no_request(CONFIG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_swaps_under_load_fail_no_request() {
    swaps_fail_no_request(BATCHED).await;
}

async fn swaps_fail_no_request(config: &str) {
    let (bucket, store, worker) = stack(config).await;
    bucket.put("iris/1/model.onnx", iris(0)).await;
    let predictor = worker.predictor().await;
    answer(&predictor, "iris", "version 1 served", |_| true).await;

    // (version, label) pairs ever written, recorded before each write.
    let written = Arc::new(Mutex::new(HashSet::from([(1u64, 0i64)])));
    // Windows during which version 2 was known to be gone from the worker.
    let mut gone: Vec<(Instant, Instant)> = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let mut p = predictor.clone();
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut failures = Vec::new();
            // One client in four pins version 1; the others ask for latest.
            let version = if i == 0 { "1" } else { "latest" };
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match p
                    .predict(predict_json("iris", "", version, IRIS_INPUT))
                    .await
                {
                    Ok(r) => {
                        let r = r.into_inner();
                        answers.push(Answer {
                            started,
                            finished: Instant::now(),
                            version: r.version,
                            label: iris_label(&r),
                        });
                    }
                    Err(status) => failures.push(status),
                }
            }
            (answers, failures)
        }));
    }

    let mut p = predictor.clone();
    for round in 0..ROUNDS {
        let label = (round % 2 + 1) as i64;
        written.lock().unwrap().insert((2, label));
        if let Some(last) = gone.last_mut() {
            last.1 = Instant::now();
        }
        bucket.put("iris/2/model.onnx", iris(label as usize)).await;
        wait_for(&mut p, Some((2, label))).await;

        // Rewritten in place: same version, new content.
        let relabel = 3 - label;
        written.lock().unwrap().insert((2, relabel));
        bucket
            .put("iris/2/model.onnx", iris(relabel as usize))
            .await;
        wait_for(&mut p, Some((2, relabel))).await;

        bucket.delete_prefix("iris/2/").await;
        wait_for(&mut p, None).await;
        let w = &worker;
        eventually("version 2 unlisted", || async move {
            let listed = w.worker.catalog().versions.keys().any(|k| k.version == 2);
            (!listed).then_some(())
        })
        .await;
        gone.push((
            Instant::now(),
            Instant::now() + std::time::Duration::from_secs(3600),
        ));
    }
    stop.store(true, Ordering::Relaxed);

    let written = written.lock().unwrap().clone();
    let mut total = 0;
    let mut from_v2 = 0;
    for client in clients {
        let (answers, failures) = client.await.unwrap();
        assert!(
            failures.is_empty(),
            "failed requests during swaps: {failures:?}"
        );
        for a in &answers {
            assert!(
                written.contains(&(a.version, a.label)),
                "answer from content never published: v{} label {}",
                a.version,
                a.label
            );
            if a.version == 2 {
                from_v2 += 1;
                let stale = gone
                    .iter()
                    .any(|(from, to)| a.started > *from && a.finished < *to);
                assert!(!stale, "version 2 answered after it was removed");
            }
        }
        total += answers.len();
    }
    assert!(
        total > 0 && from_v2 > 0,
        "the clients saw the swaps ({total} answers, {from_v2} from version 2)"
    );

    // Every replaced or removed instance is freed once no request holds it.
    let w = &worker;
    let stats = eventually("old instances freed", || async move {
        let s = w.worker.table_stats();
        (s.live == s.published).then_some(s)
    })
    .await;
    assert_eq!(stats.published, 1, "{stats:?}");
    // v1, then per round: v2, its rewrite.
    assert_eq!(stats.loads, 1 + 2 * ROUNDS as u64, "{stats:?}");
    worker.stop().await;
    store.stop().await;
}

/// Waits until latest answers with (version, label), or with version 1 when
/// `want` is None.
async fn wait_for(
    p: &mut hotswap_proto::v1::predictor_client::PredictorClient<tonic::transport::Channel>,
    want: Option<(u64, i64)>,
) {
    eventually(&format!("latest = {want:?}"), || {
        let mut p = p.clone();
        async move {
            let r = p
                .predict(predict_json("iris", "", "", IRIS_INPUT))
                .await
                .ok()?
                .into_inner();
            let got = (r.version, iris_label(&r));
            match want {
                Some(w) => (got == w).then_some(()),
                None => (r.version == 1).then_some(()),
            }
        }
    })
    .await;
}
