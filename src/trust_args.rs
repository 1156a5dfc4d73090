//! The flags that say how a service proves itself to the other planes and
//! whom it lets call (docs/security.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use hotswap_common::trust::{BearerTokens, ClientTrust, ClusterCredentials, Secret, Tls};

#[derive(clap::Args)]
pub struct ClusterArgs {
    /// A folder with the cluster CA (`ca.crt`) and this service's
    /// certificate and key (`tls.crt`, `tls.key`; a Kubernetes TLS secret's
    /// names): every listener serves TLS, internal listeners require a
    /// client certificate the CA signed, and calls to the other planes
    /// verify them against the CA.
    #[arg(long, value_name = "DIR")]
    tls: Option<PathBuf>,
    /// A file holding the cluster token: internal listeners refuse calls
    /// without it (UNAUTHENTICATED), and calls to the other planes carry
    /// it.
    #[arg(long, value_name = "FILE")]
    cluster_token_file: Option<PathBuf>,
    /// The cluster token itself (prefer the file: environments are easier
    /// to leak); the file wins when both are given.
    #[arg(long, env = "HOTSWAP_CLUSTER_TOKEN", hide_env_values = true)]
    cluster_token: Option<String>,
}

impl ClusterArgs {
    pub async fn credentials(&self) -> anyhow::Result<ClusterCredentials> {
        let tls = load_tls(self.tls.as_deref()).await?;
        let token = match (&self.cluster_token_file, &self.cluster_token) {
            (Some(path), _) => Some(Secret::load(path).await.context("--cluster-token-file")?),
            (None, Some(token)) => {
                Some(Secret::new(token).context("--cluster-token / HOTSWAP_CLUSTER_TOKEN")?)
            }
            (None, None) => None,
        };
        Ok(ClusterCredentials { tls, token })
    }
}

/// The TLS folder of a `--tls DIR` flag, when given.
pub async fn load_tls(dir: Option<&Path>) -> anyhow::Result<Option<Arc<Tls>>> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    let tls = Tls::load(dir)
        .await
        .with_context(|| format!("--tls {}", dir.display()))?;
    Ok(Some(Arc::new(tls)))
}

#[derive(clap::Args)]
pub struct ClientArgs {
    /// A file of bearer tokens, one per line (`#` starts a comment): calls
    /// from clients must carry `authorization: Bearer <one of them>`, or
    /// are refused UNAUTHENTICATED. Health checks stay open. (A worker
    /// behind a control plane takes the cluster's credentials instead.)
    #[arg(long, value_name = "FILE")]
    tokens_file: Option<PathBuf>,
}

impl ClientArgs {
    /// Clients' TLS is the cluster's.
    pub async fn trust(&self, cluster: &ClusterCredentials) -> anyhow::Result<ClientTrust> {
        Ok(cluster.client_facing(self.tokens().await?))
    }

    /// The bearer tokens of `--tokens-file`, when given.
    pub async fn tokens(&self) -> anyhow::Result<Option<BearerTokens>> {
        match &self.tokens_file {
            Some(path) => Ok(Some(
                BearerTokens::load(path).await.context("--tokens-file")?,
            )),
            None => Ok(None),
        }
    }
}
