//! What every rendering promises, whatever the overlay, and the probes of
//! those without TLS.

use std::process::Command;

use hotswap_integration_tests::process::hotswap_binary;
use serde_yaml::Value;

use crate::render::{Deployment, Rendered, at, host_port, seq_at, str_at};

/// What every rendering keeps, whatever the overlay.
pub fn check_common(r: &Rendered) {
    let store = r.deployment("hotswap-model-store");
    let control = r.deployment("hotswap-control-plane");
    let worker = r.deployment("hotswap-worker");

    for d in [&store, &control, &worker] {
        let what = format!("{}/{}", r.dir, d.name);
        // Non-root, read-only, no privilege, with resources.
        assert_eq!(
            at(d.pod(), "securityContext.runAsNonRoot").as_bool(),
            Some(true),
            "{what}"
        );
        assert!(
            at(d.pod(), "securityContext.runAsUser")
                .as_u64()
                .unwrap_or(0)
                > 0,
            "{what}"
        );
        assert_eq!(
            at(d.pod(), "automountServiceAccountToken").as_bool(),
            Some(false),
            "{what}"
        );
        let c = d.container();
        assert_eq!(
            at(c, "securityContext.readOnlyRootFilesystem").as_bool(),
            Some(true),
            "{what}"
        );
        assert_eq!(
            at(c, "securityContext.allowPrivilegeEscalation").as_bool(),
            Some(false),
            "{what}"
        );
        assert!(
            seq_at(c, "securityContext.capabilities.drop").contains(&Value::from("ALL")),
            "{what}: drops all capabilities"
        );
        for resource in ["requests.cpu", "requests.memory", "limits.memory"] {
            assert!(
                !at(c, &format!("resources.{resource}")).is_null(),
                "{what}: {resource}"
            );
        }
        // A read-only root still has a writable /tmp.
        let (tmp, read_only) = d.volume_at("/tmp");
        assert!(!at(tmp, "emptyDir").is_null() && !read_only, "{what}: /tmp");
        // Every flag is one the binary knows: `--help` after them exits 0
        // only when clap accepted each (an unknown one fails first).
        let mut args = d.args();
        args.push("--help");
        let help = Command::new(hotswap_binary())
            .args(&args)
            .output()
            .expect("run hotswap");
        assert!(
            help.status.success(),
            "{what}: hotswap {args:?}: {}",
            String::from_utf8_lossy(&help.stderr)
        );
        // Probes: readiness and liveness both.
        assert!(
            !at(c, "readinessProbe").is_null(),
            "{what}: readiness probe"
        );
        assert!(!at(c, "livenessProbe").is_null(), "{what}: liveness probe");
    }
    // Secrets are referenced, never carried.
    assert!(
        r.of_kind("Secret").next().is_none(),
        "{}: no Secret objects",
        r.dir
    );

    // The model-store reads the generated config, which is a valid config.
    let (config, _) = store.volume_at("/etc/hotswap/config");
    let config_map = r.get("ConfigMap", str_at(config, "configMap.name"));
    let file = store.flag("config").expect("--config");
    let key = file
        .strip_prefix("/etc/hotswap/config/")
        .expect("config in the mount");
    let dir = tempfile::tempdir().unwrap();
    // (The key has a dot: no dotted path.)
    let text = at(config_map, "data").get(key).and_then(Value::as_str);
    std::fs::write(
        dir.path().join(key),
        text.expect("the config in the ConfigMap"),
    )
    .unwrap();
    hotswap_model_store::config::load(&dir.path().join(key))
        .unwrap_or_else(|e| panic!("{}: the ConfigMap's API config: {e:#}", r.dir));
    // Everyone reaches the model-store through its Service.
    let store_service = r.get("Service", "hotswap-model-store");
    for d in [&control, &worker] {
        let (host, port) = host_port(d.flag("model-store").expect("--model-store"));
        assert_eq!(host, "hotswap-model-store", "{}", d.name);
        assert_eq!(port, store.port("grpc"));
        assert_eq!(at(store_service, "spec.ports.0.port").as_u64(), Some(port));
    }
    assert_eq!(
        host_port(store.flag("listen").unwrap()).1,
        store.port("grpc")
    );
    assert_selects(store_service, &store);

    // Two control planes, a disruption budget keeping one, a client
    // Service on the front door.
    assert_eq!(
        at(control.object, "spec.replicas").as_u64(),
        Some(2),
        "{}",
        r.dir
    );
    let pdb = r.get("PodDisruptionBudget", "hotswap-control-plane");
    assert_eq!(at(pdb, "spec.minAvailable").as_u64(), Some(1));
    for (key, value) in at(pdb, "spec.selector.matchLabels")
        .as_mapping()
        .expect("labels")
    {
        assert_eq!(
            control.labels().get(key),
            Some(value),
            "the budget selects the control planes"
        );
    }
    let front = r.get("Service", "hotswap-control-plane");
    assert_selects(front, &control);
    assert_eq!(
        host_port(control.flag("listen").unwrap()).1,
        control.port("grpc")
    );
    assert_eq!(str_at(front, "spec.ports.0.targetPort"), "grpc");
    // Its headless twin, for clients balancing over DNS: ready replicas only.
    let pods = r.get("Service", "hotswap-control-plane-pods");
    assert_selects(pods, &control);
    assert_eq!(str_at(pods, "spec.clusterIP"), "None", "headless");
    assert_ne!(
        at(pods, "spec.publishNotReadyAddresses").as_bool(),
        Some(true)
    );
    assert_eq!(
        at(pods, "spec.ports.0.port").as_u64(),
        Some(control.port("grpc"))
    );

    // Workers register with every control plane: a headless Service that
    // lists not-ready pods too (a control plane is ready only once a
    // worker registered), on the internal port.
    let (host, port) = host_port(worker.flag("control-plane").expect("--control-plane"));
    let internal = r.get("Service", host);
    assert_eq!(str_at(internal, "spec.clusterIP"), "None", "headless");
    assert_eq!(
        at(internal, "spec.publishNotReadyAddresses").as_bool(),
        Some(true)
    );
    assert_selects(internal, &control);
    assert_eq!(at(internal, "spec.ports.0.port").as_u64(), Some(port));
    assert_eq!(
        host_port(control.flag("internal-listen").unwrap()).1,
        control.port("internal")
    );
    assert_eq!(port, control.port("internal"));

    // Workers advertise their pod IP on the port they listen on.
    assert_eq!(
        worker.flag("advertise"),
        Some(format!("$(POD_IP):{}", worker.port("grpc")).as_str())
    );
    assert_eq!(
        host_port(worker.flag("listen").unwrap()).1,
        worker.port("grpc")
    );
    let pod_ip = seq_at(worker.container(), "env")
        .iter()
        .find(|e| str_at(e, "name") == "POD_IP")
        .expect("POD_IP in the environment");
    assert_eq!(
        str_at(pod_ip, "valueFrom.fieldRef.fieldPath"),
        "status.podIP"
    );
    // The cache is a writable volume of its own.
    let cache = worker.flag("cache-dir").expect("--cache-dir");
    let (volume, read_only) = worker.volume_at("/var/cache/hotswap");
    assert!(cache.starts_with("/var/cache/hotswap/") && !read_only);
    assert!(!at(volume, "emptyDir").is_null());

    // Metrics on a named port, announced for scraping.
    for d in [&store, &control, &worker] {
        let port = d.port("metrics");
        assert_eq!(
            host_port(d.flag("metrics-listen").expect("--metrics-listen")).1,
            port
        );
        let annotations = at(d.object, "spec.template.metadata.annotations");
        let announced = annotations
            .get("prometheus.io/port")
            .and_then(Value::as_str);
        assert_eq!(
            announced,
            Some(port.to_string().as_str()),
            "{}/{}",
            r.dir,
            d.name
        );
        assert_eq!(
            annotations
                .get("prometheus.io/scrape")
                .and_then(Value::as_str),
            Some("true")
        );
    }
}

/// A Service selects exactly the pods of a Deployment's template.
fn assert_selects(service: &Value, d: &Deployment) {
    let selector = at(service, "spec.selector").as_mapping().expect("selector");
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(
            d.labels().get(key),
            Some(value),
            "{} selects {}",
            str_at(service, "metadata.name"),
            d.name
        );
    }
}

/// Without TLS: kubelet's own gRPC probes on the listeners, readiness as
/// docs/operations.md defines it, liveness that a download cannot fail.
pub fn check_plaintext_probes(r: &Rendered) {
    for (name, service) in [
        ("hotswap-model-store", ""),
        ("hotswap-control-plane", "hotswap.v1.Predictor"),
        ("hotswap-worker", ""),
    ] {
        let d = r.deployment(name);
        let c = d.container();
        assert_eq!(
            at(c, "readinessProbe.grpc.port").as_u64(),
            Some(d.port("grpc")),
            "{name}"
        );
        assert_eq!(
            at(c, "readinessProbe.grpc.service").as_str(),
            Some(service),
            "{name}"
        );
        let live = at(c, "livenessProbe");
        assert!(
            at(live, "grpc").is_null(),
            "{name}: liveness is not readiness"
        );
        let port = at(live, "httpGet.port")
            .as_u64()
            .or(at(live, "tcpSocket.port").as_u64());
        assert_eq!(
            port,
            Some(d.port("grpc")),
            "{name}: liveness on the listener"
        );
    }
}
