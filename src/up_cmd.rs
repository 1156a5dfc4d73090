//! `hotswap up`: the whole stack in one process on a config: a model-store
//! on its buckets (a local folder by default), a control plane as the front
//! door, and one worker registered with it. Only the front door listens
//! where clients reach it; the planes talk over loopback, with a token made
//! for this run.

use std::path::PathBuf;

use anyhow::Context;
use hotswap_common::trust::{ClientTrust, ClusterCredentials, Secret};
use hotswap_control_plane::{ControlPlaneConfig, Listeners};
use hotswap_data_plane::{DEFAULT_MAX_REQUEST_BYTES, ServeConfig, WorkerConfig};
use hotswap_model_store::ModelStoreConfig;
use tokio_util::sync::CancellationToken;

use crate::environment::Environment;

#[derive(clap::Args)]
pub struct Args {
    /// The API config (YAML, Cortex field names).
    config: PathBuf,
    /// Address clients call (Predict and the Open Inference Protocol); port 0
    /// picks a free port (the log says which).
    #[arg(long, default_value = "127.0.0.1:7000")]
    listen: String,
    /// A virtualenv, made from the Python this binary embeds (3.11), whose
    /// packages Python predictors import (`pip install -r requirements.txt`
    /// into it).
    #[arg(long, env = "HOTSWAP_PYTHON_VENV")]
    python_venv: Option<PathBuf>,
    /// Return a predictor's whole Python traceback to callers, not just
    /// the exception's line and a request id (for debugging: tracebacks
    /// show code and paths to whoever calls).
    #[arg(long)]
    python_tracebacks: bool,
    /// Publish new ONNX and TensorFlow versions without first running one
    /// inference on them (for measuring what the warm-up saves; a version
    /// that cannot run is then found by the first caller).
    #[arg(long)]
    no_warmup: bool,
    /// A folder with the front door's certificate and key (`tls.crt`,
    /// `tls.key`) and its CA (`ca.crt`): clients then call over TLS.
    #[arg(long, value_name = "DIR")]
    tls: Option<PathBuf>,
    /// Serve Prometheus metrics (all three services, one process) at
    /// http://ADDR/metrics; port 0 picks a free port. Triton's metrics port
    /// by default (9090 is Prometheus's own). With --tokens-file, scrapes
    /// carry one of its tokens too.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8002")]
    metrics_listen: String,
    #[command(flatten)]
    clients: crate::trust_args::ClientArgs,
    #[command(flatten)]
    storage: crate::storage_args::StorageArgs,
}

pub async fn run(args: Args, env: &Environment) -> anyhow::Result<()> {
    let apis = hotswap_model_store::config::load(&args.config)?;
    // Recording starts before the services do; the listener is logged after
    // the front door's address, which comes first.
    hotswap_common::metrics::install();
    let storage = args.storage.options(env);
    // Other users of this machine reach loopback too: the planes trust
    // each other by a token no one else knows.
    let cluster = ClusterCredentials {
        tls: None,
        token: Some(Secret::random()),
    };
    let clients = ClientTrust {
        tls: crate::trust_args::load_tls(args.tls.as_deref()).await?,
        ..args.clients.trust(&ClusterCredentials::default()).await?
    };
    let mut store_config = ModelStoreConfig::new(apis);
    store_config.storage = storage.clone();
    store_config.cluster = cluster.clone();
    // The model-store, the worker and registration are internal: loopback,
    // any free port.
    let loopback = || hotswap_common::server::listen("127.0.0.1:0");
    let store_listener = loopback().await.context("cannot bind a loopback port")?;
    let store_addr = store_listener.local_addr()?;
    let worker_listener = loopback().await.context("cannot bind a loopback port")?;
    let internal = loopback().await.context("cannot bind a loopback port")?;
    let internal_addr = internal.local_addr()?;
    let front = hotswap_common::server::listen(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let front_addr = front.local_addr()?;

    let stop = CancellationToken::new();
    let store =
        hotswap_model_store::serve(store_config, store_listener, stop.clone().cancelled_owned());
    let control_plane = hotswap_control_plane::serve(
        ControlPlaneConfig {
            model_store: store_addr.to_string(),
            cluster: cluster.clone(),
            clients,
            // The worker's own limit (below).
            request_limit: hotswap_control_plane::RequestLimit(DEFAULT_MAX_REQUEST_BYTES),
            ..ControlPlaneConfig::default()
        },
        Listeners { front, internal },
        stop.clone().cancelled_owned(),
    );
    let worker = hotswap_data_plane::serve(
        ServeConfig {
            worker: WorkerConfig {
                model_store: store_addr.to_string(),
                cache_dir: None,
                storage,
                control_plane: Some(internal_addr.to_string()),
                advertise: None,
                python: crate::data_plane_cmd::python(args.python_venv, env),
                runtimes: env.runtimes.clone(),
                downloads: Default::default(),
                python_tracebacks: args.python_tracebacks,
                warmup: !args.no_warmup,
                cluster,
            },
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            // Registered: the worker takes the cluster's token only.
            clients: ClientTrust::default(),
        },
        worker_listener,
        stop.clone().cancelled_owned(),
    );
    tracing::info!(addr = %front_addr, "hotswap up: clients call this address");
    crate::metrics_args::start(&args.metrics_listen, args.clients.tokens().await?).await?;
    // Ends on Ctrl-C or SIGTERM, or when a service stopped the others.
    let signal = {
        let stop = stop.clone();
        async move {
            tokio::select! {
                () = crate::shutdown::signal() => stop.cancel(),
                () = stop.cancelled() => {}
            }
        }
    };
    // Whichever service fails first stops the others.
    let stopping = |r: Result<(), anyhow::Error>| {
        stop.cancel();
        r
    };
    let (store, control_plane, worker, ()) = tokio::join!(
        async { stopping(store.await.map_err(Into::into)) },
        async { stopping(control_plane.await.map_err(Into::into)) },
        async { stopping(worker.await.map_err(Into::into)) },
        signal
    );
    store?;
    control_plane?;
    worker?;
    Ok(())
}
