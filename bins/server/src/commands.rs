//! The subcommands: serving, and provisioning without the web UI.
//!
//! Provisioning commands print only their result on stdout (an id, a key); messages go to
//! stderr through the log, so scripts can capture the output.

use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, bail};
use deyehard_core::auth::{api_key, password};
use deyehard_core::{DeviceSerial, InverterKind, LoggerSerial, TenantScope};
use deyehard_store::{
    ApiKeyStore, InverterFields, InverterStore, Maintenance, NewUser, Store, UserStore,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::IngestOptions;
use crate::batch::WriterRuntime;
use crate::cli::{ApiKeyCommand, Cli, Command, InverterAddArgs, InverterCommand, UserCommand};
use crate::config::{MetricsListen, ServerSettings};
use crate::ratelimit::RateQuota;

/// Runs the command the command line names.
pub(crate) async fn dispatch(cli: Cli, settings: ServerSettings) -> anyhow::Result<()> {
    if let Some(Command::Healthcheck) = cli.command {
        let addr = deyehard_collector::ops::local_address(settings.serve.listen);
        deyehard_collector::ops::probe(addr, Some("/readyz")).await?;
        return Ok(());
    }
    let store = Arc::new(open_store(&settings).await?);
    match cli.command {
        None | Some(Command::Serve) => serve(&settings, store).await,
        Some(Command::PrintConfig | Command::Healthcheck) => Ok(()),
        Some(Command::User(UserCommand::Add {
            ref email,
            ref password,
            ref name,
            ref time_zone,
            verified,
            superuser,
        })) => {
            password::check_policy(password, Some(email)).map_err(|e| anyhow::anyhow!("{e}"))?;
            let hash = hash_password(password.clone()).await?;
            let display_name = name
                .clone()
                .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned());
            let user = store
                .create_user(&NewUser {
                    email: email.clone(),
                    password_hash: hash,
                    display_name,
                    time_zone: Some(time_zone.clone()),
                    locale: None,
                    is_verified: verified,
                    is_superuser: superuser,
                })
                .await
                .context("cannot create the user")?;
            println!("{}", user.id);
            Ok(())
        }
        Some(Command::User(UserCommand::Promote { ref email })) => {
            let scope = operator_scope(&store, email).await?;
            store.set_superuser(&scope, true).await?;
            Ok(())
        }
        Some(Command::User(UserCommand::Demote { ref email })) => {
            let scope = operator_scope(&store, email).await?;
            store.set_superuser(&scope, false).await?;
            Ok(())
        }
        Some(Command::User(UserCommand::List { ref search })) => {
            crate::accounts::print_users(&store, search.as_deref()).await
        }
        Some(Command::Apikey(ApiKeyCommand::Create { ref user, ref name })) => {
            let scope = operator_scope(&store, user).await?;
            crate::accounts::check_key_owner_verified(&store, user).await?;
            let key = api_key::generate();
            store
                .create_api_key(&scope, name, &key.prefix, &key.hash)
                .await
                .context("cannot store the API key")?;
            println!("{}", key.plaintext);
            Ok(())
        }
        Some(Command::User(UserCommand::SetPassword {
            ref email,
            ref password,
        })) => {
            password::check_policy(password, Some(email)).map_err(|e| anyhow::anyhow!("{e}"))?;
            let scope = operator_scope(&store, email).await?;
            let hash = hash_password(password.clone()).await?;
            store
                .set_password_hash(&scope, &hash)
                .await
                .context("cannot set the password")?;
            Ok(())
        }
        Some(Command::User(UserCommand::Verify { ref email })) => {
            let scope = operator_scope(&store, email).await?;
            store
                .set_verified(&scope, true)
                .await
                .context("cannot verify the user")?;
            Ok(())
        }
        Some(Command::Apikey(ApiKeyCommand::Revoke {
            ref user,
            ref prefix,
        })) => {
            let scope = operator_scope(&store, user).await?;
            let keys = store.api_keys(&scope).await?;
            let Some(key) = keys.iter().find(|k| k.prefix == *prefix) else {
                bail!("{user} has no API key with the prefix {prefix:?}");
            };
            store
                .revoke_api_key(&scope, key.id)
                .await
                .context("cannot revoke the key")?;
            Ok(())
        }
        Some(Command::Inverter(InverterCommand::Add(ref args))) => {
            let id = add_inverter(&store, args).await?;
            println!("{id}");
            Ok(())
        }
        Some(Command::Export(ref args)) => {
            let scope = operator_scope(&store, &args.user).await?;
            crate::export::run(store.clone(), &scope, args).await
        }
        Some(Command::ImportOriginal(ref args)) => crate::import::run_command(&store, args).await,
    }
}

/// Opens the store named by `database_url`, or the embedded SQLite database in the data
/// directory.
pub async fn open_store(settings: &ServerSettings) -> anyhow::Result<Store> {
    let url = settings.database_url.as_ref().map(|u| u.expose());
    deyehard_collector::open_store(url, &settings.data_dir, &settings.store_options()).await
}

/// The operator runs the command line with the database in hand: they act for the user named
/// by email (the credential lookup is the email itself).
async fn operator_scope(store: &Store, email: &str) -> anyhow::Result<TenantScope> {
    match store.user_by_email_unscoped(email).await? {
        Some(user) => Ok(TenantScope::from_credential_lookup(user.id)),
        None => bail!("no user with the email address {email:?}"),
    }
}

async fn hash_password(password: String) -> anyhow::Result<String> {
    let hash = tokio::task::spawn_blocking(move || password::hash_password(&password))
        .await
        .context("the password hashing task failed")??;
    Ok(hash.into_string())
}

async fn add_inverter(store: &Store, args: &InverterAddArgs) -> anyhow::Result<i64> {
    let scope = operator_scope(store, &args.user).await?;
    let kind: InverterKind = args.kind.parse().context("--kind")?;
    let serial = args
        .serial
        .as_deref()
        .map(DeviceSerial::parse)
        .transpose()
        .context("--serial")?;
    let logger_serial = args
        .logger_serial
        .as_deref()
        .map(str::parse::<LoggerSerial>)
        .transpose()
        .context("--logger-serial")?;
    match kind {
        InverterKind::Solarman if logger_serial.is_none() => {
            bail!("--logger-serial is required for --kind solarman")
        }
        InverterKind::Opendtu | InverterKind::Victron if serial.is_none() => {
            bail!("--serial is required for --kind {kind}")
        }
        _ => {}
    }
    let inverter = store
        .create_inverter(
            &scope,
            &InverterFields {
                name: args.name.clone(),
                kind,
                serial,
                logger_serial,
                rated_power_w: args.rated_power,
                mppt_count: args.mppts,
            },
        )
        .await
        .context("cannot register the inverter")?;
    if let Some(logger) = logger_serial {
        let report = deyehard_collector::backfill_logger(store, &scope, logger)
            .await
            .context("cannot backfill the logger's earlier frames")?;
        if report.frames > 0 {
            tracing::info!(frames = report.frames, readings = report.readings, %logger, "backfilled frames sent before the claim");
        }
    }
    Ok(inverter.id.get())
}

async fn serve(settings: &ServerSettings, store: Arc<Store>) -> anyhow::Result<()> {
    let args = &settings.serve;
    let info = store.backend_info().await?;
    tracing::info!(
        backend = ?info.kind,
        timescaledb = info.timescaledb,
        retention_days = info.retention_days,
        config_file = ?settings.config_file,
        "store ready"
    );
    tracing::debug!(?settings, "configuration");
    deyehard_collector::ops::metrics_handle();
    let (stop_tx, stop_rx) = watch::channel(false);
    let writers = WriterRuntime::start(&store).await?;
    let collector = start_collector(settings, &store, &stop_rx).await?;
    let metrics = match args.metrics_listen {
        MetricsListen::Addr(addr) => {
            let listener = bind(addr, "metrics_listen").await?;
            tracing::info!(addr = %listener.local_addr()?, "metrics listening");
            let serving = deyehard_collector::ops::serve(
                listener,
                store.clone(),
                writers.named_pools(),
                stopped(&stop_rx),
            );
            Some(tokio::spawn(serving))
        }
        MetricsListen::Web | MetricsListen::Off => None,
    };
    let listener = bind(args.listen, "listen").await?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "web server listening");
    let mut ingest = IngestOptions::default();
    ingest.api_keys.rate_limit = RateQuota::per_minute(args.ingest_rate_limit);
    ingest.writers_per_tenant = args.ingest_writers;
    let accounts = crate::accounts::from_args(&args.accounts, &settings.data_dir)?;
    eprintln!(
        "{}",
        banner(settings, local, collector.as_ref().map(|c| c.0))
    );
    let mut state = crate::AppState::new(store.clone(), accounts, &ingest)
        .with_writer_runtime(&writers, &ingest);
    if let Some((addr, _)) = &collector {
        state.collector_port = addr.port();
    }
    if args.metrics_listen != MetricsListen::Web {
        state = state.without_metrics();
    }
    let web = crate::run_with(listener, state, stopped(&stop_rx));
    let stop = stop_tx.clone();
    tokio::spawn(async move {
        deyehard_collector::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let web_result = web.await;
    // Whatever ended the web server also ends the collector and the metrics listener.
    let _ = stop_tx.send(true);
    web_result.context("web server")?;
    if let Some((_, task)) = collector {
        task.await.context("collector task")?.context("collector")?;
    }
    if let Some(task) = metrics {
        task.await
            .context("metrics task")?
            .context("metrics listener")?;
    }
    writers.shutdown().await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves once `stop` turns true.
fn stopped(stop: &watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut stop = stop.clone();
    async move {
        let _ = stop.wait_for(|stop| *stop).await;
    }
}

/// The in-process collector, if configured: its bound address and its task.
async fn start_collector(
    settings: &ServerSettings,
    store: &Arc<Store>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Option<(std::net::SocketAddr, JoinHandle<anyhow::Result<()>>)>> {
    let Some(addr) = settings.serve.collector_listen else {
        return Ok(None);
    };
    let listener = bind(addr, "collector_listen").await?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "collector listening");
    let mut options = deyehard_collector::CollectorOptions::new(settings.data_dir.join("spool"));
    options.listener = settings.serve.collector.clone();
    let running = deyehard_collector::run(listener, store.clone(), options, stopped(stop));
    Ok(Some((bound, tokio::spawn(running))))
}

async fn bind(addr: std::net::SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({key})"))
}

/// What a person starting the server needs to know: where to open it, where the data is, and
/// the exact command that creates the first administrator (with the same data directory).
fn banner(
    settings: &ServerSettings,
    local: std::net::SocketAddr,
    collector: Option<std::net::SocketAddr>,
) -> String {
    let host = if local.ip().is_unspecified() {
        "localhost".to_owned()
    } else {
        local.ip().to_string()
    };
    let database = match &settings.database_url {
        Some(url) => format!("PostgreSQL {url}"),
        None => format!("SQLite {}", settings.data_dir.join("deyehard.db").display()),
    };
    let collector = match collector {
        Some(addr) => format!(
            "Solarman loggers connect to TCP port {} (\"Server B\")",
            addr.port()
        ),
        None => "Solarman collector off".to_owned(),
    };
    // `cargo run` sets CARGO for the program it runs: repeat the command the person used.
    let program = if std::env::var_os("CARGO").is_some() {
        let release = if cfg!(debug_assertions) {
            ""
        } else {
            " --release"
        };
        format!("cargo run{release} --bin deyehard-server --")
    } else {
        "deyehard-server".to_owned()
    };
    let data_dir = if settings.data_dir_flag {
        format!(" --data-dir {}", settings.data_dir.display())
    } else {
        String::new()
    };
    let mut text = format!(
        "\ndeyehard is running: open http://{host}:{port}/\n  \
         data: {database}\n  {collector}\n  \
         create the first (admin) user, in another terminal:\n    \
         {program}{data_dir} user add --email you@example.com --password 'Choose-a-good-1' --verified --superuser\n",
        port = local.port(),
    );
    let accounts = &settings.serve.accounts;
    let loopback = ["http://localhost", "http://127.", "http://[::1]"];
    if accounts.cookie_secure
        && accounts.base_url.starts_with("http://")
        && !loopback.iter().any(|p| accounts.base_url.starts_with(p))
    {
        text.push_str(
            "  note: COOKIE_SECURE is on but BASE_URL is plain http: browsers will not keep the \
             login cookie; serve HTTPS or set COOKIE_SECURE=false\n",
        );
    }
    text
}
