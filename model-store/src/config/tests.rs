//! The config as parsed and loaded: every field of a Cortex config, the
//! sections that load with a warning, the file and the predictor file read
//! by `load`; refused configs and what reaches each source are below.

mod refused;
mod sources;

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

    for (interval, ms) in [("100ms", 100), ("0.5s", 500), ("1s", 1000), ("250us", 0)] {
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

/// A lone call waits `batch_interval` for company: `1000h` is a typo that
/// would hang every quiet call, refused at load rather than found later.
#[test]
fn a_batch_interval_over_the_maximum_is_refused() {
    let config = |interval: &str| {
        format!(
            "- {{name: b, predictor: {{type: onnx, models: {{path: /m}}, server_side_batching: {{max_batch_size: 2, batch_interval: {interval}}}}}}}"
        )
    };
    for over in ["1000h", "1m30s", "2s", "1.001s", "1s1ns"] {
        let e = parse_err(&config(over));
        assert!(
            e.contains("predictor.server_side_batching.batch_interval")
                && e.contains(over)
                && e.contains("at most 1s"),
            "{over}: {e}"
        );
    }
    let at_most = parse_ok(&config("1000ms"))[0].server_side_batching.unwrap();
    assert_eq!(at_most.batch_interval, std::time::Duration::from_secs(1));
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
