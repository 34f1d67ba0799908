//! # deyehard-server
//!
//! The web server of deyehard: health endpoints now, and the JSON API, the web UI and the
//! OpenDTU ingestion as they land. By default it also runs the Solarman collector in the same
//! process, so that a self-hoster runs one binary.
//!
//! [`run`] serves on a listener the caller bound, until `shutdown` resolves: the binary and
//! the end-to-end tests start the server the same way.

pub mod accounts;
pub mod api;
pub mod assets;
mod batch;
pub mod cli;
mod commands;
pub mod error;
mod export;
mod http;
pub mod import;
pub mod layout;
pub mod limits;
pub mod mail;
mod pages;
pub mod ratelimit;
pub mod secrets;
pub mod security;
pub mod session;

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use deyehard_store::Store;
use tokio::net::TcpListener;

pub use api::IngestOptions;
pub use batch::{BatchError, Batcher, ItemOutcome};
pub use commands::open_store;
pub use deyehard_collector::shutdown_signal;
pub use error::{ApiError, ErrorBody};
pub use http::{AppState, app};

/// Parses the command line, runs the command and maps the outcome to an exit code.
pub fn main_entry() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: cli::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("DEYEHARD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) is harmless: ignore the error.
    let _ = match format {
        cli::LogFormat::Text => builder.try_init(),
        cli::LogFormat::Json => builder.json().try_init(),
    };
}

/// Serves the web app on `listener` until `shutdown` resolves, then finishes in-flight requests.
///
/// The account flows run with ephemeral secrets and no outbox: use [`run_with`] to configure them.
pub async fn run(
    listener: TcpListener,
    store: Arc<Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let base_url = format!("http://{}", listener.local_addr()?);
    let accounts = accounts::Accounts::ephemeral(&base_url, None).map_err(std::io::Error::other)?;
    let state = AppState::new(store, accounts, &IngestOptions::default());
    run_with(listener, state, shutdown).await
}

/// [`run`] with a state built by the caller (configured accounts, other ingestion options).
pub async fn run_with(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    http::serve(listener, state, shutdown).await
}
