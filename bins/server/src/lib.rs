//! # deyehard-server
//!
//! The web server of deyehard: the web UI, the JSON API, the OpenDTU and Victron pushes, and
//! `/healthz`, `/readyz` and Prometheus `/metrics`. By default it also runs the Solarman
//! collector in the same process, so that a self-hoster runs one binary. Its configuration
//! ([`config`]) comes in layers: defaults, a TOML file, the environment (and `.env`), flags.
//!
//! [`run`] serves on a listener the caller bound, until `shutdown` resolves: the binary and
//! the end-to-end tests start the server the same way.

pub mod accounts;
pub mod api;
pub mod assets;
mod batch;
pub mod cli;
mod commands;
pub mod config;
pub mod error;
mod export;
mod http;
pub mod import;
pub mod layout;
pub mod limits;
pub mod mail;
pub mod metrics;
mod pages;
pub mod ratelimit;
pub mod secrets;
pub mod security;
pub mod session;

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches};
use deyehard_collector::config::{self as layered, Binary};
use deyehard_store::Store;
use tokio::net::TcpListener;

pub use api::IngestOptions;
pub use batch::{BatchError, Batcher, ItemOutcome, WriterRuntime};
pub use commands::open_store;
pub use deyehard_collector::shutdown_signal;
pub use error::{ApiError, ErrorBody};
pub use http::{AppState, app};

/// Parses the command line and the configuration, runs the command and maps the outcome to an
/// exit code (2 for a configuration error, which names the key and where its value came from).
pub fn main_entry() -> ExitCode {
    let matches = layered::add_flags(cli::Cli::command(), Binary::Server).get_matches();
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if matches!(cli.command, Some(cli::Command::PrintConfig)) {
        print!("{}", layered::example_file(Binary::Server));
        return ExitCode::SUCCESS;
    }
    let settings =
        match config::ServerSettings::load(&layered::flag_values(&matches, Binary::Server)) {
            Ok(settings) => settings,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
    deyehard_collector::init_logging(settings.log_format, &settings.log);
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
    match runtime.block_on(commands::dispatch(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
