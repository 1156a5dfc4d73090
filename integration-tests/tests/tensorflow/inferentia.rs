//! Inferentia APIs (compute.inf > 0) on a machine without Inferentia: the
//! saved_model.pb-only layout, live reloading off with more than one
//! process, and an honest FAILED_PRECONDITION for a model compiled for
//! Neuron, while one that also runs on CPU is served.

use hotswap_integration_tests::saved_model;
use hotswap_integration_tests::wait::eventually;
use hotswap_integration_tests::worker::{IRIS_INPUT, answer, iris_label, predict_json};
use hotswap_proto::inference::RepositoryIndexRequest;
use hotswap_proto::v1::{GetModelRequest, ListModelsRequest, VersionState};
use tonic::Code;

use super::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inferentia_layout_is_validated_both_ways() {
    let config = "
- {name: inf, predictor: {type: tensorflow, models: {dir: '{root}inf'}}, compute: {inf: 1}}
- {name: plain, predictor: {type: tensorflow, models: {dir: '{root}plain'}}}";
    let stack = Stack::start(config, async |b| {
        // saved_model.pb alone: the Inferentia layout.
        saved_model::put(b, "inf/pb/1", &saved_model::fixture("inferentia_cpu")).await;
        saved_model::put(b, "plain/pb/1", &saved_model::fixture("inferentia_cpu")).await;
        // A full SavedModel, and something that is no SavedModel at all.
        saved_model::put(b, "inf/full/1", &saved_model::iris(0)).await;
        saved_model::put(b, "plain/full/1", &saved_model::iris(0)).await;
        b.put(
            "inf/onnx/1/model.onnx",
            hotswap_integration_tests::worker::iris(0),
        )
        .await;
    })
    .await;
    let mut client = stack.store.client().await;
    let mut state = async |api: &str, model: &str| {
        let r = client
            .get_model(GetModelRequest {
                api: api.into(),
                model: model.into(),
            })
            .await
            .expect("GetModel")
            .into_inner();
        let v = &r.versions[0];
        (VersionState::try_from(v.state).unwrap(), v.reason.clone())
    };
    assert_eq!(state("inf", "pb").await.0, VersionState::Valid);
    assert_eq!(state("inf", "full").await.0, VersionState::Valid);
    let (s, why) = state("inf", "onnx").await;
    assert_eq!(s, VersionState::Invalid);
    assert!(why.contains("saved_model.pb"), "{why}");
    assert_eq!(state("plain", "full").await.0, VersionState::Valid);
    let (s, why) = state("plain", "pb").await;
    assert_eq!(s, VersionState::Invalid);
    assert!(
        why.contains("variables") && why.contains("compute.inf"),
        "{why}"
    );

    // The pb-only model runs on CPU, so the Inferentia API serves it here.
    let predictor = stack.control.predictor().await;
    let r = eventually("the CPU-runnable Inferentia model answers", || {
        let mut p = predictor.clone();
        async move {
            p.predict(predict_json("inf", "pb", "", IRIS_INPUT))
                .await
                .ok()
        }
    })
    .await
    .into_inner();
    assert_eq!(iris_label(&r), 0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_compiled_for_neuron_is_a_failed_precondition() {
    let config = "- {name: inf, predictor: {type: tensorflow, models: {path: '{root}inf'}}, compute: {inf: 1}}";
    let stack = Stack::start(config, async |b| {
        saved_model::put(b, "inf/1", &saved_model::fixture("inferentia_neuron")).await;
    })
    .await;
    let predictor = stack.control.predictor().await;
    // Every call, the first (which tries the load) and the later ones (in
    // the failure backoff), gets the same answer.
    for _ in 0..3 {
        let e = eventually("the worker has tried the model", || {
            let mut p = predictor.clone();
            async move {
                match p.predict(predict_json("inf", "", "", IRIS_INPUT)).await {
                    Err(e) if e.code() != Code::Unavailable => Some(e),
                    _ => None,
                }
            }
        })
        .await;
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert!(
            e.message().contains("NeuronOp") && e.message().contains("no Neuron runtime"),
            "{}",
            e.message()
        );
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_is_off_with_two_processes() {
    let config = "
- {name: two, predictor: {type: tensorflow, processes_per_replica: 2, models: {path: '{root}two'}}, compute: {inf: 1}}
- {name: one, predictor: {type: tensorflow, processes_per_replica: 1, models: {path: '{root}one'}}, compute: {inf: 1}}
- {name: late, predictor: {type: tensorflow, processes_per_replica: 2, models: {path: '{root}late'}}, compute: {inf: 1}}";
    let stack = Stack::start(config, async |b| {
        saved_model::put(b, "two/1", &saved_model::fixture("inferentia_cpu")).await;
        saved_model::put(b, "one/1", &saved_model::fixture("inferentia_cpu")).await;
    })
    .await;
    let predictor = stack.control.predictor().await;
    for api in ["one", "two"] {
        answer(&predictor, api, "version 1 served", |r| r.version == 1).await;
    }
    // An API whose folder was empty at start takes the first versions that
    // arrive, all of one upload.
    saved_model::put(
        &stack.bucket,
        "late/1",
        &saved_model::fixture("inferentia_cpu"),
    )
    .await;
    saved_model::put(
        &stack.bucket,
        "late/2",
        &saved_model::fixture("inferentia_cpu"),
    )
    .await;
    answer(&predictor, "late", "the late API's versions", |r| {
        r.version == 2
    })
    .await;
    let one = predictor
        .clone()
        .predict(predict_json("late", "", "1", IRIS_INPUT))
        .await
        .expect("version 1 of the late API");
    assert_eq!(one.into_inner().version, 1);
    // The status says so, for the two-process API only.
    let mut client = stack.store.client().await;
    let listed = client
        .list_models(ListModelsRequest::default())
        .await
        .expect("ListModels")
        .into_inner();
    let off = |name: &str| {
        listed
            .apis
            .iter()
            .find(|a| a.api.as_ref().unwrap().name == name)
            .unwrap()
            .api
            .as_ref()
            .unwrap()
            .reloading_off
            .clone()
    };
    assert!(
        off("two").contains("processes_per_replica 2"),
        "{}",
        off("two")
    );
    assert_eq!(off("one"), "");

    // Version 2 arrives for both, after the worker has gathered what was
    // there when it started.
    tokio::time::sleep(hotswap_common::catalog::PIN_GATHER).await;
    saved_model::put(
        &stack.bucket,
        "two/2",
        &saved_model::fixture("inferentia_cpu"),
    )
    .await;
    saved_model::put(
        &stack.bucket,
        "one/2",
        &saved_model::fixture("inferentia_cpu"),
    )
    .await;
    answer(&predictor, "one", "the one-process API reloads", |r| {
        r.version == 2
    })
    .await;
    // By now the worker has the model-store's news of both; the
    // two-process API still serves what it started with.
    let revision = client
        .get_model(GetModelRequest {
            api: "two".into(),
            model: String::new(),
        })
        .await
        .expect("GetModel")
        .into_inner();
    assert_eq!(revision.latest, Some(2), "the model-store has version 2");
    let w = &stack.worker;
    eventually("the worker has caught up", || async move {
        (w.worker.catalog().revision >= revision.revision).then_some(())
    })
    .await;
    for _ in 0..3 {
        let r = predictor
            .clone()
            .predict(predict_json("two", "", "", IRIS_INPUT))
            .await
            .expect("latest")
            .into_inner();
        assert_eq!(r.version, 1, "reloading is off for the two-process API");
    }
    let e = predictor
        .clone()
        .predict(predict_json("two", "", "2", IRIS_INPUT))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    // And the worker's index says why.
    let index = stack
        .worker
        .inference()
        .await
        .repository_index(RepositoryIndexRequest::default())
        .await
        .expect("index")
        .into_inner();
    let two = index.models.iter().find(|m| m.name == "two").expect("two");
    assert!(
        two.reason.contains("live model reloading is off"),
        "{two:?}"
    );
    stack.stop().await;
}
