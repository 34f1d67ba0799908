//! The subcommands: serving, and provisioning without the web UI.
//!
//! Provisioning commands print only their result on stdout (an id, a key); messages go to
//! stderr through the log, so scripts can capture the output.

use std::sync::Arc;

use anyhow::{Context, bail};
use deyehard_core::auth::{api_key, password};
use deyehard_core::{DeviceSerial, InverterKind, LoggerSerial, TenantScope};
use deyehard_store::{
    ApiKeyStore, InverterFields, InverterStore, Maintenance, NewUser, Store, StoreOptions,
    UserStore,
};
use tokio::net::TcpListener;

use crate::api::IngestOptions;
use crate::cli::{
    ApiKeyCommand, Cli, Command, InverterAddArgs, InverterCommand, ServeArgs, UserCommand,
};
use crate::ratelimit::RateQuota;

/// Runs the command the command line names.
pub(crate) async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let store = Arc::new(open_store(&cli).await?);
    match cli.command {
        None => serve(&cli, store, ServeArgs::default()).await,
        Some(Command::Serve(ref args)) => serve(&cli, store, args.clone()).await,
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
        Some(Command::Apikey(ApiKeyCommand::Create { ref user, ref name })) => {
            let scope = operator_scope(&store, user).await?;
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
            crate::export::run(&store, &scope, args).await
        }
        Some(Command::ImportOriginal(ref args)) => crate::import::run_command(&store, args).await,
    }
}

/// Opens the store named by `DATABASE_URL`, or the embedded SQLite database in the data directory.
pub async fn open_store(cli: &Cli) -> anyhow::Result<Store> {
    let options = StoreOptions {
        retention_days: cli.retention_days,
        ..StoreOptions::default()
    };
    deyehard_collector::open_store(cli.database_url.as_deref(), &cli.data_dir, &options).await
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

async fn serve(cli: &Cli, store: Arc<Store>, args: ServeArgs) -> anyhow::Result<()> {
    let info = store.backend_info().await?;
    tracing::info!(
        backend = ?info.kind,
        timescaledb = info.timescaledb,
        retention_days = info.retention_days,
        "store ready"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let collector = match args.collector_listen.0 {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (collector)"))?;
            tracing::info!(addr = %listener.local_addr()?, "collector listening");
            let options = deyehard_collector::CollectorOptions::new(cli.data_dir.join("spool"));
            let mut rx = stop_rx.clone();
            Some(tokio::spawn(deyehard_collector::run(
                listener,
                store.clone(),
                options,
                async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                },
            )))
        }
        None => None,
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (web)", args.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "web server listening");
    eprintln!(
        "deyehard is running: open http://{}:{}/ (create the first admin with `deyehard-server user add --email you@example.com --password … --verified --superuser`)",
        if local.ip().is_unspecified() {
            "localhost".to_owned()
        } else {
            local.ip().to_string()
        },
        local.port()
    );
    let mut ingest = IngestOptions::default();
    ingest.api_keys.rate_limit = RateQuota::per_minute(args.ingest_rate_limit);
    let accounts = crate::accounts::from_args(&args.accounts, &cli.data_dir)?;
    let state = crate::AppState::new(store, accounts, &ingest);
    let mut rx = stop_rx.clone();
    let web = crate::run_with(listener, state, async move {
        let _ = rx.wait_for(|stop| *stop).await;
    });
    let stop = stop_tx.clone();
    tokio::spawn(async move {
        deyehard_collector::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let web_result = web.await;
    // Whatever ended the web server also ends the collector.
    let _ = stop_tx.send(true);
    web_result.context("web server")?;
    if let Some(task) = collector {
        task.await.context("collector task")?.context("collector")?;
    }
    Ok(())
}
