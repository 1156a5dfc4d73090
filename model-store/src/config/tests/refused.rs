//! Configs that are refused, each naming the API and the field at fault.

use super::parse_err;

#[test]
fn unknown_fields_are_named() {
    let e = parse_err("- {name: a, predictor: {type: onnx, modles: {path: /m}}}");
    assert!(
        e.contains("api #1: predictor") && e.contains("unknown field `modles`"),
        "{e}"
    );
    let e = parse_err("- {name: a, predictor: {type: onnx, models: {path: /m, cache: 1}}}");
    assert!(
        e.contains("predictor.models") && e.contains("unknown field `cache`"),
        "{e}"
    );
    let e = parse_err("- {name: a, autoscale: {}, predictor: {type: onnx, models: {path: /m}}}");
    assert!(e.contains("unknown field `autoscale`"), "{e}");
    // Cortex's sections are accepted, but their fields are still checked.
    let e = parse_err(
        "- {name: a, autoscaling: {min_replica: 1}, predictor: {type: onnx, models: {path: /m}}}",
    );
    assert!(
        e.contains("autoscaling") && e.contains("unknown field `min_replica`"),
        "{e}"
    );
}

#[test]
fn invalid_combinations_are_named() {
    let cases = [
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m, dir: /d}}}",
            "api `a`: predictor.models: set only one of path, paths or dir (found path and dir)",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {dir: /d, cache_size: 3, disk_cache_size: 2}}}",
            "api `a`: predictor.models.cache_size: must not exceed disk_cache_size (3 > 2)",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {}}}",
            "api `a`: predictor.models: set one of path, paths or dir",
        ),
        (
            "- {name: a, predictor: {type: onnx}}",
            "api `a`: predictor.models: onnx predictors need a model",
        ),
        (
            "- {name: a, predictor: {type: python, path: p.py, models: {path: /m}}}",
            "api `a`: predictor.models: python predictors name their models in predictor.multi_model_reloading",
        ),
        (
            "- {name: a, predictor: {type: onnx, multi_model_reloading: {path: /m}}}",
            "api `a`: predictor.multi_model_reloading: only python predictors use this field",
        ),
        (
            "- {name: a, predictor: {type: python}}",
            "api `a`: predictor.path: python predictors need the file",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m}, processes_per_replica: 0}}",
            "api `a`: predictor.processes_per_replica: must be at least 1",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m, cache_size: 0}}}",
            "api `a`: predictor.models.cache_size: must be at least 1",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {paths: [{name: x, path: /1}, {name: x, path: /2}]}}}",
            "api `a`: predictor.models.paths[1].name: model \"x\" is listed twice",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {paths: []}}}",
            "api `a`: predictor.models.paths: lists no models",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: 'ftp://h/m'}}}",
            "api `a`: predictor.models.path: \"ftp://h/m\": unsupported scheme",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m, signature_key: s}}}",
            "api `a`: predictor.models.signature_key: only tensorflow predictors have signatures",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m, version_labels: {'2': 1}}}}",
            "api `a`: predictor.models.version_labels.2: a label starts with a letter",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m, version_labels: {latest: 1}}}}",
            "api `a`: predictor.models.version_labels.latest: `latest` already means the highest version",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m, version_labels: {stable: 0}}}}",
            "api `a`: predictor.models.version_labels.stable: versions are numbered from 1",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {paths: [{name: x, path: /1}], version_labels: {stable: 1}}}}",
            "api `a`: predictor.models.version_labels: with paths, set version_labels on each paths entry",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m, version_labels: {stable: 1}, traffic: {canary: 10}}}}",
            "api `a`: predictor.models.traffic.canary: not a label of version_labels (labels: stable)",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m, version_labels: {stable: 1}, traffic: {stable: 0}}}}",
            "api `a`: predictor.models.traffic: every weight is 0",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {paths: [{name: x, path: /1}], traffic: {stable: 1}}}}",
            "api `a`: predictor.models.traffic: with paths, set traffic on each paths entry",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {paths: [{name: x, path: /1, version_labels: {'a b': 1}}]}}}",
            "api `a`: predictor.models.paths[0].version_labels.a b: a label starts with a letter",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m, version_policy: newest}}}",
            "api `a`: predictor.models.version_policy: expected all, {latest: N} or {specific: [versions]}",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m, version_policy: {latest: 0}}}}",
            "api `a`: predictor.models.version_policy.latest: the number of versions to serve, at least 1",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m, version_policy: {specific: []}}}}",
            "api `a`: predictor.models.version_policy.specific: lists no versions",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m, version_policy: {specific: [1, x]}}}}",
            "api `a`: predictor.models.version_policy.specific: a list of version numbers",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m, version_policy: {latest: 1, specific: [1]}}}}",
            "api `a`: predictor.models.version_policy: expected all, {latest: N}",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m, version_policy: {specific: [1, 2]}, version_labels: {canary: 3}}}}",
            "api `a`: predictor.models.version_labels.canary: names version 3, which version_policy specific: [1, 2] leaves out",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {paths: [{name: x, path: /1, version_policy: {specific: [1]}, version_labels: {b: 2}}]}}}",
            "api `a`: predictor.models.paths[0].version_labels.b: names version 2, which version_policy specific: [1] leaves out",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m}}, compute: {inf: 1}}",
            "api `a`: compute.inf: Inferentia serves tensorflow and python predictors, not onnx",
        ),
        (
            "- {name: Bad_Name, predictor: {type: onnx, models: {path: /m}}}",
            "api `Bad_Name`: name: \"Bad_Name\" is not a valid API name",
        ),
        (
            "- {name: a, kind: BatchAPI, predictor: {type: onnx, models: {path: /m}}}",
            "api `a`: kind: \"BatchAPI\" is not supported",
        ),
        (
            "- {name: a, predictor: {type: onnx, models: {path: /m}, config: [1]}}",
            "api `a`: predictor.config: must be a mapping",
        ),
    ];
    for (text, expected) in cases {
        let e = parse_err(text);
        assert!(
            e.starts_with(expected),
            "{text}\n  got:      {e}\n  expected: {expected}"
        );
    }
}

#[test]
fn duplicate_names_wrong_types_and_empty_files_are_errors() {
    let e = parse_err(
        "- {name: a, predictor: {type: onnx, models: {path: /m}}}\n- {name: a, predictor: {type: onnx, models: {path: /n}}}",
    );
    assert!(
        e.contains("api `a`: name: another API has this name"),
        "{e}"
    );
    let e = parse_err("- {name: a, predictor: {type: torch, models: {path: /m}}}");
    assert!(
        e.contains("predictor.type") && e.contains("unknown variant `torch`"),
        "{e}"
    );
    assert!(parse_err("").contains("no APIs") || parse_err("").contains("invalid type"));
    assert!(parse_err("[]").contains("no APIs"));
}
