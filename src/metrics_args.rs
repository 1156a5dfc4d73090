//! `--metrics-listen`: where a service serves Prometheus metrics
//! (`GET /metrics`). Off unless given for the separate services; on by
//! default in `hotswap up` (its own default there).

use anyhow::Context;
use hotswap_common::trust::BearerTokens;

#[derive(clap::Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics; port 0 picks a free
    /// port (the log says which: `metrics listening addr=...`). Off when
    /// not given.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
}

impl MetricsArgs {
    /// Serves metrics when asked to; scrapes then carry one of `tokens`
    /// when given (the front door's `--tokens-file`).
    pub async fn start(&self, tokens: Option<BearerTokens>) -> anyhow::Result<()> {
        match &self.metrics_listen {
            Some(addr) => start(addr, tokens).await,
            None => Ok(()),
        }
    }
}

/// Installs the recorder and serves it on `addr` for the rest of the
/// process's life, to scrapes carrying one of `tokens` when given.
pub async fn start(addr: &str, tokens: Option<BearerTokens>) -> anyhow::Result<()> {
    let listener = hotswap_common::server::listen(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for metrics"))?;
    hotswap_common::metrics::install();
    tokio::spawn(async move {
        if let Err(e) =
            hotswap_common::metrics::serve(listener, tokens, std::future::pending()).await
        {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(())
}
