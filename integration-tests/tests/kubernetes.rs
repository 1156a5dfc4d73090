//! The Kubernetes manifests (deploy/kubernetes), offline: each kustomization
//! is rendered with `kubectl kustomize`, checked against the Kubernetes
//! 1.37 schemas with `kubernetes-validate --strict`, and then read for what
//! docs/kubernetes.md promises: probes on the ports the services listen on,
//! non-root read-only containers with resources, two control planes behind
//! a disruption budget, workers advertising their pod IP to every control
//! plane, and flags the binary accepts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use hotswap_integration_tests::process::{hotswap_binary, venv, workspace_root};
use serde::Deserialize;
use serde_yaml::Value;

const KUSTOMIZATIONS: [&str; 4] = ["base", "overlays/tls", "overlays/keda", "overlays/hpa"];

/// The objects one kustomization renders to, by `Kind/name`.
struct Rendered {
    dir: &'static str,
    objects: BTreeMap<String, Value>,
}

impl Rendered {
    fn get(&self, kind: &str, name: &str) -> &Value {
        let key = format!("{kind}/{name}");
        self.objects
            .get(&key)
            .unwrap_or_else(|| panic!("{}: no {key} among {:?}", self.dir, self.objects.keys()))
    }

    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |(k, _)| k.starts_with(&format!("{kind}/")))
            .map(|(_, v)| v)
    }

    fn deployment(&self, name: &str) -> Deployment<'_> {
        Deployment {
            dir: self.dir,
            name: name.to_owned(),
            object: self.get("Deployment", name),
        }
    }
}

/// Renders one kustomization and validates it; panics with the tools'
/// output on any failure.
fn render(dir: &'static str) -> Rendered {
    let path = workspace_root().join("deploy/kubernetes").join(dir);
    let venv = venv();
    let output = Command::new(venv.join("bin/kubectl"))
        .arg("kustomize")
        .arg(&path)
        .output()
        .expect("run kubectl (installed by .ci/setup)");
    assert!(
        output.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let scratch = tempfile::tempdir().expect("scratch folder");
    let file = scratch.path().join("rendered.yaml");
    std::fs::write(&file, &output.stdout).expect("write the rendering");
    validate(dir, &venv, &file);

    let mut objects = BTreeMap::new();
    for document in serde_yaml::Deserializer::from_slice(&output.stdout) {
        let object = Value::deserialize(document).expect("rendered YAML");
        let key = format!(
            "{}/{}",
            str_at(&object, "kind"),
            str_at(&object, "metadata.name")
        );
        assert!(
            objects.insert(key.clone(), object).is_none(),
            "{dir}: {key} twice"
        );
    }
    Rendered { dir, objects }
}

/// `kubernetes-validate --strict` (unknown fields are errors): every object
/// passes, and the only objects without a schema are KEDA's.
fn validate(dir: &str, venv: &Path, file: &Path) {
    let output = Command::new(venv.join("bin/kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", "1.37.0"])
        .arg(file)
        .output()
        .expect("run kubernetes-validate (.ci/requirements.txt)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{dir} is not valid:\n{report}");
    for line in report.lines() {
        assert!(
            line.starts_with("INFO") && line.contains(" passed ")
                || line.starts_with("WARN")
                    && line.contains("kind ScaledObject with api version keda.sh/"),
            "{dir}: kubernetes-validate said {line:?}\n{report}"
        );
    }
}

/// The value at a dotted path (numbers index sequences); Null when absent.
fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    path.split('.')
        .fold(value, |v, key| match key.parse::<usize>() {
            Ok(i) => v.get(i).unwrap_or(&NULL),
            Err(_) => v.get(key).unwrap_or(&NULL),
        })
}

fn str_at<'a>(value: &'a Value, path: &str) -> &'a str {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("no string at {path} in {value:?}"))
}

fn seq_at<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    at(value, path).as_sequence().map_or(&[], |s| s.as_slice())
}

struct Deployment<'a> {
    dir: &'static str,
    name: String,
    object: &'a Value,
}

impl<'a> Deployment<'a> {
    fn pod(&self) -> &'a Value {
        at(self.object, "spec.template.spec")
    }

    fn container(&self) -> &'a Value {
        let containers = seq_at(self.pod(), "containers");
        assert_eq!(
            containers.len(),
            1,
            "{}/{}: one container",
            self.dir,
            self.name
        );
        &containers[0]
    }

    fn args(&self) -> Vec<&'a str> {
        seq_at(self.container(), "args")
            .iter()
            .map(|a| a.as_str().expect("string argument"))
            .collect()
    }

    /// The value of `--flag=value` in the container's arguments.
    fn flag(&self, flag: &str) -> Option<&'a str> {
        let prefix = format!("--{flag}=");
        self.args()
            .into_iter()
            .find_map(|a| a.strip_prefix(&prefix))
    }

    fn port(&self, name: &str) -> u64 {
        seq_at(self.container(), "ports")
            .iter()
            .find(|p| at(p, "name").as_str() == Some(name))
            .and_then(|p| at(p, "containerPort").as_u64())
            .unwrap_or_else(|| panic!("{}/{}: no port named {name}", self.dir, self.name))
    }

    fn labels(&self) -> &'a Value {
        at(self.object, "spec.template.metadata.labels")
    }

    /// The volume mounted at `path`, and whether the mount is read-only.
    fn volume_at(&self, path: &str) -> (&'a Value, bool) {
        let mount = seq_at(self.container(), "volumeMounts")
            .iter()
            .find(|m| str_at(m, "mountPath") == path)
            .unwrap_or_else(|| panic!("{}/{}: nothing mounted at {path}", self.dir, self.name));
        let name = str_at(mount, "name");
        let volume = seq_at(self.pod(), "volumes")
            .iter()
            .find(|v| str_at(v, "name") == name)
            .unwrap_or_else(|| panic!("{}/{}: no volume {name}", self.dir, self.name));
        (volume, at(mount, "readOnly").as_bool() == Some(true))
    }
}

/// host and port of `host:port`.
fn host_port(addr: &str) -> (&str, u64) {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    (host, port.parse().expect("port number"))
}

/// What every rendering keeps, whatever the overlay.
fn check_common(r: &Rendered) {
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
fn check_plaintext_probes(r: &Rendered) {
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
