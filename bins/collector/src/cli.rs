//! Command line of `deyehard-collector`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The Solarman V5 collector: the TCP server Deye/IGEN Wi-Fi loggers push to.
#[derive(Debug, Parser)]
#[command(name = "deyehard-collector", version, about)]
pub struct Cli {
    /// Where the embedded database and the spool live.
    #[arg(long, global = true, env = "DEYEHARD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// PostgreSQL URL (`postgres://…`); unset means the embedded SQLite database in the data directory.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "DEYEHARD_LOG_JSON")]
    pub log_json: bool,

    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Accept logger connections and store what they push.
    Serve(ServeArgs),
    /// Decode hex-encoded frames from FILE (or stdin) and print one JSON object per frame.
    Decode(DecodeArgs),
}

/// Options of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Listen address (loggers use port 10000).
    #[arg(
        long,
        env = "DEYEHARD_COLLECTOR_LISTEN",
        default_value = "0.0.0.0:10000"
    )]
    pub listen: SocketAddr,
    /// Most concurrent logger connections.
    #[arg(
        long,
        env = "DEYEHARD_COLLECTOR_MAX_CONNECTIONS",
        default_value_t = 20_000
    )]
    pub max_connections: usize,
    /// The last u32 of every reply (0, or the local UTC offset in minutes; see the protocol notes).
    #[arg(long, env = "DEYEHARD_COLLECTOR_REPLY_LAST_FIELD", default_value_t = 0)]
    pub reply_last_field: u32,
}

impl Default for ServeArgs {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 10000)),
            max_connections: 20_000,
            reply_last_field: 0,
        }
    }
}

/// Options of `decode`.
#[derive(Debug, Clone, Args)]
pub struct DecodeArgs {
    /// File with hex (white space ignored); `-` or absent reads stdin.
    pub file: Option<PathBuf>,
    /// Also print the reply to each logger-originated frame, stamped with this UNIX time.
    #[arg(long)]
    pub reply_at: Option<u32>,
    /// The last u32 of the replies.
    #[arg(long, default_value_t = 0)]
    pub reply_last_field: u32,
}
