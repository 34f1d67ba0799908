//! `deyehard-collector`: see the crate library for everything it does; this file only hands over.

use std::process::ExitCode;

fn main() -> ExitCode {
    deyehard_collector::main_entry()
}
