//! Command line of `deyehard-server`.
//!
//! The configuration flags (`--data-dir`, `--listen`, `--database-url`, …) are not declared
//! here: they come from the settings table (`deyehard_collector::config`) and are global, so
//! they may stand before or after the subcommand. [`crate::config`] turns them, the
//! environment and the config file into typed settings.

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Monitoring for solar inverters: web app, JSON API, OpenDTU ingestion and Solarman collector.
#[derive(Debug, Parser)]
#[command(name = "deyehard-server", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web app, the API and (unless `--collector-listen off`) the Solarman collector.
    Serve,
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
    /// Print a commented example configuration file with every key and its default.
    PrintConfig,
    /// Exit 0 when the server on `--listen` answers `/readyz` with 200: the container health
    /// check.
    Healthcheck,
    /// Copy users, inverters and measurements from a database of the original (Python) service;
    /// the summary goes to stdout (see docs/switching-over.md).
    ImportOriginal(ImportOriginalArgs),
}

/// Options of the account flows (part of serving), as configured.
#[derive(Clone, Default)]
pub struct AccountArgs {
    /// Public URL of the server, used in mailed links.
    pub base_url: String,
    /// Mark cookies Secure (and send HSTS); `false` only for plain-http development.
    pub cookie_secure: bool,
    /// Production profile: refuse missing, short or example secrets and insecure cookies.
    pub production: bool,
    /// `production` turns on the production profile (like `production`).
    pub environment: String,
    /// Session signing secret, at least 32 bytes (generated in development when unset).
    pub auth_secret: Option<String>,
    /// File holding AUTH_SECRET (the configuration reads such files itself and leaves this
    /// unset).
    pub auth_secret_file: Option<std::path::PathBuf>,
    /// Fernet key for mailed links (generated in development when unset).
    pub encryption_key: Option<String>,
    /// File holding ENCRYPTION_KEY (see `auth_secret_file`).
    pub encryption_key_file: Option<std::path::PathBuf>,
    /// SMTP server; unset writes mail to `<data-dir>/outbox/`.
    pub smtp_host: Option<String>,
    /// SMTP port (default: 587 for STARTTLS, 465 for TLS).
    pub smtp_port: Option<u16>,
    /// SMTP user name.
    pub smtp_username: Option<String>,
    /// SMTP password.
    pub smtp_password: Option<String>,
    /// Sender address of mail.
    pub smtp_from: String,
    /// `starttls`, `tls` or `none`.
    pub smtp_tls: crate::mail::SmtpTls,
    /// Reverse proxies (addresses or networks) whose X-Forwarded-For is believed.
    pub trusted_proxies: crate::security::TrustedProxies,
    /// Time zone of new accounts that do not send one.
    pub default_time_zone: String,
}

impl std::fmt::Debug for AccountArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("AccountArgs")
            .field("base_url", &self.base_url)
            .field("cookie_secure", &self.cookie_secure)
            .field("production", &self.is_production())
            .field("auth_secret", &set(&self.auth_secret))
            .field("encryption_key", &set(&self.encryption_key))
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_username", &self.smtp_username)
            .field("smtp_password", &set(&self.smtp_password))
            .field("smtp_from", &self.smtp_from)
            .field("smtp_tls", &self.smtp_tls)
            .field("default_time_zone", &self.default_time_zone)
            .finish_non_exhaustive()
    }
}

impl AccountArgs {
    /// Whether the production profile is on.
    pub fn is_production(&self) -> bool {
        self.production || self.environment.eq_ignore_ascii_case("production")
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
    /// Make a user an administrator.
    Promote {
        /// Email of the user.
        #[arg(long)]
        email: String,
    },
    /// Take a user's administrator rights away.
    Demote {
        /// Email of the user.
        #[arg(long)]
        email: String,
    },
    /// Print the users, one per line, with tab-separated fields: id, email,
    /// `active`|`inactive`, `verified`|`unverified`, `admin`|`user`, inverter count, created
    /// (RFC 3339), display name (tabs and line breaks in it become spaces).
    List {
        /// Only users whose email or display name contains this text (any case).
        #[arg(long)]
        search: Option<String>,
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
