//! # deyehard-core
//!
//! The domain of deyehard with no I/O: identifiers and serial numbers, readings with their
//! units, the [`TenantScope`] that proves a request was authenticated for one tenant, the
//! energy maths (daily / weekly / monthly / yearly energy in the user's time zone), and the
//! authentication primitives (password policy and hashing, API keys, session tokens,
//! one-time tokens).
//!
//! It leaves out everything that talks to the outside world: sockets, databases, HTTP and
//! configuration belong to the other crates and to the binaries.

pub mod auth;
pub mod energy;
mod ids;
mod reading;
mod tenant;

pub use ids::{
    ApiKeyId, DeviceSerial, InverterId, InverterKind, LoggerSerial, ParseIdError, UserId,
};
pub use reading::{DcReading, DeviceInfo, Reading, Source};
pub use tenant::TenantScope;
