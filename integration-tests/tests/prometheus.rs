//! A real Prometheus (Debian's, unpacked by .ci/setup) scrapes `hotswap
//! up`'s metrics listener, and PromQL through its HTTP API sees the calls
//! this test made: requests by method and status, the model's phases,
//! loads, swaps and an unload, and the process basics.

use std::process::Command;
use std::time::Duration;

use hotswap_integration_tests::compose::copy_readable;
use hotswap_integration_tests::process::{ChildGuard, Hotswap, venv, workspace_root};
use hotswap_integration_tests::wait::Wait;

/// Runs `curl -s ARGS` and returns its output.
fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .arg("-s")
        .args(args)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of a PromQL query with one result, if there is one yet.
fn query(prometheus: &str, promql: &str) -> Option<f64> {
    let answer = curl(&[
        "--get",
        &format!("http://{prometheus}/api/v1/query"),
        "--data-urlencode",
        &format!("query={promql}"),
    ]);
    let answer: serde_json::Value = serde_json::from_str(&answer).ok()?;
    let result = answer["data"]["result"].as_array()?;
    result.first()?["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_scrapes_what_the_calls_did() {
    // A copy of the example, so that a version can be removed at the end.
    let bucket = tempfile::tempdir().unwrap();
    copy_readable(&workspace_root().join("examples/iris-onnx"), bucket.path());
    let config = bucket.path().join("hotswap.yaml");
    // Batched, so that batch sizes are recorded (calls one at a time: a
    // row per run).
    let mut yaml = std::fs::read_to_string(&config).unwrap();
    yaml.push_str("    server_side_batching: {max_batch_size: 4, batch_interval: 1ms}\n");
    std::fs::write(&config, yaml).unwrap();
    let up = Hotswap::up(&config);
    let front = up.addr_of("control-plane").to_string();
    let metrics = up.addr_of("metrics").to_string();

    // Seven calls that succeed (once iris is served), two that fail.
    let call = |body: &str| {
        curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            &format!("http://{front}/iris"),
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ])
    };
    let good = "[[5.1, 3.5, 1.4, 0.2]]";
    up.wait("a first call answered 200")
        .every(Duration::from_millis(100))
        .until_blocking(|| (call(good) == "200").then_some(()));
    for _ in 0..6 {
        assert_eq!(call(good), "200");
    }
    for _ in 0..2 {
        assert_eq!(call("[[1, 2]]"), "400");
    }
    let text = curl(&[&format!("http://{metrics}/metrics")]);
    assert!(text.contains("hotswap_requests_total"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let prometheus_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prometheus_yml,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: hotswap\n    static_configs: [{{targets: ['{metrics}']}}]\n"
        ),
    )
    .unwrap();
    let mut command = Command::new(venv().join("bin/prometheus"));
    command
        .arg(format!("--config.file={}", prometheus_yml.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut prometheus = ChildGuard::spawn("prometheus", &mut command);
    let prometheus_addr = format!(
        "127.0.0.1:{}",
        prometheus.listening_port(Duration::from_secs(30))
    );

    let checks = [
        // The front door's calls, by route and HTTP status.
        (
            r#"sum(hotswap_requests_total{service="control-plane",method="/{api}",code="200"})"#,
            7.0,
        ),
        (
            r#"sum(hotswap_requests_total{service="control-plane",method="/{api}",code="400"})"#,
            2.0,
        ),
        // The worker answered the seven (the control plane forwards gRPC).
        (
            r#"sum(hotswap_inferences_total{api="iris",outcome="success"})"#,
            7.0,
        ),
        (
            r#"sum(hotswap_inference_duration_seconds_count{api="iris",phase="compute_infer"})"#,
            7.0,
        ),
        // Each ran in a batch of its own row.
        (r#"sum(hotswap_batch_size_count{api="iris"})"#, 7.0),
        (r#"sum(hotswap_batch_size_bucket{api="iris",le="1"})"#, 7.0),
        // The example's three versions, each loaded once.
        (r#"sum(hotswap_model_loads_total{api="iris"})"#, 3.0),
    ];
    for (promql, want) in checks {
        Wait::new(format!("{promql} = {want}"))
            .every(Duration::from_millis(100))
            .context(|| format!("got {:?}", query(&prometheus_addr, promql)))
            .until_blocking(|| (query(&prometheus_addr, promql) == Some(want)).then_some(()));
    }
    let rss = query(&prometheus_addr, "process_resident_memory_bytes").unwrap_or(0.0);
    assert!(rss > 1e6, "process_resident_memory_bytes {rss}");
    // Of the three versions' loads, the first was the model's first; the
    // others swapped in beside it.
    let first_loads = r#"sum(hotswap_model_loads_total{api="iris"}) - sum(hotswap_model_swaps_total{api="iris"})"#;
    assert_eq!(
        query(&prometheus_addr, first_loads),
        Some(1.0),
        "{first_loads}"
    );
    // A version removed from the bucket is unloaded.
    std::fs::remove_dir_all(bucket.path().join("models/iris/3")).unwrap();
    let removed = r#"sum(hotswap_model_unloads_total{api="iris",reason="removed"})"#;
    up.wait(format!("{removed} = 1"))
        .every(Duration::from_millis(100))
        .until_blocking(|| (query(&prometheus_addr, removed) == Some(1.0)).then_some(()));
    let _ = prometheus.child.kill();
}

/// With `--tokens-file`, the metrics listener takes the front door's
/// tokens: the metrics name every API, model and version. And `hotswap up`
/// leaves Prometheus's own port (9090) alone by default.
#[test]
fn metrics_take_the_front_doors_tokens() {
    let secrets = tempfile::tempdir().unwrap();
    let tokens = secrets.path().join("tokens");
    std::fs::write(&tokens, "scraper-token-1\n").unwrap();
    let config = workspace_root().join("examples/iris-onnx/hotswap.yaml");
    let up = Hotswap::start(
        &[
            "up",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--tokens-file",
            tokens.to_str().unwrap(),
        ],
        &[],
    );
    let url = format!("http://{}/metrics", up.addr_of("metrics"));
    let status = |args: &[&str]| {
        let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        all.push(&url);
        curl(&all)
    };
    assert_eq!(status(&[]), "401", "a scrape without a token");
    assert_eq!(
        status(&["-H", "authorization: Bearer another-token"]),
        "401",
        "a scrape with a token not in the file"
    );
    let refused = curl(&[&url]);
    assert!(refused.starts_with("{\"error\""), "{refused}");
    let text = curl(&["-H", "authorization: Bearer scraper-token-1", &url]);
    assert!(text.contains("process_cpu_seconds_total"), "{text}");

    let help = Command::new(hotswap_integration_tests::process::hotswap_binary())
        .args(["up", "--help"])
        .output()
        .expect("hotswap up --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("[default: 127.0.0.1:8002]") && !help.contains("9090]"),
        "{help}"
    );
}
