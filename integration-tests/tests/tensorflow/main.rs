//! TensorFlow SavedModels served by real workers over real gRPC on
//! loopback: through the control plane, under swaps, from Python classes
//! with tensorflow_client, on Inferentia APIs without Inferentia, and with
//! bad input. Built with the `tensorflow` feature only (the Makefile and CI
//! turn it on).

mod bad_input;
mod batching;
mod end_to_end;
mod inferentia;
mod python;

use hotswap_integration_tests::bucket::{Backend, TestBucket};
use hotswap_integration_tests::control::ControlServer;
use hotswap_integration_tests::store::StoreServer;
use hotswap_integration_tests::worker::{WorkerOptions, WorkerServer};

/// A local bucket, a model-store over it with `config` (where `{root}` is
/// the bucket's URI), a control plane and one worker registered with it.
pub struct Stack {
    /// The bucket.
    pub bucket: TestBucket,
    /// The model-store over it.
    pub store: StoreServer,
    /// The control plane.
    pub control: ControlServer,
    /// The worker registered with it.
    pub worker: WorkerServer,
}

impl Stack {
    /// `fill` writes the bucket's models before anything starts.
    pub async fn start(config: &str, fill: impl AsyncFnOnce(&TestBucket)) -> Stack {
        Stack::start_with(config, None, fill).await
    }

    /// As [`Stack::start`], with the first API's predictor file.
    pub async fn start_with(
        config: &str,
        predictor: Option<String>,
        fill: impl AsyncFnOnce(&TestBucket),
    ) -> Stack {
        let bucket = TestBucket::new(Backend::Local).await;
        fill(&bucket).await;
        let config = config.replace("{root}", &bucket.uri(""));
        let store = StoreServer::start(&bucket, &config, move |c| {
            if predictor.is_some() {
                c.apis[0].predictor_source = predictor;
            }
        })
        .await;
        let control = ControlServer::start(store.addr).await;
        let options = WorkerOptions {
            control_plane: Some(control.internal.to_string()),
            python_venv: Some(hotswap_integration_tests::process::venv()),
            ..Default::default()
        };
        let worker = WorkerServer::start_with(store.addr, &bucket, options).await;
        control.wait_for_workers(1).await;
        Stack {
            bucket,
            store,
            control,
            worker,
        }
    }

    /// Stops the worker, then the control plane and the model-store.
    pub async fn stop(self) {
        self.worker.stop().await;
        self.control.stop().await;
        self.store.stop().await;
    }
}
