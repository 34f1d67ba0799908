//! # deyehard-collector
//!
//! The Solarman V5 collector: the TCP server that Deye/IGEN Wi-Fi loggers push their frames
//! to (the "Server B" address, port 10000). It composes the listener of `deyehard-solarman`
//! with a spool on disk and the store: every frame is stored (or spooled, while the database is
//! unreachable) before the logger gets its reply.
//!
//! [`run`] is what both binaries use: `deyehard-collector` alone, and `deyehard-server`, which
//! runs it in-process by default. `deyehard-collector decode` prints what captured frames mean.
//!
//! Both binaries also share from here: the layered configuration ([`config`]), the metrics
//! recorder and the health endpoints ([`ops`]), logging ([`init_logging`]) and the shutdown
//! signal ([`shutdown_signal`]).

pub mod cli;
mod commit;
pub mod config;
pub mod decode;
pub mod ops;
mod sink;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};
use deyehard_solarman::listener::{FrameSink, Listener, SinkError};
use deyehard_solarman::spool::SpoolingSink;
use deyehard_solarman::{FrameContent, FrameEvent};
use deyehard_store::{Maintenance, Store, StoreOptions};
use tokio::net::TcpListener;

pub use deyehard_solarman::listener::ListenerConfig;
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
    let served = Listener::new(options.listener, Arc::new(Counted(spool)))
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

/// The typed configuration of `deyehard-collector` (see [`config`] for the layers).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Data directory (SQLite database, spool).
    pub data_dir: PathBuf,
    /// PostgreSQL URL, or `None` for SQLite in the data directory.
    pub database_url: Option<config::DatabaseUrl>,
    /// Retention window, days.
    pub retention_days: u32,
    /// Log format.
    pub log_format: config::LogFormat,
    /// Log filter.
    pub log: String,
    /// Where loggers connect.
    pub listen: SocketAddr,
    /// Where `/metrics`, `/healthz` and `/readyz` are served, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Listener settings.
    pub listener: ListenerConfig,
}

impl Settings {
    /// Parses the collector's settings.
    ///
    /// # Errors
    /// A value that does not parse, named with its key and origin.
    pub fn from_config(config: &config::Config) -> Result<Self, config::ConfigError> {
        let listen = config.parse("collector_listen", |v| {
            v.parse::<config::Listen>()?
                .0
                .ok_or_else(|| "the collector needs an address to listen on".to_owned())
        })?;
        let mut listener = ListenerConfig {
            max_connections: config.get("collector_max_connections")?,
            reply_last_field: config.get("collector_reply_last_field")?,
            ..ListenerConfig::default()
        };
        listener.max_connections = listener.max_connections.max(1);
        Ok(Self {
            data_dir: config.get("data_dir")?,
            database_url: config.get_opt("database_url")?,
            retention_days: config.get("retention_days")?,
            log_format: config.get("log_format")?,
            log: config.get("log")?,
            listen,
            metrics_listen: config.get::<config::Listen>("collector_metrics_listen")?.0,
            listener,
        })
    }

    /// The store options these settings ask for.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            retention_days: self.retention_days,
            ..StoreOptions::default()
        }
    }
}

/// Parses the command line and the configuration, runs the command and maps the outcome to an
/// exit code (2 for a configuration error).
pub fn main_entry() -> ExitCode {
    let matches = config::add_flags(cli::Cli::command(), config::Binary::Collector).get_matches();
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if matches!(cli.command, Some(cli::Command::PrintConfig)) {
        print!("{}", config::example_file(config::Binary::Collector));
        return ExitCode::SUCCESS;
    }
    let flags = config::flag_values(&matches, config::Binary::Collector);
    let loaded = config::Environment::from_process()
        .and_then(|env| config::Config::load(config::Binary::Collector, &env, &flags))
        .and_then(|config| Settings::from_config(&config));
    let settings = match loaded {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(settings.log_format, &settings.log);
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
    match runtime.block_on(dispatch(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, as text or JSON lines, filtered by `filter` (a `tracing` filter such as
/// `info,sqlx=warn`; an invalid one falls back to `info` with a warning). A second call is
/// harmless (tests).
pub fn init_logging(format: config::LogFormat, filter: &str) {
    use tracing_subscriber::EnvFilter;
    let parsed = EnvFilter::try_new(filter);
    let bad_filter = parsed.is_err();
    // Colours only on a terminal: journald, files and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(parsed.unwrap_or_else(|_| EnvFilter::new("info")))
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        config::LogFormat::Text => builder.try_init(),
        config::LogFormat::Json => builder.json().try_init(),
    };
    if bad_filter {
        tracing::warn!(filter, "the log filter is not valid; logging at info");
    }
}

async fn dispatch(cli: cli::Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command {
        Some(cli::Command::Decode(ref args)) => {
            decode_command(args, settings.listener.reply_last_field)
        }
        Some(cli::Command::Healthcheck) => {
            let (addr, path) = match settings.metrics_listen {
                Some(addr) => (addr, Some("/readyz")),
                None => (settings.listen, None),
            };
            ops::probe(ops::local_address(addr), path).await?;
            Ok(())
        }
        Some(cli::Command::PrintConfig) => {
            print!("{}", config::example_file(config::Binary::Collector));
            Ok(())
        }
        Some(cli::Command::Serve) | None => serve(&settings).await,
    }
}

fn decode_command(args: &cli::DecodeArgs, reply_last_field: u32) -> anyhow::Result<()> {
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
    decode::run(&input, args.reply_at, reply_last_field, &mut out).context("cannot write")?;
    Ok(())
}

async fn serve(settings: &Settings) -> anyhow::Result<()> {
    ops::metrics_handle();
    let url = settings
        .database_url
        .as_ref()
        .map(config::DatabaseUrl::expose);
    let store = open_store(url, &settings.data_dir, &settings.store_options()).await?;
    let store = Arc::new(store);
    let info = store.backend_info().await?;
    tracing::info!(backend = ?info.kind, timescaledb = info.timescaledb, "store ready");
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {} (collector_listen)", settings.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "collector listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let ops_task = match settings.metrics_listen {
        Some(addr) => {
            let ops_listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (collector_metrics_listen)"))?;
            tracing::info!(addr = %ops_listener.local_addr()?, "metrics, healthz and readyz listening");
            let serving = ops::serve(
                ops_listener,
                store.clone(),
                Vec::new(),
                stopped(stop_rx.clone()),
            );
            Some(tokio::spawn(serving))
        }
        None => None,
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let mut options = CollectorOptions::new(settings.data_dir.join("spool"));
    options.listener = settings.listener.clone();
    let result = run(listener, store.clone(), options, stopped(stop_rx)).await;
    if let Some(task) = ops_task {
        task.await
            .context("ops listener task")?
            .context("ops listener")?;
    }
    store.close().await;
    result
}

/// Counts the readings of acknowledged data frames by source (`deyehard_readings_ingested_total`,
/// the same counter the server's push endpoints add to): stored, spooled, or kept raw for a
/// logger nobody has claimed yet.
struct Counted<S>(Arc<S>);

impl<S: FrameSink> FrameSink for Counted<S> {
    async fn record(&self, event: FrameEvent) -> Result<(), SinkError> {
        let source = match &event.content {
            FrameContent::Data {
                decoded: Some(data),
                ..
            } => Some(data.reading.source.as_str()),
            _ => None,
        };
        let result = self.0.record(event).await;
        if let (Some(source), Ok(())) = (source, &result) {
            metrics::counter!(ops::READINGS_INGESTED, "source" => source).increment(1);
        }
        result
    }
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
