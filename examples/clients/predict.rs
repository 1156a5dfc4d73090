//! A small hotswap client: calls `hotswap.v1.Predictor/Predict` with a JSON
//! payload and prints the version that answered and the outputs.
//!
//!     cargo run --example predict -- --addr 127.0.0.1:7000 --api iris '[[5.1, 3.5, 1.4, 0.2]]'
//!     cargo run --example predict -- --api zoo --model petal '[[5.1, 3.5, 1.4, 0.2]]'
//!     cargo run --example predict -- --api iris --version 1 '{"input": [[5.1, 3.5, 1.4, 0.2]]}'

use clap::Parser;
use hotswap_proto::v1::predictor_client::PredictorClient;
use hotswap_proto::v1::{PredictRequest, predict_request, predict_response};

#[derive(Parser)]
struct Args {
    /// The control plane (or a worker) to call.
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: String,
    /// The API, as named in the config.
    #[arg(long)]
    api: String,
    /// The model within the API (needed when it serves several).
    #[arg(long, default_value = "")]
    model: String,
    /// A version number, or empty / "latest".
    #[arg(long, default_value = "")]
    version: String,
    /// The payload: a nested list, or an object of input name -> nested list.
    payload: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut client = PredictorClient::connect(format!("http://{}", args.addr)).await?;
    let response = client
        .predict(PredictRequest {
            api: args.api,
            model: args.model,
            version: args.version,
            payload: Some(predict_request::Payload::Json(args.payload)),
            ..Default::default()
        })
        .await;
    match response {
        Ok(r) => {
            let r = r.into_inner();
            if r.model.is_empty() {
                // A Python predictor answers for its whole API.
                println!("{}", r.api);
            } else {
                println!("{}/{} version {}", r.api, r.model, r.version);
            }
            if let Some(predict_response::Output::Json(json)) = r.output {
                println!("{json}");
            }
            Ok(())
        }
        Err(status) => {
            eprintln!("{:?}: {}", status.code(), status.message());
            std::process::exit(1);
        }
    }
}
