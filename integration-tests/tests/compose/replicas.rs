//! Two control planes in compose, one killed under load.

use std::sync::Arc;
use std::time::Duration;

use hotswap_integration_tests::compose::{Compose, docker};
use hotswap_integration_tests::process::{ChildGuard, venv, workspace_root};
use hotswap_integration_tests::worker::{IRIS_INPUT, predict_json};
use hotswap_proto::v1::predictor_client::PredictorClient;
use tonic::transport::Channel;

use crate::{Load, WAIT, blocking, until, workers};

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
