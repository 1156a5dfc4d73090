//! `hotswap`: one binary, one subcommand per service.

// The only unsafe code: changing the environment before any thread exists.
#![deny(unsafe_code)]

mod control_plane_cmd;
mod data_plane_cmd;
mod environment;
mod health_cmd;
mod metrics_args;
mod model_store_cmd;
mod shutdown;
mod storage_args;
mod telemetry;
mod trust_args;
mod up_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hotswap",
    version,
    about = "Serve ML models over gRPC and swap new versions in live"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written on stderr: `text` for people, `json` (one
    /// object per line, the same fields) for log collectors.
    #[arg(long, global = true, value_enum, env = "HOTSWAP_LOG_FORMAT", default_value_t = telemetry::LogFormat::Text)]
    log_format: telemetry::LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process on a config: model-store, control plane
    /// and one worker (the embedded default: a local folder as the bucket).
    Up(up_cmd::Args),
    /// Index model buckets and stream version events (hotswap.v1.ModelStore).
    ModelStore(model_store_cmd::Args),
    /// Route Predict and ModelInfer to workers; workers register here.
    ControlPlane(control_plane_cmd::Args),
    /// Internal: a Python predictor process, started by a worker.
    #[command(hide = true)]
    PythonWorker,
    /// Serve models from the model-store's index, swapping versions live
    /// (hotswap.v1.Predictor and the Open Inference Protocol).
    DataPlane(data_plane_cmd::Args),
    /// Ask a hotswap server's gRPC health service (exit 0 when SERVING);
    /// for container health checks.
    Health(health_cmd::Args),
}

fn main() -> std::process::ExitCode {
    // SAFETY: first thing in main: no other thread exists yet, which is what
    // makes changing the environment sound.
    #[allow(unsafe_code)]
    let env = match unsafe { environment::Environment::prepare() } {
        Ok(env) => env,
        Err(e) => {
            eprintln!("hotswap: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let cli = Cli::parse();
    if let Command::PythonWorker = cli.command {
        // A worker's child: no runtime, no logging setup; it speaks on fd 3.
        return std::process::ExitCode::from(hotswap_python_child::child_main() as u8);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hotswap: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let service = match &cli.command {
        Command::Up(_) => "hotswap",
        Command::ModelStore(_) => "hotswap-model-store",
        Command::ControlPlane(_) => "hotswap-control-plane",
        Command::DataPlane(_) | Command::PythonWorker => "hotswap-data-plane",
        Command::Health(_) => "hotswap-health",
    };
    let telemetry = runtime.block_on(async { telemetry::init(service, cli.log_format, &env) });
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up_cmd::run(args, &env).await,
            Command::ModelStore(args) => model_store_cmd::run(args, &env).await,
            Command::ControlPlane(args) => control_plane_cmd::run(args).await,
            Command::DataPlane(args) => data_plane_cmd::run(args, &env).await,
            Command::Health(args) => health_cmd::run(args).await,
            Command::PythonWorker => unreachable!("handled before the runtime starts"),
        }
    });
    runtime.block_on(async { drop(telemetry) });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "hotswap stopped");
            eprintln!("hotswap: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
