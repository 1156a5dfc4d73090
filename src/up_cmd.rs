//! `hotswap up`: the embedded default in one process: a model-store on the
//! config's buckets (a local folder by default) and one worker serving its
//! models. The control plane joins with its own issue; until then the
//! worker is the front door.

use std::path::PathBuf;

use anyhow::Context;
use hotswap_data_plane::{DEFAULT_MAX_REQUEST_BYTES, ServeConfig, WorkerConfig};
use hotswap_model_store::ModelStoreConfig;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Args {
    /// The API config (YAML, Cortex field names).
    config: PathBuf,
    /// Address clients call (Predict and the Open Inference Protocol); port 0
    /// picks a free port (the log says which).
    #[arg(long, default_value = "127.0.0.1:7000")]
    listen: String,
    #[command(flatten)]
    storage: crate::storage_args::StorageArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let apis = hotswap_model_store::config::load(&args.config)?;
    let storage = args.storage.options();
    let mut store_config = ModelStoreConfig::new(apis);
    store_config.storage = storage.clone();
    // The model-store is internal here: loopback, any free port.
    let store_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind the model-store's loopback port")?;
    let store_addr = store_listener.local_addr()?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;

    let stop = CancellationToken::new();
    let worker = hotswap_data_plane::serve(
        ServeConfig {
            worker: WorkerConfig {
                model_store: store_addr.to_string(),
                cache_dir: None,
                storage,
            },
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        },
        listener,
        stop.clone().cancelled_owned(),
    );
    let store =
        hotswap_model_store::serve(store_config, store_listener, stop.clone().cancelled_owned());
    let signal = {
        let stop = stop.clone();
        async move {
            crate::shutdown::signal().await;
            stop.cancel();
        }
    };
    // Whichever service fails first stops the other.
    let (worker, store, ()) = tokio::join!(
        async {
            let r = worker.await;
            stop.cancel();
            r
        },
        async {
            let r = store.await;
            stop.cancel();
            r
        },
        signal
    );
    worker?;
    store?;
    Ok(())
}
