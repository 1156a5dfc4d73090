//! `hotswap health ADDR`: asks a server's standard gRPC health service and
//! exits 0 when it answers SERVING, 1 otherwise. Container health checks use
//! it, so images need no grpcurl.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use hotswap_common::trust::ClusterCredentials;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[derive(clap::Args)]
pub struct Args {
    /// host:port of the server.
    addr: String,
    /// The service to ask about ("" is the server as a whole).
    #[arg(long, default_value = "")]
    service: String,
    /// Give up after this long.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The server's TLS folder (`--tls` of the service): the check calls
    /// over TLS and shows the certificate, as internal listeners require.
    #[arg(long, value_name = "DIR")]
    tls: Option<PathBuf>,
    /// With --tls, the name the server's certificate must carry [default:
    /// the host of ADDR].
    #[arg(long, value_name = "NAME")]
    tls_name: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cluster = ClusterCredentials {
        tls: crate::trust_args::load_tls(args.tls.as_deref()).await?,
        token: None,
    };
    let ask = async {
        let channel =
            hotswap_common::client::endpoint_named(&args.addr, &cluster, args.tls_name.as_deref())?
                .connect()
                .await
                .with_context(|| format!("cannot connect to {}", args.addr))?;
        let status = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: args.service.clone(),
            })
            .await
            .with_context(|| format!("health check of {}", args.addr))?
            .into_inner()
            .status();
        anyhow::Ok(status)
    };
    let status = tokio::time::timeout(args.timeout, ask)
        .await
        .with_context(|| format!("no answer from {} within {:?}", args.addr, args.timeout))??;
    if status != ServingStatus::Serving {
        bail!("{} is {}", args.addr, status.as_str_name());
    }
    println!("SERVING");
    Ok(())
}
