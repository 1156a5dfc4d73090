//! `hotswap data-plane`: a worker on its own.

use std::path::PathBuf;

use anyhow::Context;
use hotswap_data_plane::{
    DEFAULT_MAX_REQUEST_BYTES, DownloadLimits, ProcessConfig, ServeConfig, WorkerConfig,
};

use crate::environment::Environment;

#[derive(clap::Args)]
pub struct Args {
    /// host:port of the model-store to subscribe to.
    #[arg(long)]
    model_store: String,
    /// Address to serve gRPC on; port 0 picks a free port (the log says which).
    #[arg(long, default_value = "127.0.0.1:7002")]
    listen: String,
    /// host:port of the control plane's internal listener to register with
    /// (omit to serve clients directly, without a control plane). Several,
    /// separated by commas, or a host name resolving to several addresses:
    /// the worker registers with each (resolved again every 10 s).
    #[arg(long)]
    control_plane: Option<String>,
    /// host:port the control plane calls this worker on [default: the bound
    /// address, or the host name and bound port when listening on all
    /// interfaces].
    #[arg(long)]
    advertise: Option<String>,
    /// Folder for downloaded model versions (emptied at start)
    /// [default: a fresh temporary folder, deleted at exit].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Largest request payload in bytes; larger inputs are refused with
    /// INVALID_ARGUMENT naming the input.
    #[arg(long, default_value_t = DEFAULT_MAX_REQUEST_BYTES)]
    max_request_bytes: usize,
    /// A virtualenv, made from the Python this binary embeds (3.11), whose
    /// packages Python predictors import (`pip install -r requirements.txt`
    /// into it).
    #[arg(long, env = "HOTSWAP_PYTHON_VENV")]
    python_venv: Option<PathBuf>,
    /// A Python predictor's call running longer fails (DEADLINE_EXCEEDED)
    /// and its process is replaced.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    python_call_timeout: std::time::Duration,
    /// Calls that may wait for a free Python thread, per API; more are
    /// refused with RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = hotswap_python::DEFAULT_MAX_QUEUED)]
    python_max_queued: usize,
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
    /// How long a download may wait for an object's first byte, or for its
    /// next bytes, before it is abandoned and tried again.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    download_timeout: std::time::Duration,
    #[command(flatten)]
    storage: crate::storage_args::StorageArgs,
    #[command(flatten)]
    cluster: crate::trust_args::ClusterArgs,
    #[command(flatten)]
    clients: crate::trust_args::ClientArgs,
    #[command(flatten)]
    metrics: crate::metrics_args::MetricsArgs,
}

pub async fn run(args: Args, env: &Environment) -> anyhow::Result<()> {
    args.metrics.start(args.clients.tokens().await?).await?;
    let cluster = args.cluster.credentials().await?;
    let config = ServeConfig {
        worker: WorkerConfig {
            model_store: args.model_store,
            cache_dir: args.cache_dir,
            storage: args.storage.options(env),
            control_plane: args.control_plane,
            advertise: args.advertise,
            python: ProcessConfig {
                call_timeout: args.python_call_timeout,
                max_queued: args.python_max_queued,
                ..python(args.python_venv, env)
            },
            runtimes: env.runtimes.clone(),
            downloads: DownloadLimits {
                first_byte: args.download_timeout,
                stall: args.download_timeout,
                ..DownloadLimits::default()
            },
            python_tracebacks: args.python_tracebacks,
            warmup: !args.no_warmup,
            cluster: cluster.clone(),
        },
        max_request_bytes: args.max_request_bytes,
        clients: args.clients.trust(&cluster).await?,
    };
    let listener = hotswap_common::server::listen(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    hotswap_data_plane::serve(config, listener, crate::shutdown::signal()).await?;
    Ok(())
}

/// How the worker starts Python predictor processes: this binary, the
/// user's virtualenv, the variables they inherit (no credentials).
pub fn python(venv: Option<PathBuf>, env: &Environment) -> ProcessConfig {
    ProcessConfig {
        venv,
        inherited_env: env.python_env.clone(),
        ..ProcessConfig::default()
    }
}
