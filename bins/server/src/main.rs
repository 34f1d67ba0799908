//! `deyehard-server`: see the crate library for everything it does; this file only hands over.

use std::process::ExitCode;

fn main() -> ExitCode {
    deyehard_server::main_entry()
}
