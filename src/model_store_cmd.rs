//! `hotswap model-store`: the model-store service on its own.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use hotswap_model_store::{ModelStoreConfig, PollSettings};

use crate::environment::Environment;

#[derive(clap::Args)]
pub struct Args {
    /// The API config (YAML, Cortex field names).
    #[arg(long)]
    config: PathBuf,
    /// Address to serve gRPC on; port 0 picks a free port (the log says which).
    #[arg(long, default_value = "127.0.0.1:7001")]
    listen: String,
    /// How often each bucket is listed.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    poll_interval: Duration,
    /// How long a version's files must stay unchanged before it is published
    /// [default: the poll interval].
    #[arg(long, value_parser = humantime::parse_duration)]
    settle: Option<Duration>,
    /// Events kept for subscribers that resume with after_revision.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
    #[command(flatten)]
    storage: crate::storage_args::StorageArgs,
    #[command(flatten)]
    cluster: crate::trust_args::ClusterArgs,
    #[command(flatten)]
    metrics: crate::metrics_args::MetricsArgs,
}

pub async fn run(args: Args, env: &Environment) -> anyhow::Result<()> {
    let apis = hotswap_model_store::config::load(&args.config)?;
    let mut config = ModelStoreConfig::new(apis);
    config.poll = PollSettings {
        interval: args.poll_interval,
        settle: args.settle.unwrap_or(args.poll_interval),
        ..PollSettings::default()
    };
    config.history_limit = args.history;
    config.storage = args.storage.options(env);
    config.cluster = args.cluster.credentials().await?;
    // The model-store has no clients of its own and so no tokens: its
    // metrics listener is for the operator's network only.
    args.metrics.start(None).await?;
    let listener = hotswap_common::server::listen(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    hotswap_model_store::serve(config, listener, crate::shutdown::signal()).await?;
    Ok(())
}
