//! The settings of both binaries: one table, from which the layering, the command-line flags,
//! `print-config` and the README's configuration table are all derived.

/// How a value is written in the TOML file (everything is parsed from text in the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Text,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Bool,
    /// A list of strings (comma-separated in the environment and on the command line).
    List,
}

/// How much of a value may be shown in messages and `Debug` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrecy {
    /// Shown as it is.
    Public,
    /// A URL whose password is replaced by `***`.
    Url,
    /// Never shown.
    Secret,
}

/// A switch flag (or environment variable) that sets a setting to a fixed value when present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    /// The flag, without `--`.
    pub flag: &'static str,
    /// An environment variable that does the same when it holds a true value (`1`, `true`,
    /// `yes`, `on`), if any.
    pub env: Option<&'static str>,
    /// The value it sets.
    pub sets: &'static str,
}

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Key in the TOML file.
    pub key: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// Older or conventional environment variables read when `env` is unset, in order.
    pub env_aliases: &'static [&'static str],
    /// Flag of `deyehard-server` (without `--`); `None`: the server does not use the setting.
    pub server_flag: Option<&'static str>,
    /// Flag of `deyehard-collector`; `None`: the collector does not use the setting.
    pub collector_flag: Option<&'static str>,
    /// The default as text; `None`: unset unless given.
    pub default: Option<&'static str>,
    /// A value shown (commented out) by `print-config` for a setting without default.
    pub example: Option<&'static str>,
    /// TOML type.
    pub kind: Kind,
    /// What may be shown of the value.
    pub secrecy: Secrecy,
    /// Whether `<key>_file` / `<ENV>_FILE` / `--<flag>-file` may name a file holding the value.
    pub file_variant: bool,
    /// A switch flag that sets the value.
    pub switch: Option<Switch>,
    /// What it means (one sentence or two).
    pub help: &'static str,
}

const fn setting(key: &'static str, env: &'static str, help: &'static str) -> Setting {
    Setting {
        key,
        env,
        env_aliases: &[],
        server_flag: None,
        collector_flag: None,
        default: None,
        example: None,
        kind: Kind::Text,
        secrecy: Secrecy::Public,
        file_variant: false,
        switch: None,
        help,
    }
}

/// The setting that names the configuration file (not itself a key of the file).
pub const CONFIG_FILE: Setting = Setting {
    server_flag: Some("config"),
    collector_flag: Some("config"),
    example: Some("/etc/deyehard/deyehard.toml"),
    ..setting(
        "config",
        "DEYEHARD_CONFIG",
        "The configuration file; without it, `deyehard.toml` in the working directory is read if it exists.",
    )
};

/// Every setting of the configuration file, in the order `print-config` shows them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        server_flag: Some("data-dir"),
        collector_flag: Some("data-dir"),
        default: Some("data"),
        ..setting(
            "data_dir",
            "DEYEHARD_DATA_DIR",
            "Where the embedded database, generated secrets, the mail outbox and the collector's spool live.",
        )
    },
    Setting {
        server_flag: Some("database-url"),
        collector_flag: Some("database-url"),
        example: Some("postgres://deyehard:secret@localhost:5432/deyehard"),
        secrecy: Secrecy::Url,
        file_variant: true,
        ..setting(
            "database_url",
            "DATABASE_URL",
            "PostgreSQL URL; unset means the embedded SQLite database `<data_dir>/deyehard.db`.",
        )
    },
    Setting {
        server_flag: Some("retention-days"),
        collector_flag: Some("retention-days"),
        default: Some("730"),
        kind: Kind::Integer,
        ..setting(
            "retention_days",
            "DEYEHARD_RETENTION_DAYS",
            "Days of raw readings and raw frames to keep (daily energy is kept for ever).",
        )
    },
    Setting {
        server_flag: Some("log-format"),
        collector_flag: Some("log-format"),
        default: Some("text"),
        switch: Some(Switch {
            flag: "log-json",
            env: Some("DEYEHARD_LOG_JSON"),
            sets: "json",
        }),
        ..setting(
            "log_format",
            "DEYEHARD_LOG_FORMAT",
            "`text` (human-readable lines) or `json` (one object per line).",
        )
    },
    Setting {
        env_aliases: &["RUST_LOG"],
        server_flag: Some("log"),
        collector_flag: Some("log"),
        default: Some("info,sqlx=warn"),
        ..setting(
            "log",
            "DEYEHARD_LOG",
            "What to log: a `tracing` filter such as `info` or `info,deyehard_server=debug`.",
        )
    },
    Setting {
        server_flag: Some("listen"),
        default: Some("0.0.0.0:8000"),
        ..setting(
            "listen",
            "DEYEHARD_LISTEN",
            "Address of the web app, the API and the OpenDTU push.",
        )
    },
    Setting {
        server_flag: Some("metrics-listen"),
        default: Some("web"),
        ..setting(
            "metrics_listen",
            "DEYEHARD_METRICS_LISTEN",
            "Where the server serves Prometheus `/metrics`: `web` (on `listen`), an address of its own, or `off`.",
        )
    },
    Setting {
        server_flag: Some("collector-listen"),
        collector_flag: Some("listen"),
        default: Some("0.0.0.0:10000"),
        ..setting(
            "collector_listen",
            "DEYEHARD_COLLECTOR_LISTEN",
            "Address of the Solarman collector (loggers use TCP port 10000); `off` runs the server without it.",
        )
    },
    Setting {
        server_flag: Some("collector-max-connections"),
        collector_flag: Some("max-connections"),
        default: Some("20000"),
        kind: Kind::Integer,
        ..setting(
            "collector_max_connections",
            "DEYEHARD_COLLECTOR_MAX_CONNECTIONS",
            "Most concurrent logger connections.",
        )
    },
    Setting {
        server_flag: Some("collector-reply-last-field"),
        collector_flag: Some("reply-last-field"),
        default: Some("0"),
        kind: Kind::Integer,
        ..setting(
            "collector_reply_last_field",
            "DEYEHARD_COLLECTOR_REPLY_LAST_FIELD",
            "The last u32 of every reply to a logger (0, or the local UTC offset in minutes).",
        )
    },
    Setting {
        collector_flag: Some("metrics-listen"),
        default: Some("off"),
        ..setting(
            "collector_metrics_listen",
            "DEYEHARD_COLLECTOR_METRICS_LISTEN",
            "Where `deyehard-collector` serves `/metrics`, `/healthz` and `/readyz`: an address, or `off`.",
        )
    },
    Setting {
        server_flag: Some("ingest-rate-limit"),
        default: Some("600"),
        kind: Kind::Integer,
        ..setting(
            "ingest_rate_limit",
            "DEYEHARD_INGEST_RATE_LIMIT",
            "Pushes per minute per API key (also the burst); 0 turns the limit off.",
        )
    },
    Setting {
        server_flag: Some("ingest-writers"),
        default: Some("1"),
        kind: Kind::Integer,
        ..setting(
            "ingest_writers",
            "DEYEHARD_INGEST_WRITERS",
            "Most concurrent write transactions of one tenant's pushes on PostgreSQL (at least 1; SQLite always uses 1).",
        )
    },
    Setting {
        server_flag: Some("base-url"),
        default: Some("http://localhost:8000"),
        ..setting(
            "base_url",
            "BASE_URL",
            "Public URL of the server, used in mailed links.",
        )
    },
    Setting {
        server_flag: Some("cookie-secure"),
        default: Some("true"),
        kind: Kind::Bool,
        ..setting(
            "cookie_secure",
            "COOKIE_SECURE",
            "Mark cookies `Secure` and send HSTS; `false` only for plain-http access from other machines.",
        )
    },
    Setting {
        server_flag: Some("env"),
        default: Some("development"),
        switch: Some(Switch {
            flag: "production",
            env: None,
            sets: "production",
        }),
        ..setting(
            "environment",
            "DEYEHARD_ENV",
            "`development` or `production`; production refuses missing, weak or example secrets and insecure cookies.",
        )
    },
    Setting {
        server_flag: Some("auth-secret"),
        secrecy: Secrecy::Secret,
        file_variant: true,
        ..setting(
            "auth_secret",
            "AUTH_SECRET",
            "Session signing secret, at least 32 bytes; generated into the data directory in development.",
        )
    },
    Setting {
        server_flag: Some("encryption-key"),
        secrecy: Secrecy::Secret,
        file_variant: true,
        ..setting(
            "encryption_key",
            "ENCRYPTION_KEY",
            "Fernet key sealing mailed links; generated into the data directory in development.",
        )
    },
    Setting {
        server_flag: Some("smtp-host"),
        example: Some("smtp.example.com"),
        ..setting(
            "smtp_host",
            "SMTP_HOST",
            "SMTP server; unset writes mail to `<data_dir>/outbox/` instead.",
        )
    },
    Setting {
        server_flag: Some("smtp-port"),
        example: Some("587"),
        kind: Kind::Integer,
        ..setting(
            "smtp_port",
            "SMTP_PORT",
            "SMTP port (default: 587 with STARTTLS, 465 with TLS).",
        )
    },
    Setting {
        server_flag: Some("smtp-username"),
        example: Some("deyehard"),
        ..setting("smtp_username", "SMTP_USERNAME", "SMTP user name.")
    },
    Setting {
        server_flag: Some("smtp-password"),
        secrecy: Secrecy::Secret,
        file_variant: true,
        ..setting("smtp_password", "SMTP_PASSWORD", "SMTP password.")
    },
    Setting {
        server_flag: Some("smtp-from"),
        default: Some("deyehard <noreply@localhost>"),
        ..setting("smtp_from", "SMTP_FROM", "Sender address of mail.")
    },
    Setting {
        server_flag: Some("smtp-tls"),
        default: Some("starttls"),
        ..setting("smtp_tls", "SMTP_TLS", "`starttls`, `tls` or `none`.")
    },
    Setting {
        server_flag: Some("trusted-proxies"),
        default: Some(""),
        example: Some("127.0.0.1,10.0.0.0/8"),
        kind: Kind::List,
        ..setting(
            "trusted_proxies",
            "DEYEHARD_TRUSTED_PROXIES",
            "Reverse proxies (addresses or networks) whose `X-Forwarded-For` is believed.",
        )
    },
    Setting {
        server_flag: Some("default-time-zone"),
        default: Some("Europe/Berlin"),
        ..setting(
            "default_time_zone",
            "DEYEHARD_DEFAULT_TIME_ZONE",
            "IANA time zone of new accounts that do not send one.",
        )
    },
];

/// Which binary reads the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// `deyehard-server`.
    Server,
    /// `deyehard-collector`.
    Collector,
}

impl Binary {
    /// The program name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Server => "deyehard-server",
            Self::Collector => "deyehard-collector",
        }
    }
}

impl Setting {
    /// This binary's flag for the setting, if the binary uses it.
    pub const fn flag(&self, binary: Binary) -> Option<&'static str> {
        match binary {
            Binary::Server => self.server_flag,
            Binary::Collector => self.collector_flag,
        }
    }

    /// Whether `binary` reads this setting.
    pub const fn used_by(&self, binary: Binary) -> bool {
        self.flag(binary).is_some()
    }

    /// The environment variable naming a file that holds the value (`AUTH_SECRET_FILE`).
    pub fn env_file(&self) -> Option<String> {
        self.file_variant.then(|| format!("{}_FILE", self.env))
    }

    /// The file key naming a file that holds the value (`auth_secret_file`).
    pub fn key_file(&self) -> Option<String> {
        self.file_variant.then(|| format!("{}_file", self.key))
    }
}

/// The setting with file key `key`.
pub fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}
