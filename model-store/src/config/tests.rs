use std::path::Path;

use super::*;

const BASE: &str = "/srv/config";

fn parse_ok(text: &str) -> Vec<ApiConfig> {
    parse(text, Path::new(BASE)).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> String {
    match parse(text, Path::new(BASE)) {
        Ok(apis) => panic!("expected an error, parsed {apis:?}"),
        Err(e) => hotswap_proto::error::report(&e),
    }
}

#[test]
fn a_cortex_config_parses_with_every_field() {
    let apis = parse_ok(
        r#"
- name: iris-classifier
  kind: RealtimeAPI
  predictor:
    type: onnx
    path: predictor.py
    models:
      path: s3://my-bucket/models/iris/
    processes_per_replica: 2
    threads_per_process: 4
    config: {threshold: 0.5, labels: [a, b]}
  compute: {cpu: 1, mem: 2G, gpu: 0}
- name: text
  kind: RealtimeAPI
  predictor:
    type: tensorflow
    models:
      paths:
        - {name: gen, path: gs://bkt/gen}
        - {name: sent, path: models/sent, signature_key: predict}
      cache_size: 1
      disk_cache_size: 2
      signature_key: serving_default
- name: py
  predictor:
    type: python
    path: py/predictor.py
    multi_model_reloading:
      dir: file:///models
- name: neuron
  predictor:
    type: tensorflow
    models: {path: /m/neuron}
  compute: {inf: 1}
"#,
    );
    assert_eq!(apis.len(), 4);
    let iris = &apis[0];
    assert_eq!(iris.predictor_type, PredictorType::Onnx);
    assert_eq!(iris.layout(), Layout::Onnx);
    assert_eq!(
        iris.predictor_path.as_deref(),
        Some(Path::new("/srv/config/predictor.py"))
    );
    assert_eq!(
        (iris.processes_per_replica, iris.threads_per_process),
        (2, 4)
    );
    assert_eq!(iris.config["labels"][1], "b");
    let sources = iris.sources();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].model.as_deref(), Some("iris-classifier"));
    assert_eq!(
        sources[0].location.to_string(),
        "s3://my-bucket/models/iris/"
    );

    let text = &apis[1];
    let models = text.models.as_ref().unwrap();
    assert_eq!(
        (models.cache_size, models.disk_cache_size),
        (Some(1), Some(2))
    );
    let sources = text.sources();
    assert_eq!(
        sources[1].location.to_string(),
        "file:///srv/config/models/sent/"
    );
    assert_eq!(sources[1].signature_key.as_deref(), Some("predict"));

    let py = &apis[2];
    assert_eq!(py.kind, "RealtimeAPI");
    assert_eq!(py.sources()[0].model, None);
    assert_eq!(py.layout(), Layout::Python);
    assert_eq!(apis[3].layout(), Layout::Inferentia);

    let proto = text.to_proto();
    assert_eq!(proto.sources.len(), 2);
    assert_eq!(proto.cache_size, 1);
    assert_eq!(proto.signature_key, "serving_default");
}

#[test]
fn a_python_predictor_without_models_loads_what_it_wants() {
    let apis = parse_ok("- {name: p, predictor: {type: python, path: p.py}}");
    assert!(apis[0].models.is_none());
    assert!(apis[0].sources().is_empty());
}

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

/// A Cortex 0.31 config as written loads: each section or field that
/// changes nothing here gives one warning naming it; server_side_batching
/// is kept; a GPU request is served on CPU and says so.
#[test]
fn a_cortex_config_with_foreign_sections_loads_with_a_warning_each() {
    let apis = parse_ok(
        r#"
- name: text-generator
  kind: RealtimeAPI
  predictor:
    type: python
    path: predictor.py
    dependencies: {pip: requirements.txt}
    server_side_batching: {max_batch_size: 8, batch_interval: 0.1s}
    processes_per_replica: 1
    threads_per_process: 8
    config: {k: 1}
    python_path: src/
    image: quay.io/cortexlabs/python-predictor-cpu:0.31.1
    env: {MODE: fast}
    log_level: info
    shm_size: 1Gi
  compute: {cpu: 200m, gpu: 1, mem: 2Gi}
  autoscaling:
    min_replicas: 1
    max_replicas: 5
    target_replica_concurrency: 8
    window: 60s
  update_strategy: {max_surge: 25%, max_unavailable: 0}
  networking: {endpoint: /gen, api_gateway: public}
- name: quiet
  predictor: {type: python, path: p.py}
  compute: {gpu: 0}
"#,
    );
    let fields: Vec<&str> = apis[0]
        .warnings
        .iter()
        .map(|w| w.split_once(':').unwrap().0)
        .collect();
    assert_eq!(
        fields,
        [
            "autoscaling",
            "update_strategy",
            "networking.endpoint",
            "networking.api_gateway",
            "predictor.image",
            "predictor.dependencies",
            "predictor.python_path",
            "predictor.log_level",
            "predictor.shm_size",
            "predictor.server_side_batching",
            "compute.cpu/mem",
            "compute.gpu",
        ]
    );
    let gpu = apis[0].warnings.last().unwrap();
    assert!(gpu.contains("serves on CPU only"), "{gpu}");
    assert_eq!(
        apis[0].server_side_batching,
        Some(ServerSideBatching {
            max_batch_size: 8,
            batch_interval: std::time::Duration::from_millis(100),
        })
    );
    assert_eq!(apis[0].env["MODE"], "fast");
    assert!(apis[1].warnings.is_empty(), "{:?}", apis[1].warnings);
    let proto = apis[0].to_proto();
    assert_eq!(proto.config_warnings.len(), 12);
    assert_eq!(proto.server_side_batching.unwrap().max_batch_size, 8);

    for (interval, ms) in [
        ("100ms", 100),
        ("1m30s", 90_000),
        ("2s", 2000),
        ("250us", 0),
    ] {
        let config = format!(
            "- {{name: b, predictor: {{type: python, path: p.py, server_side_batching: {{max_batch_size: 2, batch_interval: {interval}}}}}}}"
        );
        let got = parse_ok(&config)[0]
            .server_side_batching
            .unwrap()
            .batch_interval;
        assert_eq!(got.as_millis(), ms, "{interval}");
    }
    for bad in ["fast", "10", "1d", "-1s"] {
        let config = format!(
            "- {{name: b, predictor: {{type: python, path: p.py, server_side_batching: {{max_batch_size: 2, batch_interval: {bad}}}}}}}"
        );
        let e = parse_err(&config);
        assert!(
            e.contains("server_side_batching.batch_interval") && e.contains("not a duration"),
            "{bad}: {e}"
        );
    }
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

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("apis.yaml");
    std::fs::write(
        &path,
        "- {name: a, predictor: {type: onnx, models: {path: models/a}}}",
    )
    .unwrap();
    let apis = load(&path).unwrap();
    assert_eq!(
        apis[0].sources()[0].location.to_string(),
        format!("file://{}/models/a/", dir.path().display())
    );
    std::fs::write(&path, "- {name: a}").unwrap();
    let e = hotswap_proto::error::report(&load(&path).unwrap_err());
    assert!(e.contains("apis.yaml") && e.contains("predictor"), "{e}");
    let missing = hotswap_proto::error::report(&load(&dir.path().join("nope.yaml")).unwrap_err());
    assert!(
        missing.contains("nope.yaml") && missing.contains("cannot read"),
        "{missing}"
    );
}

#[test]
fn load_reads_the_predictor_file_for_workers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("apis.yaml");
    std::fs::write(
        &path,
        "- {name: p, predictor: {type: python, path: src/predictor.py}}",
    )
    .unwrap();
    let e = hotswap_proto::error::report(&load(&path).unwrap_err());
    assert!(
        e.contains("api `p`: predictor.path: cannot read") && e.contains("src/predictor.py"),
        "{e}"
    );
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("src/predictor.py"),
        "class PythonPredictor: pass\n",
    )
    .unwrap();
    let apis = load(&path).unwrap();
    assert_eq!(
        apis[0].predictor_source.as_deref(),
        Some("class PythonPredictor: pass\n")
    );
    assert_eq!(
        apis[0].to_proto().predictor_source,
        "class PythonPredictor: pass\n"
    );
}

#[test]
fn inferentia_with_several_processes_turns_reloading_off() {
    let apis = parse_ok(
        "
- {name: two, predictor: {type: tensorflow, processes_per_replica: 2, models: {path: /m}}, compute: {inf: 1}}
- {name: one, predictor: {type: tensorflow, models: {path: /m}}, compute: {inf: 1}}
- {name: cpu, predictor: {type: tensorflow, processes_per_replica: 2, models: {path: /m}}}",
    );
    let off: Vec<String> = apis.iter().map(|a| a.to_proto().reloading_off).collect();
    assert!(off[0].contains("processes_per_replica 2"), "{}", off[0]);
    assert_eq!(off[1], "", "one process reloads live");
    assert_eq!(off[2], "", "without Inferentia reloading stays on");
}
