//! Integration tests of deyehard-solarman: real captured frames, properties, and (with the
//! `listener` feature) the TCP listener and spool against a fake logger built from the codec.

// Helpers outside #[test] functions unwrap too: this whole crate is test code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "listener")]
mod fake;
mod fixtures;
#[cfg(feature = "listener")]
mod listener;
mod properties;
