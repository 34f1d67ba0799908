//! End-to-end tests through real sockets: the collector (and later the web server) started
//! in-process on port 0 with the same `run` functions the binaries use, on both store backends.

// Test helpers outside `#[test]` functions panic on purpose too (clippy.toml's
// allow-*-in-tests only covers the test functions themselves).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod collector;
mod ingest;
mod support;
