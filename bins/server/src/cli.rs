//! Command line of `deyehard-server`.
//!
//! Every flag can also come from the environment (names in the flag docs); flags win.
//! `--data-dir` is global: it may stand before or after the subcommand.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Monitoring for solar inverters: web app, JSON API, OpenDTU ingestion and Solarman collector.
#[derive(Debug, Parser)]
#[command(name = "deyehard-server", version, about)]
pub struct Cli {
    /// Where the embedded database, generated secrets, the outbox and the spool live.
    #[arg(long, global = true, env = "DEYEHARD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// PostgreSQL URL (`postgres://…`); unset means the embedded SQLite database in the data directory.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Days of raw readings and raw frames to keep.
    #[arg(
        long,
        global = true,
        env = "DEYEHARD_RETENTION_DAYS",
        default_value_t = 730
    )]
    pub retention_days: u32,

    /// Log format.
    #[arg(long, global = true, env = "DEYEHARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
// Parsed once per process: the size of the `serve` options does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web app, the API and (unless disabled) the Solarman collector.
    Serve(ServeArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
    /// Manage inverters.
    #[command(subcommand)]
    Inverter(InverterCommand),
    /// Print a user's readings on stdout, in time order (JSON lines or CSV).
    Export(ExportArgs),
    /// Copy users, inverters and measurements from a database of the original (Python) service;
    /// the summary goes to stdout (see docs/switching-over.md).
    ImportOriginal(ImportOriginalArgs),
}

/// Options of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the web app and API.
    #[arg(long, env = "DEYEHARD_LISTEN", default_value = "0.0.0.0:8000")]
    pub listen: SocketAddr,
    /// Address of the Solarman collector (TCP, port 10000 is what loggers use); `off` disables it.
    #[arg(
        long,
        env = "DEYEHARD_COLLECTOR_LISTEN",
        default_value = "0.0.0.0:10000"
    )]
    pub collector_listen: CollectorListen,
    /// Pushes per minute per API key (also the burst size); 0 disables the limit.
    #[arg(long, env = "DEYEHARD_INGEST_RATE_LIMIT", default_value_t = DEFAULT_INGEST_RATE_LIMIT)]
    pub ingest_rate_limit: u32,
    /// Accounts, sessions, secrets and mail.
    #[command(flatten)]
    pub accounts: AccountArgs,
}

/// Default of `--ingest-rate-limit`: a DTU pushes once a minute, so hundreds of DTUs can share a
/// key.
pub const DEFAULT_INGEST_RATE_LIMIT: u32 = 600;

impl Default for ServeArgs {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            collector_listen: CollectorListen(Some(SocketAddr::from(([0, 0, 0, 0], 10000)))),
            ingest_rate_limit: DEFAULT_INGEST_RATE_LIMIT,
            accounts: AccountArgs::default(),
        }
    }
}

/// Options of the account flows (part of `serve`).
#[derive(Clone, Args)]
pub struct AccountArgs {
    /// Public URL of the server, used in mailed links.
    #[arg(long, env = "BASE_URL", default_value = "http://localhost:8000")]
    pub base_url: String,
    /// Mark cookies Secure (and send HSTS); `false` only for plain-http development.
    #[arg(long, env = "COOKIE_SECURE", default_value_t = true, action = clap::ArgAction::Set)]
    pub cookie_secure: bool,
    /// Production profile: refuse missing, short or example secrets and insecure cookies.
    #[arg(long)]
    pub production: bool,
    /// `production` turns on the production profile (like `--production`).
    #[arg(long = "env", env = "DEYEHARD_ENV", default_value = "development")]
    pub environment: String,
    /// Session signing secret, at least 32 bytes (generated in development when unset).
    #[arg(long, env = "AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,
    /// File holding AUTH_SECRET.
    #[arg(long, env = "AUTH_SECRET_FILE")]
    pub auth_secret_file: Option<std::path::PathBuf>,
    /// Fernet key for mailed links (generated in development when unset).
    #[arg(long, env = "ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
    /// File holding ENCRYPTION_KEY.
    #[arg(long, env = "ENCRYPTION_KEY_FILE")]
    pub encryption_key_file: Option<std::path::PathBuf>,
    /// SMTP server; unset writes mail to `<data-dir>/outbox/`.
    #[arg(long, env = "SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// SMTP port (default: 587 for STARTTLS, 465 for TLS).
    #[arg(long, env = "SMTP_PORT")]
    pub smtp_port: Option<u16>,
    /// SMTP user name.
    #[arg(long, env = "SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// SMTP password.
    #[arg(long, env = "SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Sender address of mail.
    #[arg(
        long,
        env = "SMTP_FROM",
        default_value = "deyehard <noreply@localhost>"
    )]
    pub smtp_from: String,
    /// `starttls`, `tls` or `none`.
    #[arg(long, env = "SMTP_TLS", value_enum, default_value_t = crate::mail::SmtpTls::Starttls)]
    pub smtp_tls: crate::mail::SmtpTls,
    /// Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For is believed.
    #[arg(long, env = "DEYEHARD_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: crate::security::TrustedProxies,
    /// Time zone of new accounts that do not send one.
    #[arg(
        long,
        env = "DEYEHARD_DEFAULT_TIME_ZONE",
        default_value = "Europe/Berlin"
    )]
    pub default_time_zone: String,
}

impl std::fmt::Debug for AccountArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountArgs")
            .field("base_url", &self.base_url)
            .field("cookie_secure", &self.cookie_secure)
            .field("production", &self.is_production())
            .field("smtp_host", &self.smtp_host)
            .finish_non_exhaustive()
    }
}

impl Default for AccountArgs {
    fn default() -> Self {
        Self {
            base_url: "http://localhost:8000".to_owned(),
            cookie_secure: true,
            production: false,
            environment: "development".to_owned(),
            auth_secret: None,
            auth_secret_file: None,
            encryption_key: None,
            encryption_key_file: None,
            smtp_host: None,
            smtp_port: None,
            smtp_username: None,
            smtp_password: None,
            smtp_from: "deyehard <noreply@localhost>".to_owned(),
            smtp_tls: crate::mail::SmtpTls::Starttls,
            trusted_proxies: crate::security::TrustedProxies::default(),
            default_time_zone: "Europe/Berlin".to_owned(),
        }
    }
}

impl AccountArgs {
    /// Whether the production profile is on.
    pub fn is_production(&self) -> bool {
        self.production || self.environment.eq_ignore_ascii_case("production")
    }
}

/// The collector's listen address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectorListen(pub Option<SocketAddr>);

impl std::str::FromStr for CollectorListen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("none") {
            return Ok(Self(None));
        }
        s.parse()
            .map(|a| Self(Some(a)))
            .map_err(|e| format!("{s:?} is not an address like 0.0.0.0:10000 or `off`: {e}"))
    }
}

/// `user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        /// Email address (the login).
        #[arg(long)]
        email: String,
        /// Password (must satisfy the password policy).
        #[arg(long)]
        password: String,
        /// Display name (default: the part of the email before `@`).
        #[arg(long)]
        name: Option<String>,
        /// IANA time zone.
        #[arg(long, default_value = "Europe/Berlin")]
        time_zone: String,
        /// Mark the email address as verified.
        #[arg(long)]
        verified: bool,
        /// Make the user an administrator.
        #[arg(long)]
        superuser: bool,
    },
    /// Set a user's password (policy enforced); every session of the user ends.
    SetPassword {
        /// Email of the user.
        #[arg(long)]
        email: String,
        /// The new password.
        #[arg(long)]
        password: String,
    },
    /// Mark a user's email address as verified.
    Verify {
        /// Email of the user.
        #[arg(long)]
        email: String,
    },
}

/// `apikey …`
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key and print it (alone) on stdout.
    Create {
        /// Email of the owner.
        #[arg(long)]
        user: String,
        /// A name for the key (e.g. the DTU it is for).
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Revoke an API key of a user, named by its prefix (as listed in the account page).
    Revoke {
        /// Email of the owner.
        #[arg(long)]
        user: String,
        /// The key's public prefix (the 8 characters after `dh_`).
        #[arg(long)]
        prefix: String,
    },
}

/// `inverter …`
#[derive(Debug, Subcommand)]
pub enum InverterCommand {
    /// Register an inverter for a user and print its id.
    Add(InverterAddArgs),
}

/// Options of `inverter add`.
#[derive(Debug, Clone, Args)]
pub struct InverterAddArgs {
    /// Email of the owner.
    #[arg(long)]
    pub user: String,
    /// `opendtu`, `solarman` or `victron`.
    #[arg(long)]
    pub kind: String,
    /// Device serial (the Hoymiles serial for OpenDTU; optional for Solarman, filled from the frames).
    #[arg(long)]
    pub serial: Option<String>,
    /// Solarman logger serial (the number on the stick's label).
    #[arg(long)]
    pub logger_serial: Option<String>,
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// Rated AC power, W.
    #[arg(long)]
    pub rated_power: Option<f64>,
    /// Number of MPPT inputs.
    #[arg(long)]
    pub mppts: Option<u8>,
}

/// Options of `export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Email of the owner.
    #[arg(long)]
    pub user: String,
    /// Only the inverter with this device serial (or Solarman logger serial).
    #[arg(long)]
    pub inverter: Option<String>,
    /// Start, inclusive (RFC 3339, e.g. `2025-10-19T00:00:00+02:00`); default: the beginning.
    #[arg(long, value_parser = parse_rfc3339)]
    pub from: Option<DateTime<Utc>>,
    /// End, exclusive (RFC 3339); default: everything stored.
    #[arg(long, value_parser = parse_rfc3339)]
    pub to: Option<DateTime<Utc>>,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
}

/// Options of `import-original`.
#[derive(Clone, Args)]
pub struct ImportOriginalArgs {
    /// PostgreSQL URL of the original service's database (`postgres://user:password@host/db`);
    /// it is only read.
    #[arg(
        long = "from",
        value_name = "URL",
        env = "DEYEHARD_IMPORT_FROM",
        hide_env_values = true
    )]
    pub from: String,
    /// Time zone of the imported accounts (the original kept none).
    #[arg(
        long,
        env = "DEYEHARD_DEFAULT_TIME_ZONE",
        default_value = deyehard_store::DEFAULT_TIME_ZONE
    )]
    pub time_zone: String,
    /// Readings per write transaction (and rows per read from the original).
    #[arg(long, default_value_t = 1000)]
    pub batch_size: u32,
    /// Never draw the progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

impl std::fmt::Debug for ImportOriginalArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOriginalArgs")
            .field("from", &"<redacted>")
            .field("time_zone", &self.time_zone)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

/// Output format of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Json,
    /// Comma-separated values with a header line.
    Csv,
}

fn parse_rfc3339(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time like 2025-10-19T00:00:00Z: {e}"))
}
