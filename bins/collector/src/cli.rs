//! Command line of `deyehard-collector`.
//!
//! The configuration flags (`--listen`, `--data-dir`, …) are not declared here: they come from
//! the settings table ([`crate::config`]) and are global, so they may stand before or after the
//! subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The Solarman V5 collector: the TCP server Deye/IGEN Wi-Fi loggers push to.
#[derive(Debug, Parser)]
#[command(name = "deyehard-collector", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Accept logger connections and store what they push.
    Serve,
    /// Decode hex-encoded frames from FILE (or stdin) and print one JSON object per frame.
    Decode(DecodeArgs),
    /// Print a commented example configuration file with every key and its default.
    PrintConfig,
    /// Exit 0 when the collector answers (its `/readyz` with `--metrics-listen`, else a TCP
    /// connection to `--listen`): the container health check.
    Healthcheck,
}

/// Options of `decode` (the replies use `--reply-last-field`).
#[derive(Debug, Clone, Args)]
pub struct DecodeArgs {
    /// File with hex (white space ignored); `-` or absent reads stdin.
    pub file: Option<PathBuf>,
    /// Also print the reply to each logger-originated frame, stamped with this UNIX time.
    #[arg(long)]
    pub reply_at: Option<u32>,
}
