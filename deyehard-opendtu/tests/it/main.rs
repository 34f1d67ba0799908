//! Integration tests of deyehard-opendtu: the sample and malformed bodies from the protocol
//! notes, leniency, validation, conversion, the Victron push and the response bodies. One test
//! binary with modules.

// clippy.toml allows unwrap inside `#[test]` functions; the shared helpers below are test code too.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the test failure"
)]

mod fixtures;
mod lenient;
mod malformed;
mod response;
mod validation;
mod victron;

use chrono::{DateTime, TimeZone, Utc};

/// The readme sample (one HM inverter, one DC input).
pub const README: &[u8] = include_bytes!("../fixtures/readme-example.json");
/// Two inverters, one of them unknown to the server.
pub const TWO: &[u8] = include_bytes!("../fixtures/two-inverters-one-unknown.json");
/// A three-phase HMT with six DC inputs.
pub const HMT: &[u8] = include_bytes!("../fixtures/hmt-six-inputs.json");

/// A UTC instant.
pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// `body` as a JSON value, for editing in a test.
pub fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

/// A JSON value back to a body.
pub fn body(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}
