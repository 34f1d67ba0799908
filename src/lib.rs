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
//! | `opendtu-poem` | the OpenDTU push endpoint for your own poem application, over your authentication and storage (`opendtu::endpoint`) | `opendtu` (`deyehard-opendtu`, feature `poem`) |
//! | `store-sqlite` *(default)* | the multi-tenant store with the embedded SQLite backend | `store` (`deyehard-store`) |
//! | `store-postgres` | the store's PostgreSQL backend (Row-Level Security, optional TimescaleDB) | `store` (`deyehard-store`) |
//!
//! The binaries `deyehard-server` and `deyehard-collector` compose these crates; the examples in
//! `examples/` show each crate used on its own, and check their own results:
//!
//! | example | shows | run with |
//! |---|---|---|
//! | `decode_solarman_frame` | decode a captured Solarman V5 frame into a reading, build the reply | `cargo run --example decode_solarman_frame` |
//! | `solarman_listener` | the Solarman listener in your tokio program with your own sink, fed by a fake logger | `cargo run --example solarman_listener` |
//! | `opendtu_endpoint` | the OpenDTU push endpoint in your poem app with your own storage callback | `cargo run --example opendtu_endpoint --features opendtu-poem` |
//! | `embedded_store` | open the embedded store, write readings for one tenant, read daily energy back | `cargo run --example embedded_store` |

pub use deyehard_core as core;

#[cfg(feature = "opendtu")]
pub use deyehard_opendtu as opendtu;

#[cfg(feature = "solarman")]
pub use deyehard_solarman as solarman;

#[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
pub use deyehard_store as store;
