//! The recipe docs/operations.md gives for a predictor's Python packages,
//! built into an image `FROM hotswap`.

use std::time::Duration;

use hotswap_integration_tests::compose::{docker, make_readable};
use hotswap_integration_tests::process::{venv, workspace_root};
use hotswap_integration_tests::wait::Wait;
use hotswap_integration_tests::worker::predict_json;
use hotswap_proto::v1::predictor_client::PredictorClient;
use tonic::transport::Channel;

use crate::{WAIT, blocking};

/// A container that is removed (with `docker rm -f`) when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        if let Err(e) = docker(&["rm", "--force", &self.0]) {
            eprintln!("docker rm {}: {e}", self.0);
        }
    }
}

/// The recipe docs/operations.md gives for a predictor's Python packages,
/// taken from the docs as written (offline: a wheel made here, pip told to
/// look nowhere else), builds an image `FROM hotswap`; `hotswap up` in it
/// serves a Python predictor that imports the package, from the image's
/// virtualenv, under tini as PID 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_recipe_adds_a_predictors_packages_to_the_image() {
    let docs = std::fs::read_to_string(workspace_root().join("docs/operations.md")).unwrap();
    let recipe = docs
        .split("```dockerfile\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a dockerfile block in docs/operations.md");
    let offline =
        "USER root\nCOPY wheels /tmp/wheels\nENV PIP_NO_INDEX=1 PIP_FIND_LINKS=/tmp/wheels\n";
    assert!(
        recipe.starts_with("FROM hotswap:latest\nUSER root\n"),
        "{recipe}"
    );
    let dockerfile = recipe.replacen("USER root\n", offline, 1);

    let context = tempfile::tempdir().expect("build context");
    std::fs::create_dir(context.path().join("wheels")).unwrap();
    std::fs::write(context.path().join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        context.path().join("requirements.txt"),
        "hotswap-recipe-probe==1.0\n",
    )
    .unwrap();
    let wheel = context
        .path()
        .join("wheels/hotswap_recipe_probe-1.0-py3-none-any.whl");
    let made = std::process::Command::new(venv().join("bin/python"))
        .args(["-c", WHEEL, wheel.to_str().unwrap()])
        .status()
        .expect("run python");
    assert!(made.success(), "make the wheel");
    let image = format!("hotswap-recipe-test:{}", std::process::id());
    let context_dir = context.path().to_str().unwrap().to_owned();
    let tag = image.clone();
    blocking(move || {
        docker(&[
            "build",
            "--network",
            "none",
            "--quiet",
            "-t",
            &tag,
            &context_dir,
        ])
    })
    .await
    .unwrap_or_else(|e| panic!("docker build of the recipe: {e}"));

    let bucket = tempfile::tempdir().expect("bucket");
    std::fs::write(
        bucket.path().join("hotswap.yaml"),
        "- name: probe\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n",
    )
    .unwrap();
    std::fs::write(
        bucket.path().join("predictor.py"),
        "import recipe_probe\n\n\nclass PythonPredictor:\n    def __init__(self, config):\n        pass\n\n    def predict(self, payload):\n        return {\"value\": recipe_probe.VALUE, \"file\": recipe_probe.__file__}\n",
    )
    .unwrap();
    make_readable(bucket.path());
    let mount = format!("{}:/models:ro", bucket.path().display());
    let run_image = image.clone();
    let id = blocking(move || {
        docker(&[
            "run",
            "--detach",
            "--publish",
            "127.0.0.1::7000",
            "--volume",
            &mount,
            &run_image,
            "up",
            "/models/hotswap.yaml",
            "--listen",
            "0.0.0.0:7000",
        ])
    })
    .await
    .unwrap_or_else(|e| panic!("docker run: {e}"));
    let container = Container(id.trim().to_owned());
    let published = docker(&["port", &container.0, "7000/tcp"]).expect("docker port");
    let addr = published
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let p = PredictorClient::new(
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy(),
    );
    let answer = Wait::new("the probe's Predict")
        .within(WAIT)
        .every(Duration::from_millis(200))
        .context(|| logs(&container.0))
        .until(|| {
            let mut p = p.clone();
            async move { p.predict(predict_json("probe", "", "", "{}")).await.ok() }
        })
        .await
        .into_inner();
    let Some(hotswap_proto::v1::predict_response::Output::Json(json)) = answer.output else {
        panic!("a JSON answer: {answer:?}");
    };
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["value"], 42, "{json}");
    assert!(
        json["file"]
            .as_str()
            .unwrap_or("")
            .starts_with("/opt/hotswap/venv/"),
        "imported from the image's virtualenv: {json}"
    );
    let pid1 = docker(&["exec", &container.0, "cat", "/proc/1/comm"]).expect("docker exec");
    assert_eq!(pid1.trim(), "tini", "{}", logs(&container.0));
    drop(container);
    let _ = docker(&["image", "rm", "--force", &image]);
}

/// A container's logs, for a failure message.
fn logs(id: &str) -> String {
    docker(&["logs", id]).unwrap_or_else(|e| e)
}

/// Writes a one-module wheel (`recipe_probe`, `VALUE = 42`) to argv[1].
const WHEEL: &str = r#"
import sys, zipfile
info = "hotswap_recipe_probe-1.0.dist-info/"
files = {
    "recipe_probe.py": "VALUE = 42\n",
    info + "METADATA": "Metadata-Version: 2.1\nName: hotswap-recipe-probe\nVersion: 1.0\n",
    info + "WHEEL": "Wheel-Version: 1.0\nGenerator: hotswap-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
files[info + "RECORD"] = "".join(f"{name},,\n" for name in [*files, info + "RECORD"])
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for name, text in files.items():
        z.writestr(name, text)
"#;
