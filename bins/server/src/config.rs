//! The server's typed settings, read from the layered configuration of
//! `deyehard_collector::config` (defaults → config file → environment and `.env` → flags; the
//! README's configuration table lists every key).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use deyehard_collector::ListenerConfig;
use deyehard_collector::config::{
    Binary, Config, ConfigError, DatabaseUrl, Environment, Listen, LogFormat, Secret,
};
use deyehard_store::StoreOptions;

use crate::cli::AccountArgs;

/// Where `/metrics` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsListen {
    /// On the web listener, next to the app.
    Web,
    /// On a listener of its own (keep it off the public network).
    Addr(SocketAddr),
    /// Nowhere.
    Off,
}

impl FromStr for MetricsListen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("web") {
            return Ok(Self::Web);
        }
        match s.parse::<Listen>() {
            Ok(Listen(Some(addr))) => Ok(Self::Addr(addr)),
            Ok(Listen(None)) => Ok(Self::Off),
            Err(_) => Err("expected `web`, an address like 127.0.0.1:9100, or `off`".to_owned()),
        }
    }
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The web app, the API and the push endpoints.
    pub listen: SocketAddr,
    /// The in-process Solarman collector, if any.
    pub collector_listen: Option<SocketAddr>,
    /// The collector's listener settings.
    pub collector: ListenerConfig,
    /// Where `/metrics` is served.
    pub metrics_listen: MetricsListen,
    /// Pushes per minute per API key; 0 turns the limit off.
    pub ingest_rate_limit: u32,
    /// Most concurrent write transactions of one tenant's pushes on PostgreSQL.
    pub ingest_writers: usize,
    /// Accounts, sessions, secrets and mail.
    pub accounts: AccountArgs,
}

/// The server's settings. `Debug` shows no secret and no database password.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Data directory (SQLite database, generated secrets, outbox, spool).
    pub data_dir: PathBuf,
    /// PostgreSQL URL, or `None` for SQLite in the data directory.
    pub database_url: Option<DatabaseUrl>,
    /// Retention window, days.
    pub retention_days: u32,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log: String,
    /// Serving.
    pub serve: ServeSettings,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Whether `data_dir` was given as a flag (the start-up hint repeats it).
    pub data_dir_flag: bool,
}

impl ServerSettings {
    /// Reads the process environment, `.env`, the config file and `flags`.
    ///
    /// # Errors
    /// A bad value, named with its key and origin.
    pub fn load(flags: &deyehard_collector::config::Flags) -> Result<Self, ConfigError> {
        let env = Environment::from_process()?;
        Self::from_config(&Config::load(Binary::Server, &env, flags)?)
    }

    /// Parses the server's settings.
    ///
    /// # Errors
    /// A bad value, named with its key and origin.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let collector = ListenerConfig {
            max_connections: config.get::<usize>("collector_max_connections")?.max(1),
            reply_last_field: config.get("collector_reply_last_field")?,
            ..ListenerConfig::default()
        };
        let serve = ServeSettings {
            listen: config.get("listen")?,
            collector_listen: config.get::<Listen>("collector_listen")?.0,
            collector,
            metrics_listen: config.get("metrics_listen")?,
            ingest_rate_limit: config.get("ingest_rate_limit")?,
            ingest_writers: config.get::<usize>("ingest_writers")?.max(1),
            accounts: accounts(config)?,
        };
        Ok(Self {
            data_dir: config.get("data_dir")?,
            database_url: config.get_opt("database_url")?,
            retention_days: config.get("retention_days")?,
            log_format: config.get("log_format")?,
            log: config.get("log")?,
            serve,
            config_file: config.file().map(PathBuf::from),
            data_dir_flag: matches!(
                config.origin("data_dir"),
                Some(deyehard_collector::config::Origin::Flag(_))
            ),
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

fn accounts(config: &Config) -> Result<AccountArgs, ConfigError> {
    let environment: String = config.parse("environment", |v| {
        match v.trim().to_ascii_lowercase().as_str() {
            e @ ("development" | "production") => Ok(e.to_owned()),
            _ => Err("expected `development` or `production`".to_owned()),
        }
    })?;
    let secret = |key| -> Result<Option<String>, ConfigError> {
        Ok(config
            .get_opt::<Secret>(key)?
            .map(|s| s.expose().to_owned()))
    };
    Ok(AccountArgs {
        base_url: config.get("base_url")?,
        cookie_secure: config.parse("cookie_secure", parse_bool)?,
        production: false,
        environment,
        auth_secret: secret("auth_secret")?,
        auth_secret_file: None,
        encryption_key: secret("encryption_key")?,
        encryption_key_file: None,
        smtp_host: config.get_opt("smtp_host")?,
        smtp_port: config.get_opt("smtp_port")?,
        smtp_username: config.get_opt("smtp_username")?,
        smtp_password: secret("smtp_password")?,
        smtp_from: config.get("smtp_from")?,
        smtp_tls: config.parse("smtp_tls", |v| {
            <crate::mail::SmtpTls as clap::ValueEnum>::from_str(v.trim(), true)
                .map_err(|_| "expected `starttls`, `tls` or `none`".to_owned())
        })?,
        trusted_proxies: config.get("trusted_proxies")?,
        default_time_zone: config.parse("default_time_zone", |v| {
            v.trim()
                .parse::<chrono_tz::Tz>()
                .map(|_| v.trim().to_owned())
                .map_err(|_| "not an IANA time zone like Europe/Berlin".to_owned())
        })?,
    })
}

/// `true`/`false` and the usual spellings of them.
fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected `true` or `false`".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use deyehard_collector::config::Flags;

    use super::*;

    fn load(vars: &[(&str, &str)], flags: Flags) -> Result<ServerSettings, ConfigError> {
        let env = Environment::from_pairs(
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            Path::new("/nonexistent"),
        );
        ServerSettings::from_config(&Config::load(Binary::Server, &env, &flags)?)
    }

    #[test]
    fn no_configuration_serves_on_8000_and_10000_with_sqlite_in_data() {
        let s = load(&[], Flags::none()).unwrap();
        assert_eq!(s.serve.listen, SocketAddr::from(([0, 0, 0, 0], 8000)));
        assert_eq!(
            s.serve.collector_listen,
            Some(SocketAddr::from(([0, 0, 0, 0], 10000)))
        );
        assert_eq!(s.serve.metrics_listen, MetricsListen::Web);
        assert_eq!(s.data_dir, PathBuf::from("data"));
        assert!(s.database_url.is_none());
        assert!(s.serve.accounts.cookie_secure && !s.serve.accounts.is_production());
        assert_eq!(s.serve.accounts.smtp_tls, crate::mail::SmtpTls::Starttls);
        assert_eq!(s.retention_days, 730);
        assert_eq!(s.serve.ingest_rate_limit, 600);
        assert_eq!(s.serve.ingest_writers, 1);
        // The library's default (embedders, tests) is the served one.
        assert_eq!(
            s.serve.ingest_writers,
            crate::IngestOptions::default().writers_per_tenant
        );
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn the_original_names_and_the_flags_work() {
        let s = load(
            &[
                ("DATABASE_URL", "postgres://u:hunter2@db/x"),
                ("AUTH_SECRET", "a-secret-of-at-least-32-bytes-long!"),
                ("COOKIE_SECURE", "false"),
                ("BASE_URL", "https://solar.example.com"),
                ("SMTP_HOST", "smtp.example.com"),
                ("SMTP_PORT", "465"),
                ("SMTP_TLS", "TLS"),
                ("DEYEHARD_COLLECTOR_LISTEN", "off"),
                ("DEYEHARD_METRICS_LISTEN", "127.0.0.1:9100"),
                ("DEYEHARD_INGEST_WRITERS", "3"),
            ],
            Flags::none()
                .set("environment", "production", "production")
                .set("listen", "listen", "127.0.0.1:8080"),
        )
        .unwrap();
        assert_eq!(s.serve.ingest_writers, 3);
        assert_eq!(
            s.database_url.as_ref().map(DatabaseUrl::expose),
            Some("postgres://u:hunter2@db/x")
        );
        assert!(!s.serve.accounts.cookie_secure && s.serve.accounts.is_production());
        assert_eq!(s.serve.accounts.smtp_port, Some(465));
        assert_eq!(s.serve.accounts.smtp_tls, crate::mail::SmtpTls::Tls);
        assert_eq!(s.serve.collector_listen, None);
        assert_eq!(
            s.serve.metrics_listen,
            MetricsListen::Addr(SocketAddr::from(([127, 0, 0, 1], 9100)))
        );
        assert_eq!(s.serve.listen.port(), 8080);
        let shown = format!("{s:?}");
        assert!(shown.contains("postgres://u:***@db/x"), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("a-secret"),
            "{shown}"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        for (var, value, key) in [
            ("COOKIE_SECURE", "maybe", "`cookie_secure`"),
            ("SMTP_TLS", "ssl", "`smtp_tls`"),
            ("DEYEHARD_ENV", "staging", "`environment`"),
            (
                "DEYEHARD_DEFAULT_TIME_ZONE",
                "Mars/Olympus",
                "`default_time_zone`",
            ),
            (
                "DEYEHARD_TRUSTED_PROXIES",
                "10.0.0.0/99",
                "`trusted_proxies`",
            ),
            ("DEYEHARD_METRICS_LISTEN", "9100", "`metrics_listen`"),
            ("DEYEHARD_INGEST_WRITERS", "two", "`ingest_writers`"),
            ("SMTP_PORT", "70000", "`smtp_port`"),
        ] {
            let err = load(&[(var, value)], Flags::none())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains(var), "{var}: {err}");
        }
    }
}
