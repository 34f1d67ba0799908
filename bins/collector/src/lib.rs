//! # deyehard-collector
//!
//! The Solarman V5 collector: the TCP server that Deye/IGEN Wi-Fi loggers push their frames
//! to (the "Server B" address, port 10000). It composes the listener of `deyehard-solarman`
//! with a spool on disk and the store: every frame is stored (or spooled, while the database is
//! unreachable) before the logger gets its reply.
//!
//! [`run`] is what both binaries use: `deyehard-collector` alone, and `deyehard-server`, which
//! runs it in-process by default. `deyehard-collector decode` prints what captured frames mean.

pub mod cli;
pub mod decode;
mod sink;

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use deyehard_solarman::listener::{Listener, ListenerConfig};
use deyehard_solarman::spool::SpoolingSink;
use deyehard_store::{Maintenance, Store, StoreOptions};
use tokio::net::TcpListener;

pub use sink::{BackfillReport, StoreSink, backfill_logger};

/// How the collector runs.
#[derive(Debug, Clone)]
pub struct CollectorOptions {
    /// Directory of the spool that keeps frames while the database is unreachable.
    pub spool_dir: PathBuf,
    /// Listener settings (connection limit, reply field, timeouts).
    pub listener: ListenerConfig,
}

impl CollectorOptions {
    /// Default listener settings with the spool in `spool_dir`.
    pub fn new(spool_dir: PathBuf) -> Self {
        Self {
            spool_dir,
            listener: ListenerConfig::default(),
        }
    }
}

/// Accepts logger connections on `listener` and stores their frames in `store` until
/// `shutdown` resolves; then stops accepting, finishes the frames in flight and returns.
pub async fn run(
    listener: TcpListener,
    store: Arc<Store>,
    options: CollectorOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let inner = Arc::new(StoreSink::new(store));
    let spool = Arc::new(
        SpoolingSink::open(&options.spool_dir, inner)
            .await
            .with_context(|| format!("cannot open the spool in {}", options.spool_dir.display()))?,
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut replay_stop = stop_rx.clone();
    let replay = tokio::spawn(spool.clone().run_replay(async move {
        let _ = replay_stop.wait_for(|stop| *stop).await;
    }));
    let served = Listener::new(options.listener, spool)
        .serve(listener, async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
    // The listener has drained; let the replay task make its last attempt and stop.
    replay.await.context("spool replay task")?;
    drop(stop_rx);
    served.context("collector listener")
}

/// Parses the command line, runs the command and maps the outcome to an exit code.
pub fn main_entry() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.log_json);
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
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("DEYEHARD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn dispatch(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(cli::Command::Decode(ref args)) => decode_command(args),
        Some(cli::Command::Serve(ref args)) => serve(&cli, args.clone()).await,
        None => serve(&cli, cli::ServeArgs::default()).await,
    }
}

fn decode_command(args: &cli::DecodeArgs) -> anyhow::Result<()> {
    use std::io::Read;
    let input = match &args.file {
        Some(path) if path.as_os_str() != "-" => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read stdin")?;
            text
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    decode::run(&input, args.reply_at, args.reply_last_field, &mut out).context("cannot write")?;
    Ok(())
}

async fn serve(cli: &cli::Cli, args: cli::ServeArgs) -> anyhow::Result<()> {
    let store = open_store(
        cli.database_url.as_deref(),
        &cli.data_dir,
        &StoreOptions::default(),
    )
    .await?;
    let info = store.backend_info().await?;
    tracing::info!(backend = ?info.kind, timescaledb = info.timescaledb, "store ready");
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "collector listening");
    let mut options = CollectorOptions::new(cli.data_dir.join("spool"));
    options.listener.max_connections = args.max_connections;
    options.listener.reply_last_field = args.reply_last_field;
    run(listener, Arc::new(store), options, shutdown_signal()).await
}

/// Opens the PostgreSQL database at `database_url`, or (when it is unset or empty) the embedded
/// SQLite database `deyehard.db` in `data_dir`, creating the directory. Runs the migrations.
pub async fn open_store(
    database_url: Option<&str>,
    data_dir: &std::path::Path,
    options: &StoreOptions,
) -> anyhow::Result<Store> {
    let target = match database_url {
        Some(url) if !url.trim().is_empty() => url.to_owned(),
        _ => {
            std::fs::create_dir_all(data_dir).with_context(|| {
                format!("cannot create the data directory {}", data_dir.display())
            })?;
            data_dir.join("deyehard.db").to_string_lossy().into_owned()
        }
    };
    Store::connect(&target, options)
        .await
        .context("cannot open the database (DATABASE_URL or the data directory)")
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
