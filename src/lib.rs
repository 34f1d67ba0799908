//! # deyehard
//!
//! Monitoring for solar inverters, for one household or for many tenants at once. This facade
//! re-exports the library crates so that an embedder can depend on one crate and pick what it
//! needs with features:
//!
//! | feature | brings | crate |
//! |---|---|---|
//! | *(always)* | ids, serials, readings, energy maths, tenant scope, auth primitives | [`core`] (`deyehard-core`) |
//! | `solarman` *(default)* | Solarman V5 sans-io codec, logger session state machine, Deye decoders, tokio listener and spool | `solarman` (`deyehard-solarman`) |
//! | `opendtu` *(default)* | OpenDTU / Victron push payloads: lenient parsing, validation, conversion to readings | `opendtu` (`deyehard-opendtu`) |
//! | `store-sqlite` *(default)* | the multi-tenant store with the embedded SQLite backend | `store` (`deyehard-store`) |
//! | `store-postgres` | the store's PostgreSQL backend (Row-Level Security, optional TimescaleDB) | `store` (`deyehard-store`) |
//!
//! The binaries `deyehard-server` and `deyehard-collector` compose these crates; the examples in
//! `examples/` show each crate used on its own.

pub use deyehard_core as core;

#[cfg(feature = "opendtu")]
pub use deyehard_opendtu as opendtu;

#[cfg(feature = "solarman")]
pub use deyehard_solarman as solarman;

#[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
pub use deyehard_store as store;
