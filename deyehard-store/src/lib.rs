//! # deyehard-store
//!
//! Multi-tenant storage for deyehard: users, API keys, inverters, readings (AC and DC), daily
//! energy, downsampled chart series, raw Solarman frames and unclaimed loggers — behind
//! capability traits ([`UserStore`], [`ApiKeyStore`], [`InverterStore`], [`ReadingWriter`],
//! [`ReadingReader`], [`RawFrameStore`], [`UnclaimedLoggerStore`], [`LoggerFrameWriter`],
//! [`AdminStore`], [`AdminFleet`], [`Maintenance`]) with two backends selected by features:
//!
//! - `sqlite` (default): `SqliteStore`, one embedded file for self-hosters;
//! - `postgres`: `PgStore`, PostgreSQL with Row-Level Security (and TimescaleDB hypertables
//!   when the server offers the extension).
//!
//! [`Store`] wraps whichever is compiled in; [`Store::connect`] picks the backend from the URL
//! and runs the migrations (`migrations/postgres`, `migrations/sqlite`, same version numbers).
//!
//! ## Tenant isolation
//! Every tenant-owned method takes a [`TenantScope`](deyehard_core::TenantScope), which only
//! authentication code can mint. On PostgreSQL every transaction runs as the role
//! `deyehard_app` (no superuser, no `BYPASSRLS`) with `app.current_user_id` set, and RLS
//! (enabled and forced on every tenant-owned table) shows it that tenant's rows only. The
//! methods that work across tenants are named for it: the `…_unscoped` credential resolutions,
//! the admin methods (which re-check `is_superuser` in the same transaction), retention, and the
//! device-level writes for loggers (the collector's batches switch to each tenant's scope for
//! that tenant's part). SQLite has no RLS; there, the `WHERE user_id = …`
//! that every statement carries is the isolation.
//!
//! ## Energy
//! Daily energy is maintained as readings are written, with the step function of
//! `deyehard_core::energy`; a late reading recomputes the affected days from raw rows.
//!
//! It leaves out HTTP, configuration and the decoding of device payloads: callers hand it core
//! [`Reading`](deyehard_core::Reading)s.

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("deyehard-store needs at least one backend: enable `sqlite` or `postgres`");

mod common;
pub mod dashboard;
mod error;
mod model;
mod rows;
mod series;
mod sql;
mod store;
mod traits;
mod ts;

#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use dashboard::{
    DcChannelSeries, DcChannelStatus, DcMetric, DcMetricSeries, InverterStatus, LiveState,
    MetricPoint, SummaryEnergy, SummaryPower,
};
pub use error::{BoxError, StoreError, constraint};
pub use model::{
    AdminActor, AdminCounts, AdminInverter, AdminUnknownSerial, ApiKey, BackendInfo, BackendKind,
    DEFAULT_LOCALE, DEFAULT_RETENTION_DAYS, DEFAULT_TIME_ZONE, DailyEnergy, DcSeries, EnergyBucket,
    EnergySummary, Inverter, InverterFields, LatestReading, LoggerClaim, LoggerFrame,
    LoggerFrameKind, LoggerFrameOutcome, NewUser, PowerSeries, ProfileUpdate, RawFrame,
    RawFrameInput, RetentionReport, SeriesPoint, StoreOptions, UnclaimedLogger, UnknownSerial,
    User, UserFlags, UserOverview, WriteOutcome,
};
pub use model::{ConflictClaim, ConflictSerial, SerialConflict};
#[cfg(feature = "postgres")]
pub use pg::PgStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use store::{PoolStats, Store};
pub use traits::DashboardReader;
pub use traits::{
    AdminFleet, AdminStore, ApiKeyStore, ExportReader, InverterStore, LoggerFrameWriter,
    Maintenance, RawFrameStore, ReadingReader, ReadingWriter, StoreResult, UnclaimedLoggerStore,
    UserStore,
};
