//! The stack as docker compose runs it (the repository's
//! docker-compose.yml and the hotswap image), called through the published
//! control-plane port on loopback while it is scaled, a worker is killed, a
//! new version arrives and the model-store restarts. Continuous load runs
//! throughout each step and no request may fail. Then the same stack with
//! docker-compose.tls.yml layered on: TLS everywhere.

mod recipe;
mod replicas;
mod stack;
mod tls;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hotswap_integration_tests::compose::Compose;
use hotswap_integration_tests::wait::Wait;
use hotswap_integration_tests::worker::{IRIS_INPUT, iris, iris_label, predict_json};
use hotswap_proto::v1::control_plane_client::ControlPlaneClient;
use hotswap_proto::v1::predictor_client::PredictorClient;
use hotswap_proto::v1::{ListWorkersRequest, WorkerStatus};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

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
async fn until<T, F, Fut>(compose: &Compose, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    Wait::new(what)
        .within(WAIT)
        .every(Duration::from_millis(200))
        .context(|| compose.logs())
        .until(check)
        .await
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
