//! The front door's own answers: `latest`, numbered versions and labels
//! resolved against the catalog and the registry, traffic split by weight,
//! statistics summed from workers, predictor APIs routed by API.

use std::sync::Arc;

use hotswap_proto::error::{Code, ServiceError};
use hotswap_proto::inference as pb;
use hotswap_proto::service::{InferenceService, PredictorService};
use hotswap_proto::v1::{Api, ModelSource, PredictRequest, PredictorType};

use hotswap_proto::limit::RequestLimit;

use crate::front::{FrontDoor, resolve};
use crate::registry::Route;
use crate::router::Router;
use crate::testing::{Cluster, catalog, key, model, onnx_api, version_route};

#[tokio::test]
async fn statistics_summed_from_workers_saturate() {
    let c = Cluster::new();
    c.worker("w1", &[version_route(1)]);
    c.worker("w2", &[version_route(1)]);
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(catalog(&[(1, true)], &[onnx_api("a")])));
    let front = FrontDoor {
        catalog: rx,
        registry: c.registry.clone(),
        router: Arc::new(Router::new(c.registry.clone())),
        limit: RequestLimit::default(),
    };
    let stats = InferenceService::model_statistics(&front, pb::ModelStatisticsRequest::default())
        .await
        .expect("statistics");
    let s = &stats.model_stats[0];
    assert_eq!(s.inference_count, u64::MAX);
    assert_eq!(s.execution_count, u64::MAX);
    let success = s
        .inference_stats
        .as_ref()
        .unwrap()
        .success
        .as_ref()
        .unwrap();
    assert_eq!((success.count, success.ns), (u64::MAX, u64::MAX));
}

#[tokio::test]
async fn latest_is_the_highest_version_a_worker_holds() {
    let c = Cluster::new();
    let catalog = catalog(&[(1, true), (2, true), (3, true)], &[onnx_api("a")]);
    c.worker("w", &[version_route(2)]);
    // Version 3 is newer, but no worker has loaded it yet: no call waits.
    assert_eq!(
        resolve(&catalog, &c.registry, &model(), "").unwrap(),
        key(2)
    );
    assert_eq!(
        resolve(&catalog, &c.registry, &model(), "latest").unwrap(),
        key(2)
    );
    c.worker("w2", &[version_route(3)]);
    assert_eq!(
        resolve(&catalog, &c.registry, &model(), "").unwrap(),
        key(3)
    );
}

#[tokio::test]
async fn latest_held_nowhere_is_the_highest_valid_version() {
    let c = Cluster::new();
    let catalog = catalog(&[(1, true), (2, true), (3, false)], &[onnx_api("a")]);
    assert_eq!(
        resolve(&catalog, &c.registry, &model(), "").unwrap(),
        key(2)
    );
}

#[tokio::test]
async fn latest_without_a_valid_version_says_why() {
    let c = Cluster::new();
    let invalid = catalog(&[(1, false)], &[onnx_api("a")]);
    let err = resolve(&invalid, &c.registry, &model(), "").unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.to_string().contains("broken"), "{err}");
    let empty = catalog(&[], &[onnx_api("a")]);
    let err = resolve(&empty, &c.registry, &model(), "").unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn a_numbered_version_must_exist_and_need_not_be_held() {
    let c = Cluster::new();
    let catalog = catalog(&[(1, true), (2, true)], &[onnx_api("a")]);
    assert_eq!(
        resolve(&catalog, &c.registry, &model(), "1").unwrap(),
        key(1)
    );
    let err = resolve(&catalog, &c.registry, &model(), "7").unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.to_string().contains("versions: 1, 2"), "{err}");
}

#[tokio::test]
async fn a_label_names_its_version_and_a_dangling_label_says_which() {
    let c = Cluster::new();
    let api = Api {
        sources: vec![ModelSource {
            name: "m".into(),
            version_labels: [("stable".to_owned(), 1), ("canary".to_owned(), 9)].into(),
            ..Default::default()
        }],
        ..onnx_api("a")
    };
    let catalog = catalog(&[(1, true), (2, true)], &[api]);
    assert_eq!(
        resolve(&catalog, &c.registry, &model(), "stable").unwrap(),
        key(1)
    );
    let err = resolve(&catalog, &c.registry, &model(), "canary").unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.to_string()
            .contains("label `canary` of `a/m` names version 9, which is not in the model index"),
        "{err}"
    );
    let err = resolve(&catalog, &c.registry, &model(), "beta").unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.to_string().contains("labels: canary (9), stable (1)"),
        "{err}"
    );
}

#[test]
fn traffic_splits_calls_naming_no_version_by_weight() {
    let api = |canary: u64| Api {
        sources: vec![ModelSource {
            name: "m".into(),
            version_labels: [("stable".to_owned(), 1), ("canary".to_owned(), canary)].into(),
            traffic: [("stable".to_owned(), 90), ("canary".to_owned(), 10)].into(),
            ..Default::default()
        }],
        ..onnx_api("a")
    };
    let split = catalog(&[(1, true), (2, true), (3, false)], &[api(2)]);
    // 20,000 draws: the canary's share is 0.1 with a standard deviation of
    // 0.002; 0.02 either side is ten of them.
    let draws = 20_000;
    let canary = (0..draws)
        .filter(|_| split.pick_by_traffic(&model(), "").as_deref() == Some("2"))
        .count();
    let share = canary as f64 / draws as f64;
    assert!((0.08..0.12).contains(&share), "canary share {share}");
    // Only calls naming no version are split.
    for named in ["latest", "1", "stable"] {
        assert_eq!(split.pick_by_traffic(&model(), named), None);
    }
    // A label whose version is invalid (3) or absent (9) is not picked:
    // those draws are left to `latest`.
    for missing in [3, 9] {
        let split = catalog(&[(1, true), (2, true), (3, false)], &[api(missing)]);
        let picks: std::collections::HashSet<Option<String>> = (0..2_000)
            .map(|_| split.pick_by_traffic(&model(), ""))
            .collect();
        assert_eq!(
            picks,
            [Some("1".to_owned()), None].into(),
            "canary -> {missing}"
        );
    }
}

#[tokio::test]
async fn predictor_apis_are_routed_by_api_to_a_worker_running_the_predictor() {
    let c = Cluster::new();
    let python = Api {
        name: "py".into(),
        predictor_type: PredictorType::Python as i32,
        predictor_source: "class PythonPredictor: ...".into(),
        ..Default::default()
    };
    c.worker("models", &[version_route(1)]);
    let runs = c.worker("runs", &[Route::Predictor("py".into())]);
    // The worker running the predictor looks busier: it still gets the
    // calls, being the only one that serves the API.
    c.busy("runs", 50);
    let (_tx, rx) =
        tokio::sync::watch::channel(Arc::new(catalog(&[(1, true)], &[onnx_api("a"), python])));
    let front = FrontDoor {
        catalog: rx,
        registry: c.registry.clone(),
        router: Arc::new(Router::new(c.registry.clone())),
        limit: RequestLimit::default(),
    };
    for _ in 0..5 {
        let answer = PredictorService::predict(
            &front,
            PredictRequest {
                api: "py".into(),
                ..Default::default()
            },
        )
        .await
        .expect("routed");
        assert_eq!(answer.model, "runs");
    }
    assert_eq!(runs.calls(), 5);
    let status = c.registry.get("runs").unwrap().status();
    assert_eq!(status.predictors, vec!["py".to_owned()]);
    assert!(status.held.is_empty());
}

#[tokio::test]
async fn calls_a_worker_would_refuse_for_their_size_are_not_forwarded() {
    let c = Cluster::new();
    let w = c.worker("w", &[version_route(1)]);
    let python = Api {
        name: "py".into(),
        predictor_type: PredictorType::Python as i32,
        predictor_source: "class PythonPredictor: ...".into(),
        ..Default::default()
    };
    let runs = c.worker("runs", &[Route::Predictor("py".into())]);
    let (_tx, rx) =
        tokio::sync::watch::channel(Arc::new(catalog(&[(1, true)], &[onnx_api("a"), python])));
    let front = FrontDoor {
        catalog: rx,
        registry: c.registry.clone(),
        router: Arc::new(Router::new(c.registry.clone())),
        limit: RequestLimit(8),
    };
    let infer = |bytes: usize| pb::ModelInferRequest {
        model_name: "a".into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "x".into(),
            datatype: "UINT8".into(),
            shape: vec![bytes as i64],
            ..Default::default()
        }],
        raw_input_contents: vec![vec![0; bytes].into()],
        ..Default::default()
    };
    let refused = InferenceService::model_infer(&front, infer(9))
        .await
        .expect_err("over the limit");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        refused.public_message(),
        "input `x` is 9 bytes; requests are limited to 8 bytes"
    );
    let body = |api: &str, bytes: usize| PredictRequest {
        api: api.into(),
        payload: Some(hotswap_proto::v1::predict_request::Payload::Body(
            vec![0; bytes].into(),
        )),
        ..Default::default()
    };
    let refused = PredictorService::predict(&front, body("py", 9))
        .await
        .expect_err("over the limit");
    assert_eq!(
        refused.public_message(),
        "body is 9 bytes; requests are limited to 8 bytes"
    );
    assert!(
        PredictorService::predict(&front, body("a", 9))
            .await
            .is_err()
    );
    assert_eq!(
        (w.calls(), runs.calls()),
        (0, 0),
        "nothing over the limit reached a worker"
    );
    InferenceService::model_infer(&front, infer(8))
        .await
        .expect("at the limit");
    assert_eq!(w.calls(), 1);
}
