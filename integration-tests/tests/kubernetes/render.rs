//! Rendering a kustomization (`kubectl kustomize`, then
//! `kubernetes-validate --strict`) and reading the objects it renders to.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use hotswap_integration_tests::process::{venv, workspace_root};
use serde::Deserialize;
use serde_yaml::Value;

/// Every kustomization under deploy/kubernetes.
pub const KUSTOMIZATIONS: [&str; 4] = ["base", "overlays/tls", "overlays/keda", "overlays/hpa"];

/// The objects one kustomization renders to, by `Kind/name`.
pub struct Rendered {
    pub dir: &'static str,
    objects: BTreeMap<String, Value>,
}

impl Rendered {
    pub fn get(&self, kind: &str, name: &str) -> &Value {
        let key = format!("{kind}/{name}");
        self.objects
            .get(&key)
            .unwrap_or_else(|| panic!("{}: no {key} among {:?}", self.dir, self.objects.keys()))
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |(k, _)| k.starts_with(&format!("{kind}/")))
            .map(|(_, v)| v)
    }

    pub fn deployment(&self, name: &str) -> Deployment<'_> {
        Deployment {
            dir: self.dir,
            name: name.to_owned(),
            object: self.get("Deployment", name),
        }
    }
}

/// Renders one kustomization and validates it; panics with the tools'
/// output on any failure.
pub fn render(dir: &'static str) -> Rendered {
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
pub fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    path.split('.')
        .fold(value, |v, key| match key.parse::<usize>() {
            Ok(i) => v.get(i).unwrap_or(&NULL),
            Err(_) => v.get(key).unwrap_or(&NULL),
        })
}

/// The string at a dotted path; panics when there is none.
pub fn str_at<'a>(value: &'a Value, path: &str) -> &'a str {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("no string at {path} in {value:?}"))
}

/// The sequence at a dotted path; empty when absent.
pub fn seq_at<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    at(value, path).as_sequence().map_or(&[], |s| s.as_slice())
}

/// One Deployment of a rendering, read through its pod template.
pub struct Deployment<'a> {
    dir: &'static str,
    pub name: String,
    pub object: &'a Value,
}

impl<'a> Deployment<'a> {
    pub fn pod(&self) -> &'a Value {
        at(self.object, "spec.template.spec")
    }

    pub fn container(&self) -> &'a Value {
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

    pub fn args(&self) -> Vec<&'a str> {
        seq_at(self.container(), "args")
            .iter()
            .map(|a| a.as_str().expect("string argument"))
            .collect()
    }

    /// The value of `--flag=value` in the container's arguments.
    pub fn flag(&self, flag: &str) -> Option<&'a str> {
        let prefix = format!("--{flag}=");
        self.args()
            .into_iter()
            .find_map(|a| a.strip_prefix(&prefix))
    }

    pub fn port(&self, name: &str) -> u64 {
        seq_at(self.container(), "ports")
            .iter()
            .find(|p| at(p, "name").as_str() == Some(name))
            .and_then(|p| at(p, "containerPort").as_u64())
            .unwrap_or_else(|| panic!("{}/{}: no port named {name}", self.dir, self.name))
    }

    pub fn labels(&self) -> &'a Value {
        at(self.object, "spec.template.metadata.labels")
    }

    /// The volume mounted at `path`, and whether the mount is read-only.
    pub fn volume_at(&self, path: &str) -> (&'a Value, bool) {
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
pub fn host_port(addr: &str) -> (&str, u64) {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    (host, port.parse().expect("port number"))
}
