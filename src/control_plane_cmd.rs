//! `hotswap control-plane`: the front door on its own.

use anyhow::Context;
use hotswap_control_plane::registry::RegistryLimits;
use hotswap_control_plane::{ControlPlaneConfig, Listeners};

#[derive(clap::Args)]
pub struct Args {
    /// host:port of the model-store to watch.
    #[arg(long)]
    model_store: String,
    /// Address clients call (Predict, the Open Inference Protocol); port 0
    /// picks a free port (the log says which).
    #[arg(long, default_value = "127.0.0.1:7000")]
    listen: String,
    /// Address workers register on and operators list them on, never
    /// served to clients; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:7003")]
    internal_listen: String,
    /// Workers registered at once; one more is refused with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = hotswap_control_plane::registry::DEFAULT_MAX_WORKERS)]
    max_workers: usize,
    /// Model versions and predictor APIs one worker may report.
    #[arg(long, default_value_t = hotswap_control_plane::registry::DEFAULT_MAX_ROUTES)]
    max_routes_per_worker: usize,
    /// Largest request payload in bytes, as the workers' own
    /// --max-request-bytes: a larger input is refused here with
    /// INVALID_ARGUMENT naming it, before it is forwarded.
    #[arg(long, default_value_t = hotswap_data_plane::DEFAULT_MAX_REQUEST_BYTES)]
    max_request_bytes: usize,
    /// With --tls, the name workers' certificates must carry (one name for
    /// all, e.g. a compose service or Kubernetes Service name) [default:
    /// the host of the address each worker advertises].
    #[arg(long, value_name = "NAME")]
    worker_tls_name: Option<String>,
    #[command(flatten)]
    cluster: crate::trust_args::ClusterArgs,
    #[command(flatten)]
    clients: crate::trust_args::ClientArgs,
    #[command(flatten)]
    metrics: crate::metrics_args::MetricsArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    args.metrics.start(args.clients.tokens().await?).await?;
    let bind = |address: String| async move {
        hotswap_common::server::listen(&address)
            .await
            .with_context(|| format!("cannot listen on {address}"))
    };
    let listeners = Listeners {
        front: bind(args.listen).await?,
        internal: bind(args.internal_listen).await?,
    };
    let cluster = args.cluster.credentials().await?;
    let config = ControlPlaneConfig {
        model_store: args.model_store,
        limits: RegistryLimits {
            max_workers: args.max_workers,
            max_routes: args.max_routes_per_worker,
        },
        clients: args.clients.trust(&cluster).await?,
        cluster,
        worker_tls_name: args.worker_tls_name,
        request_limit: hotswap_control_plane::RequestLimit(args.max_request_bytes),
    };
    hotswap_control_plane::serve(config, listeners, crate::shutdown::signal()).await?;
    Ok(())
}
