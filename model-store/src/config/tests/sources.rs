//! Labels, version policies and traffic weights reach each source of an
//! API's models as subscribers receive them.

use super::parse_ok;
use crate::config::{ApiConfig, describe_policy};

#[test]
fn version_labels_reach_each_models_source() {
    let apis = parse_ok(
        "- {name: a, predictor: {type: onnx, models: {path: /m, version_labels: {stable: 2, canary: 3}}}}\n\
         - {name: b, predictor: {type: onnx, models: {paths: [{name: x, path: /x, version_labels: {stable: 1}}, {name: y, path: /y}]}}}\n\
         - {name: c, predictor: {type: onnx, models: {dir: /d, version_labels: {old: 1}}}}",
    );
    let labels = |api: &ApiConfig| -> Vec<Vec<(String, u64)>> {
        api.to_proto()
            .sources
            .into_iter()
            .map(|s| {
                let mut l: Vec<(String, u64)> = s.version_labels.into_iter().collect();
                l.sort();
                l
            })
            .collect()
    };
    let pair = |l: &str, n| (l.to_owned(), n);
    assert_eq!(
        labels(&apis[0]),
        [vec![pair("canary", 3), pair("stable", 2)]]
    );
    assert_eq!(labels(&apis[1]), [vec![pair("stable", 1)], vec![]]);
    assert_eq!(labels(&apis[2]), [vec![pair("old", 1)]]);
}

#[test]
fn version_policies_reach_each_models_source() {
    let apis = parse_ok(
        "- {name: a, predictor: {type: onnx, models: {path: /m, version_policy: {latest: 2}}}}\n\
         - {name: b, predictor: {type: onnx, models: {version_policy: {specific: [3, 1, 3]}, \
           paths: [{name: x, path: /x}, {name: y, path: /y, version_policy: all}, {name: z, path: /z, version_policy: {latest: 1}}]}}}\n\
         - {name: c, predictor: {type: python, path: p.py, multi_model_reloading: {dir: /d, version_policy: {latest: 1}}}}\n\
         - {name: d, predictor: {type: onnx, models: {dir: /d}}}",
    );
    let policies = |api: &ApiConfig| -> Vec<String> {
        api.to_proto()
            .sources
            .iter()
            .map(|s| describe_policy(s.version_policy.as_ref().unwrap()))
            .collect()
    };
    assert_eq!(policies(&apis[0]), ["latest: 2"]);
    // The top-level policy is the default of `paths` entries.
    assert_eq!(policies(&apis[1]), ["specific: [1, 3]", "all", "latest: 1"]);
    assert_eq!(policies(&apis[2]), ["latest: 1"]);
    assert_eq!(policies(&apis[3]), ["all"]);
}

#[test]
fn traffic_weights_reach_each_models_source() {
    let apis = parse_ok(
        "- {name: b, predictor: {type: onnx, models: {paths: [{name: x, path: /x, version_labels: {stable: 1, canary: 2}, traffic: {stable: 90, canary: 10}}, {name: y, path: /y}]}}}",
    );
    let sources = apis[0].to_proto().sources;
    let mut x: Vec<(String, u32)> = sources[0].traffic.clone().into_iter().collect();
    x.sort();
    assert_eq!(x, [("canary".to_owned(), 10), ("stable".to_owned(), 90)]);
    assert!(sources[1].traffic.is_empty());
}
