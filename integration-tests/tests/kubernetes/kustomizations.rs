//! Each kustomization under deploy/kubernetes: the base, the TLS overlay,
//! the autoscaling overlays, and none left untested.

use std::path::Path;
use std::process::Command;

use hotswap_integration_tests::process::{hotswap_binary, workspace_root};
use serde_yaml::Value;

use crate::common::{check_common, check_plaintext_probes};
use crate::render::{KUSTOMIZATIONS, at, render, seq_at, str_at};

#[test]
fn the_base_renders_validates_and_keeps_its_promises() {
    let r = render("base");
    check_common(&r);
    check_plaintext_probes(&r);
    // The cluster token comes from a secret file, for every service.
    for name in [
        "hotswap-model-store",
        "hotswap-control-plane",
        "hotswap-worker",
    ] {
        let d = r.deployment(name);
        let file = d.flag("cluster-token-file").expect("--cluster-token-file");
        let dir = Path::new(file).parent().unwrap().to_str().unwrap();
        let (volume, read_only) = d.volume_at(dir);
        assert_eq!(str_at(volume, "secret.secretName"), "hotswap-cluster-token");
        assert!(read_only);
    }
}

#[test]
fn the_tls_overlay_serves_tls_everywhere_and_probes_with_certificates() {
    let r = render("overlays/tls");
    check_common(&r);
    for (name, secret, tls_name) in [
        (
            "hotswap-model-store",
            "hotswap-tls-model-store",
            "hotswap-model-store",
        ),
        (
            "hotswap-control-plane",
            "hotswap-tls-control-plane",
            "hotswap-control-plane",
        ),
        ("hotswap-worker", "hotswap-tls-worker", "hotswap-worker"),
    ] {
        let d = r.deployment(name);
        let dir = d.flag("tls").expect("--tls");
        let (volume, read_only) = d.volume_at(dir);
        assert_eq!(str_at(volume, "secret.secretName"), secret, "{name}");
        assert!(read_only);
        // Readiness is `hotswap health` over TLS with the service's own
        // certificate, against the listener's port and name.
        let probe: Vec<&str> = seq_at(d.container(), "readinessProbe.exec.command")
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let grpc = d.port("grpc");
        assert_eq!(
            probe[..3],
            ["hotswap", "health", &format!("127.0.0.1:{grpc}")][..],
            "{name}"
        );
        let after = |flag: &str| probe.iter().position(|a| *a == flag).map(|i| probe[i + 1]);
        assert_eq!(after("--tls"), Some(dir), "{name}");
        assert_eq!(after("--tls-name"), Some(tls_name), "{name}");
        let mut health = probe[1..].to_vec();
        health.push("--help");
        assert!(
            Command::new(hotswap_binary())
                .args(&health)
                .output()
                .unwrap()
                .status
                .success(),
            "{name}: the probe's flags: {probe:?}"
        );
        assert_eq!(
            at(d.container(), "livenessProbe.tcpSocket.port").as_u64(),
            Some(grpc),
            "{name}: liveness a TCP check (kubelet shows no certificate)"
        );
    }
    let control = r.deployment("hotswap-control-plane");
    assert_eq!(control.flag("worker-tls-name"), Some("hotswap-worker"));
    let probe = seq_at(control.container(), "readinessProbe.exec.command");
    assert!(
        probe.contains(&Value::from("hotswap.v1.Predictor")),
        "{probe:?}"
    );
}

/// Both autoscaling overlays scale the worker Deployment on the calls in
/// flight that workers export.
#[test]
fn the_autoscaling_overlays_scale_workers_on_calls_in_flight() {
    let keda = render("overlays/keda");
    check_common(&keda);
    check_plaintext_probes(&keda);
    let scaled = keda.get("ScaledObject", "hotswap-worker");
    assert_eq!(str_at(scaled, "apiVersion"), "keda.sh/v1alpha1");
    keda.deployment(str_at(scaled, "spec.scaleTargetRef.name"));
    let trigger = at(scaled, "spec.triggers.0");
    assert_eq!(str_at(trigger, "type"), "prometheus");
    let query = str_at(trigger, "metadata.query");
    assert!(
        query.contains("hotswap_requests_in_flight") && query.contains("service=\"data-plane\""),
        "{query}"
    );
    assert!(
        str_at(trigger, "metadata.threshold")
            .parse::<f64>()
            .unwrap()
            > 0.0
    );
    assert!(at(scaled, "spec.minReplicaCount").as_u64() >= Some(1));

    let hpa = render("overlays/hpa");
    check_common(&hpa);
    check_plaintext_probes(&hpa);
    let autoscaler = hpa.get("HorizontalPodAutoscaler", "hotswap-worker");
    assert_eq!(str_at(autoscaler, "spec.scaleTargetRef.kind"), "Deployment");
    hpa.deployment(str_at(autoscaler, "spec.scaleTargetRef.name"));
    assert_eq!(
        str_at(autoscaler, "spec.metrics.0.pods.metric.name"),
        "hotswap_requests_in_flight"
    );
    assert_eq!(
        str_at(autoscaler, "spec.metrics.0.pods.target.type"),
        "AverageValue"
    );
}

/// Every kustomization under deploy/kubernetes is one the tests render.
#[test]
fn every_kustomization_is_tested() {
    let root = workspace_root().join("deploy/kubernetes");
    let found: Vec<String> = walkdir::WalkDir::new(&root)
        .into_iter()
        .map(|e| e.expect("read deploy/kubernetes"))
        .filter(|e| e.file_name() == "kustomization.yaml")
        .map(|e| {
            e.path()
                .parent()
                .unwrap()
                .strip_prefix(&root)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    let mut found = found;
    found.sort();
    let mut tested: Vec<String> = KUSTOMIZATIONS.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(found, tested);
}
