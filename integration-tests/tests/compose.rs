//! The stack as docker compose runs it (the repository's
//! docker-compose.yml and the hotswap image), called through the published
//! control-plane port on loopback while it is scaled, a worker is killed, a
//! new version arrives and the model-store restarts. Continuous load runs
//! throughout each step and no request may fail. Then the same stack with
//! docker-compose.tls.yml layered on: TLS everywhere.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hotswap_common::trust::ClusterCredentials;
use hotswap_integration_tests::certs::TestCa;
use hotswap_integration_tests::compose::{Compose, ComposeOptions, docker, make_readable};
use hotswap_integration_tests::process::{ChildGuard, triton_check_with, venv, workspace_root};
use hotswap_integration_tests::worker::{IRIS_INPUT, iris, iris_infer, iris_label, predict_json};
use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use hotswap_proto::v1::control_plane_client::ControlPlaneClient;
use hotswap_proto::v1::predictor_client::PredictorClient;
use hotswap_proto::v1::{ListWorkersRequest, WorkerStatus};
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Bound on every wait here: containers start and stop in seconds, but the
/// machine may be busy. A hang guard, not a speed claim.
const WAIT: Duration = Duration::from_secs(90);

/// What one load client saw: calls that succeeded, failures, versions.
type Seen = (usize, Vec<String>, HashSet<u64>);

/// Four clients calling Predict (latest) without pause until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Seen>>,
}

impl Load {
    fn start(channel: &Channel) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..4)
            .map(|_| {
                let mut p = PredictorClient::new(channel.clone());
                let stop = stop.clone();
                tokio::spawn(async move {
                    let (mut ok, mut failures, mut versions) = (0, Vec::new(), HashSet::new());
                    while !stop.load(Ordering::Relaxed) {
                        match p.predict(predict_json("iris", "", "", IRIS_INPUT)).await {
                            Ok(r) => {
                                ok += 1;
                                versions.insert(r.into_inner().version);
                            }
                            Err(s) => failures.push(format!("{:?}: {}", s.code(), s.message())),
                        }
                    }
                    (ok, failures, versions)
                })
            })
            .collect();
        Load { stop, clients }
    }

    /// Stops the clients; the calls that succeeded, the versions that
    /// answered. Panics on any failed call.
    async fn finish(self, step: &str, compose: &Compose) -> (usize, HashSet<u64>) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut total, mut failures, mut versions) = (0, Vec::new(), HashSet::new());
        for c in self.clients {
            let (ok, f, v) = c.await.expect("client task");
            total += ok;
            failures.extend(f);
            versions.extend(v);
        }
        assert!(
            failures.is_empty(),
            "{step}: {} failed calls (of {}), first: {:?}\n{}",
            failures.len(),
            total + failures.len(),
            &failures[..failures.len().min(5)],
            compose.logs()
        );
        assert!(total > 0, "{step}: the load made calls");
        (total, versions)
    }
}

async fn workers(channel: &Channel) -> Vec<WorkerStatus> {
    match ControlPlaneClient::new(channel.clone())
        .list_workers(ListWorkersRequest {})
        .await
    {
        Ok(r) => r.into_inner().workers,
        Err(_) => Vec::new(),
    }
}

/// Polls `check` every 200 ms until it returns Some; panics after [`WAIT`]
/// with the stack's logs.
async fn until<T, F, Fut>(compose: &Compose, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            compose.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until Predict for `latest` answers from `version` with `label`.
async fn until_latest(compose: &Compose, p: &PredictorClient<Channel>, version: u64, label: i64) {
    until(
        compose,
        &format!("version {version} served as latest"),
        || {
            let mut p = p.clone();
            async move {
                let r = p
                    .predict(predict_json("iris", "", "", IRIS_INPUT))
                    .await
                    .ok()?
                    .into_inner();
                (r.version == version && iris_label(&r) == label).then_some(())
            }
        },
    )
    .await
}

/// Runs a blocking compose or docker command off the async threads, so
/// the load keeps going meanwhile.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_compose_stack_scales_survives_and_swaps_under_load() {
    // The iris example with versions 1 and 2 only; 3 arrives later.
    let models = workspace_root().join("examples/iris-onnx");
    let compose = Arc::new(
        blocking(move || {
            Compose::up(&models, |bucket| {
                std::fs::remove_dir_all(bucket.join("models/iris/3")).expect("drop version 3")
            })
        })
        .await,
    );
    let channel = Channel::from_shared(format!("http://{}", compose.addr))
        .unwrap()
        .connect_lazy();
    let internal = Channel::from_shared(format!("http://{}", compose.internal))
        .unwrap()
        .connect_lazy();
    until(&compose, "one worker registered", || async {
        (workers(&internal).await.len() == 1).then_some(())
    })
    .await;

    // 1. Predict and ModelInfer through the published port.
    let mut p = PredictorClient::new(channel.clone());
    until_latest(&compose, &p, 2, 1).await;
    let infer = GrpcInferenceServiceClient::new(channel.clone())
        .model_infer(iris_infer("iris", "1"))
        .await
        .expect("ModelInfer")
        .into_inner();
    assert_eq!(infer.model_version, "1");
    let one = p
        .predict(predict_json("iris", "", "1", IRIS_INPUT))
        .await
        .expect("version 1")
        .into_inner();
    assert_eq!(iris_label(&one), 0);
    // Registration and ListWorkers are not served where clients call.
    let front_list = ControlPlaneClient::new(channel.clone())
        .list_workers(ListWorkersRequest {})
        .await
        .expect_err("ListWorkers on the published front door");
    assert_eq!(front_list.code(), tonic::Code::Unimplemented);

    // 2. Scale 1 -> 3 under load: the new workers register and get calls.
    let load = Load::start(&channel);
    let c = compose.clone();
    blocking(move || c.run(&["up", "-d", "--no-recreate", "--scale", "data-plane=3"]))
        .await
        .expect("scale to 3");
    until(&compose, "three workers taking calls", || async {
        let w = workers(&internal).await;
        (w.len() == 3 && w.iter().all(|w| w.routed > 0)).then_some(())
    })
    .await;
    load.finish("scale 1 -> 3", &compose).await;

    // 3. Kill one worker container under load: it is dropped.
    let load = Load::start(&channel);
    let c = compose.clone();
    let victim = blocking(move || c.containers("data-plane")).await[0].clone();
    let short = victim[..12].to_owned();
    let before = workers(&internal).await;
    let killed_id = before
        .iter()
        .find(|w| w.address.starts_with(&short))
        .unwrap_or_else(|| panic!("no worker advertises container {short}: {before:?}"))
        .worker_id
        .clone();
    blocking(move || docker(&["kill", &victim]))
        .await
        .expect("docker kill");
    until(&compose, "the killed worker dropped", || async {
        let w = workers(&internal).await;
        (!w.iter().any(|w| w.worker_id == killed_id)).then_some(())
    })
    .await;
    // The restart policy brings the container back as a new worker; wait
    // until every running worker container is registered again.
    let c = compose.clone();
    until(&compose, "every running worker registered", || {
        let c = c.clone();
        let internal = internal.clone();
        async move {
            let running = blocking(move || c.containers("data-plane")).await;
            let registered = workers(&internal).await;
            let all = running
                .iter()
                .all(|id| registered.iter().any(|w| w.address.starts_with(&id[..12])));
            (all && registered.len() == running.len()).then_some(())
        }
    })
    .await;
    drop(c);
    load.finish("docker kill of a worker", &compose).await;

    // 4. Scale down to 1 under load.
    let load = Load::start(&channel);
    let c = compose.clone();
    blocking(move || c.run(&["up", "-d", "--no-recreate", "--scale", "data-plane=1"]))
        .await
        .expect("scale to 1");
    until(&compose, "one worker left", || async {
        (workers(&internal).await.len() == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    load.finish("scale 3 -> 1", &compose).await;

    // 5. A new version written into the mounted bucket becomes latest.
    let load = Load::start(&channel);
    write_version(&compose, 3, 2);
    until_latest(&compose, &p, 3, 2).await;
    let (_, versions) = load.finish("a new version", &compose).await;
    assert!(
        versions.contains(&3),
        "the load saw version 3: {versions:?}"
    );

    // 6. Restart the model-store under load: workers keep serving, then
    // catch up with a version written after it is back.
    let load = Load::start(&channel);
    let c = compose.clone();
    blocking(move || c.run(&["restart", "--timeout", "5", "model-store"]))
        .await
        .expect("restart the model-store");
    write_version(&compose, 4, 0);
    until_latest(&compose, &p, 4, 0).await;
    load.finish("a model-store restart", &compose).await;
    drop(p);
    drop(channel);
    drop(internal);
    let compose = Arc::try_unwrap(compose).unwrap_or_else(|_| panic!("compose still shared"));
    blocking(move || drop(compose)).await;
}

/// Two control planes in compose (the service scaled to 2): the worker
/// registers with both (it resolves `control-plane` to every replica), one
/// is killed under load, and neither a client calling the survivor nor a
/// client that knows both (the unmodified tritonclient with gRPC's
/// round_robin and a retry policy for UNAVAILABLE) sees a failed call. The
/// killed replica, started again, has the worker registered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_control_planes_lose_no_call_when_one_is_killed() {
    let models = workspace_root().join("examples/iris-onnx");
    let compose = Arc::new(blocking(move || Compose::up(&models, |_| {})).await);
    let c = compose.clone();
    blocking(move || c.run(&["up", "-d", "--no-recreate", "--scale", "control-plane=2"]))
        .await
        .expect("scale the control plane to 2");
    let c = compose.clone();
    let (fronts, internals) = blocking(move || {
        let at = |port| [1, 2].map(|i| c.published("control-plane", i, port).expect("published"));
        (at(7000), at(7003))
    })
    .await;
    let lazy = |addr: std::net::SocketAddr| {
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy()
    };
    // The worker registers with the second replica when it resolves the
    // name again (every 10 s), and both route.
    for (front, internal) in fronts.iter().zip(&internals) {
        let internal = lazy(*internal);
        until(
            &compose,
            "the worker registered with both control planes",
            || async { (workers(&internal).await.len() == 1).then_some(()) },
        )
        .await;
        let p = PredictorClient::new(lazy(*front));
        until(&compose, "Predict through each control plane", || {
            let mut p = p.clone();
            async move {
                p.predict(predict_json("iris", "", "", IRIS_INPUT))
                    .await
                    .ok()
                    .map(drop)
            }
        })
        .await;
    }

    let survivor = lazy(fronts[1]);
    let load = Load::start(&survivor);
    let stop = tempfile::tempdir().expect("stop-file folder");
    let stop_file = stop.path().join("stop");
    let targets = format!("{},{}", fronts[0], fronts[1]);
    let mut client = ChildGuard::spawn(
        "round_robin_load.py",
        std::process::Command::new(venv().join("bin/python"))
            .arg(workspace_root().join("integration-tests/scripts/round_robin_load.py"))
            // Bounded below WAIT: a client whose calls all fail ends with
            // its summary (shown below) before the wait gives up.
            .args([
                &targets,
                "iris",
                stop_file.to_str().unwrap(),
                "--max-seconds",
                "60",
            ])
            .stdout(std::process::Stdio::piped()),
    );
    let stdout = client.child.stdout.take().expect("piped");
    let lines = blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let first = lines.next();
        (first, lines)
    });
    let (first, mut lines) = tokio::time::timeout(WAIT, lines)
        .await
        .expect("the round-robin client started within the bound");
    assert_eq!(
        first.and_then(Result::ok).as_deref(),
        Some("started"),
        "the round-robin client's first call"
    );
    // Both replicas take calls, then the first is killed (SIGKILL: no
    // drain, connections cut) while both clients go on.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c = compose.clone();
    let victim = blocking(move || c.container("control-plane", 1)).await;
    let victim_id = victim.clone();
    blocking(move || docker(&["kill", &victim]))
        .await
        .expect("docker kill a control plane");
    tokio::time::sleep(Duration::from_secs(5)).await;
    std::fs::write(&stop_file, b"").expect("stop the round-robin client");
    let summary = blocking(move || lines.next()).await;
    let summary: serde_json::Value = summary
        .and_then(Result::ok)
        .and_then(|l| serde_json::from_str(&l).ok())
        .unwrap_or_else(|| panic!("the round-robin client's summary\n{}", compose.logs()));
    let status = client.child.wait().expect("the client exits");
    assert!(status.success(), "round_robin_load.py: {status}");
    assert_eq!(
        summary["failed"],
        0,
        "calls lost by the client that knows both replicas: {summary}\n{}",
        compose.logs()
    );
    assert!(summary["ok"].as_u64() > Some(0), "{summary}");
    load.finish("a control plane killed (calls through the other)", &compose)
        .await;

    // Started again (docker does not restart a container it was told to
    // kill), the replica has the worker back: it is found again when the
    // name is resolved again.
    let restart = victim_id.clone();
    blocking(move || docker(&["start", &restart]))
        .await
        .expect("docker start the killed control plane");
    until(
        &compose,
        "the worker registered with the restarted replica",
        || {
            let c = compose.clone();
            async move {
                let internal = blocking(move || c.published("control-plane", 1, 7003))
                    .await
                    .ok()?;
                (workers(&lazy(internal)).await.len() == 1).then_some(())
            }
        },
    )
    .await;
    drop(survivor);
    let compose = Arc::try_unwrap(compose).unwrap_or_else(|_| panic!("compose still shared"));
    blocking(move || drop(compose)).await;
}

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
    let mut p = PredictorClient::new(
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy(),
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    let answer = loop {
        match p.predict(predict_json("probe", "", "", "{}")).await {
            Ok(r) => break r.into_inner(),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("Predict: {e}\n{}", logs(&container.0)),
        }
    };
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

/// Writes iris version `version` answering `label`, the way an uploader
/// would: into a temporary name, then renamed into place.
fn write_version(compose: &Compose, version: u64, label: usize) {
    use std::os::unix::fs::PermissionsExt;
    let dir = compose.bucket().join(format!("models/iris/{version}"));
    std::fs::create_dir_all(&dir).expect("version folder");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tmp = dir.join(".model.onnx.part");
    std::fs::write(&tmp, iris(label)).expect("write the model");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::rename(&tmp, dir.join("model.onnx")).expect("rename into place");
}

/// docker-compose.tls.yml over docker-compose.yml, with certificates made
/// at run time: every listener serves TLS, the planes show certificates to
/// each other, the workers (whose host names are container ids) carry the
/// shared name `data-plane`, and the unmodified tritonclient calls the
/// published front door over TLS. Plaintext is refused on the front door,
/// and the internal listener refuses a TLS client without a certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_stack_runs_over_tls() {
    let ca = TestCa::new("hotswap compose test CA");
    let tls = tempfile::tempdir().expect("TLS folder");
    for service in ["model-store", "control-plane", "data-plane"] {
        let dir = tls.path().join(service);
        std::fs::create_dir(&dir).unwrap();
        ca.issue(service).write(&dir);
    }
    make_readable(tls.path());
    let options = ComposeOptions {
        files: vec!["docker-compose.tls.yml".to_owned()],
        env: vec![("HOTSWAP_TLS".to_owned(), tls.path().display().to_string())],
    };
    let models = workspace_root().join("examples/iris-onnx");
    let compose = Arc::new(blocking(move || Compose::up_with(&models, |_| {}, options)).await);

    // The test as a member of the cluster (its certificate from the CA)
    // lists the workers on the internal listener.
    let member = ClusterCredentials {
        tls: Some(ca.tls("control-plane")),
        token: None,
    };
    let internal = hotswap_common::client::endpoint(&compose.internal.to_string(), &member)
        .unwrap()
        .connect_lazy();
    until(
        &compose,
        "one worker registered over mutual TLS",
        || async { (workers(&internal).await.len() == 1).then_some(()) },
    )
    .await;

    let ca_file = tls.path().join("control-plane/ca.crt");
    let model = workspace_root().join("examples/iris-onnx/models/iris/3/model.onnx");
    let front = compose.addr.to_string();
    let check = blocking(move || {
        triton_check_with(
            &front,
            "iris",
            "3",
            &model,
            &["--ca", ca_file.to_str().unwrap()],
        )
    })
    .await;
    if let Err(output) = check {
        panic!(
            "tritonclient over TLS through compose:\n{output}\n{}",
            compose.logs()
        );
    }

    let plaintext = Channel::from_shared(format!("http://{}", compose.addr))
        .unwrap()
        .connect_lazy();
    PredictorClient::new(plaintext)
        .predict(predict_json("iris", "", "", IRIS_INPUT))
        .await
        .expect_err("plaintext Predict on the TLS front door");
    let no_certificate = Endpoint::from_shared(format!("https://{}", compose.internal))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.pem())))
        .unwrap()
        .connect_lazy();
    ControlPlaneClient::new(no_certificate)
        .list_workers(ListWorkersRequest {})
        .await
        .expect_err("ListWorkers without a client certificate");

    drop(internal);
    let compose = Arc::try_unwrap(compose).unwrap_or_else(|_| panic!("compose still shared"));
    blocking(move || drop(compose)).await;
}
