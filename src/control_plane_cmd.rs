//! `hotswap control-plane`: the front door on its own.

use anyhow::Context;
use hotswap_control_plane::ControlPlaneConfig;
use hotswap_control_plane::registry::RegistryLimits;

#[derive(clap::Args)]
pub struct Args {
    /// host:port of the model-store to watch.
    #[arg(long)]
    model_store: String,
    /// Address clients and workers call; port 0 picks a free port (the log
    /// says which).
    #[arg(long, default_value = "127.0.0.1:7000")]
    listen: String,
    /// Workers registered at once; one more is refused with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = hotswap_control_plane::registry::DEFAULT_MAX_WORKERS)]
    max_workers: usize,
    /// Model versions and predictor APIs one worker may report.
    #[arg(long, default_value_t = hotswap_control_plane::registry::DEFAULT_MAX_ROUTES)]
    max_routes_per_worker: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let config = ControlPlaneConfig {
        model_store: args.model_store,
        limits: RegistryLimits {
            max_workers: args.max_workers,
            max_routes: args.max_routes_per_worker,
        },
    };
    hotswap_control_plane::serve(config, listener, crate::shutdown::signal()).await?;
    Ok(())
}
