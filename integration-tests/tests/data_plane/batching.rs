//! Dynamic batching (`server_side_batching`): concurrent calls within the
//! interval run as one execution and get exactly what they get unbatched;
//! a call's own rows count toward `max_batch_size`; ModelConfig reports the
//! batching as Triton does.

use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{
    answer, execution_counts, fixture, index_entry, infer_outputs, iris, iris_rows, model_config,
};
use hotswap_proto::inference::model_config::SchedulingChoice;
use hotswap_proto::inference::{ModelInferRequest, model_infer_request};

use super::stack;

/// The same model served twice: batched (a long interval, so calls sent
/// together certainly meet) and not.
const CONFIG: &str = "\
- {name: batched, predictor: {type: onnx, models: {path: '{root}iris'}, \
   server_side_batching: {max_batch_size: 4, batch_interval: 1s}}}
- {name: single, predictor: {type: onnx, models: {path: '{root}iris'}}}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_run_as_one_and_get_what_they_get_alone() {
    let (bucket, store, worker) = stack(CONFIG).await;
    bucket.put("iris/1/model.onnx", iris(2)).await;
    let p = worker.predictor().await;
    for api in ["batched", "single"] {
        answer(&p, api, "version 1 served", |r| r.version == 1).await;
    }
    let client = worker.inference().await;
    let (before, before_runs) = execution_counts(&client, "batched").await;

    // Eight calls of 1 to 3 rows, sent together: a batch holds at most 4
    // rows, so they need at least 4 executions, and without batching 8.
    let rows = [1, 2, 1, 3, 1, 1, 2, 1];
    let batched = futures::future::join_all(
        rows.iter()
            .enumerate()
            .map(|(seed, &n)| infer_outputs(&client, iris_rows("batched", n, seed))),
    )
    .await;
    let (inferences, executions) = execution_counts(&client, "batched").await;
    assert_eq!(inferences - before, 8);
    assert!(
        executions - before_runs < 8,
        "{executions} executions for 8 calls: none were batched"
    );
    // Exactly what each call gets alone.
    for (seed, (&n, got)) in rows.iter().zip(&batched).enumerate() {
        let alone = infer_outputs(&client, iris_rows("single", n, seed)).await;
        assert_eq!(got, &alone, "call {seed} ({n} rows)");
        assert_eq!(got[0].1[0], n as i64, "{got:?}");
    }

    // A call's own rows count: calls of 4 rows (the maximum) and 6 rows
    // (more) each run alone, and are answered.
    let (before, before_runs) = execution_counts(&client, "batched").await;
    let big = futures::future::join_all(
        [4, 4, 6]
            .iter()
            .enumerate()
            .map(|(seed, &n)| infer_outputs(&client, iris_rows("batched", n, 100 + seed))),
    )
    .await;
    let (after, after_runs) = execution_counts(&client, "batched").await;
    assert_eq!((after - before, after_runs - before_runs), (3, 3));
    for (seed, (n, got)) in [4, 4, 6].iter().zip(&big).enumerate() {
        assert_eq!(
            got,
            &infer_outputs(&client, iris_rows("single", *n, 100 + seed)).await
        );
    }

    // ModelConfig: Triton's max_batch_size and dynamic_batching, the dims
    // without the batch dimension; unbatched, the full shapes.
    let c = model_config(&client, "batched").await;
    assert_eq!(c.max_batch_size, 4);
    assert_eq!(c.input[0].dims, [4]);
    match c.scheduling_choice {
        Some(SchedulingChoice::DynamicBatching(d)) => {
            assert_eq!(d.max_queue_delay_microseconds, 1_000_000)
        }
        other => panic!("no dynamic_batching: {other:?}"),
    }
    let c = model_config(&client, "single").await;
    assert_eq!(
        (c.max_batch_size, c.input[0].dims.clone()),
        (0, vec![-1, 4])
    );
    assert!(c.scheduling_choice.is_none());
    worker.stop().await;
    store.stop().await;
}

/// An id the lookup model refuses (outside its table) fails the joined run;
/// each call then runs alone, and only the refused one fails. (That these
/// calls are joined at all is the test above's to show; this one failed
/// with the joined run's error sent to every call.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_model_refuses_fails_alone() {
    let (bucket, store, worker) = stack(
        "- {name: lookup, predictor: {type: onnx, models: {path: '{root}lookup'}, \
           server_side_batching: {max_batch_size: 8, batch_interval: 1s}}}",
    )
    .await;
    bucket.put("lookup/1/model.onnx", fixture("lookup")).await;
    eventually("version 1 ready", || async {
        index_entry(worker.addr, "lookup", "1")
            .await
            .filter(|m| m.state == "READY")
    })
    .await;
    let client = worker.inference().await;
    let ids = |ids: &[i64]| ModelInferRequest {
        model_name: "lookup".into(),
        inputs: vec![model_infer_request::InferInputTensor {
            name: "ids".into(),
            datatype: "INT64".into(),
            shape: vec![ids.len() as i64, 1],
            ..Default::default()
        }],
        raw_input_contents: vec![ids.iter().flat_map(|v| v.to_le_bytes()).collect()],
        ..Default::default()
    };
    let calls = [vec![1], vec![7], vec![2, 3], vec![0]];
    let answers = futures::future::join_all(calls.iter().map(|c| {
        let mut client = client.clone();
        let request = ids(c);
        async move { client.model_infer(request).await }
    }))
    .await;
    let rows = |r: &tonic::Response<hotswap_proto::inference::ModelInferResponse>| -> Vec<f32> {
        r.get_ref().raw_output_contents[0]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let expected: [Option<Vec<f32>>; 4] = [
        Some(vec![2.5, 3.5]),
        None,
        Some(vec![4.5, 5.5, 6.5, 7.5]),
        Some(vec![0.5, 1.5]),
    ];
    for ((call, answer), expected) in calls.iter().zip(&answers).zip(expected) {
        match (answer, expected) {
            (Ok(r), Some(want)) => assert_eq!(rows(r), want, "ids {call:?}"),
            (Err(e), None) => assert!(e.message().contains("out of data bounds"), "{e:?}"),
            (got, want) => panic!("ids {call:?}: {got:?}, expected {want:?}"),
        }
    }
    worker.stop().await;
    store.stop().await;
}
