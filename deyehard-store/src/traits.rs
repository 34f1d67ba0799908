//! The capability traits. Every tenant-owned method takes a [`TenantScope`]; the few methods that
//! work across tenants say so in their name (`…_unscoped`) or take an [`AdminActor`].
//!
//! Both backends and the [`crate::Store`] enum implement all of them.

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use deyehard_core::energy::Period;
use deyehard_core::{ApiKeyId, DeviceInfo, DeviceSerial, InverterId, LoggerSerial, Reading};
use deyehard_core::{TenantScope, UserId};

use crate::StoreError;
use crate::dashboard::{
    DcChannelStatus, DcMetric, DcMetricSeries, InverterStatus, SummaryEnergy, SummaryPower,
};
use crate::model::{
    AdminActor, ApiKey, BackendInfo, DailyEnergy, DcSeries, EnergyBucket, EnergySummary, Inverter,
    InverterFields, LatestReading, LoggerClaim, LoggerFrame, LoggerFrameOutcome, NewUser,
    PowerSeries, ProfileUpdate, RawFrame, RawFrameInput, RetentionReport, UnclaimedLogger,
    UnknownSerial, User, UserFlags, UserOverview, WriteOutcome,
};

/// Shorthand for the result of every store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// User accounts (the identity table).
pub trait UserStore {
    /// Signs a user up. [`StoreError::Conflict`] with [`crate::constraint::USER_EMAIL`] when the
    /// address exists in any letter case; [`StoreError::Invalid`] for an unknown time zone.
    fn create_user(&self, new: &NewUser) -> impl Future<Output = StoreResult<User>> + Send;
    /// The scope's own account.
    fn user(&self, scope: &TenantScope) -> impl Future<Output = StoreResult<User>> + Send;
    /// Credential resolution for login: the account with this address (any letter case).
    /// Unscoped by nature: nobody is authenticated yet.
    fn user_by_email_unscoped(
        &self,
        email: &str,
    ) -> impl Future<Output = StoreResult<Option<User>>> + Send;
    /// Credential resolution for session checks: the account a verified session token names.
    fn user_by_id_unscoped(
        &self,
        id: UserId,
    ) -> impl Future<Output = StoreResult<Option<User>>> + Send;
    /// Updates name, time zone and locale.
    fn update_profile(
        &self,
        scope: &TenantScope,
        update: &ProfileUpdate,
    ) -> impl Future<Output = StoreResult<User>> + Send;
    /// Replaces the password hash and bumps the session version (other sessions end). Returns
    /// the new session version.
    fn set_password_hash(
        &self,
        scope: &TenantScope,
        password_hash: &str,
    ) -> impl Future<Output = StoreResult<i64>> + Send;
    /// "Log out everywhere": bumps and returns the session version.
    fn bump_session_version(
        &self,
        scope: &TenantScope,
    ) -> impl Future<Output = StoreResult<i64>> + Send;
    /// Marks the e-mail address verified (or not).
    fn set_verified(
        &self,
        scope: &TenantScope,
        verified: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Activates or deactivates the account (an inactive user cannot log in, and their keys and
    /// loggers resolve to nothing). Used when accounts are imported with their flags.
    fn set_active(
        &self,
        scope: &TenantScope,
        active: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Changes the e-mail address ([`StoreError::Conflict`] when taken).
    fn set_email(
        &self,
        scope: &TenantScope,
        email: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes the account and, by cascade, everything it owns.
    fn delete_user(&self, scope: &TenantScope) -> impl Future<Output = StoreResult<()>> + Send;
    /// Replaces a password hash with a stronger hash of the same password (after a login with
    /// an outdated hash), without ending any session. Changes nothing, and returns `false`,
    /// when the stored hash is no longer `old_hash` (the password changed meanwhile).
    fn upgrade_password_hash(
        &self,
        scope: &TenantScope,
        old_hash: &str,
        new_hash: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Grants or revokes administrator rights. For the operator's command line, who acts for
    /// the account with the database in hand; the web app uses
    /// [`AdminStore::admin_set_user_flags`] instead.
    fn set_superuser(
        &self,
        scope: &TenantScope,
        superuser: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Every account matching `search` (as [`AdminStore::admin_users`]), by id, for the
    /// operator's command line. Cross-tenant and unchecked: the web app never calls it.
    fn users_unscoped(
        &self,
        search: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> impl Future<Output = StoreResult<Vec<UserOverview>>> + Send;
}

/// API keys (one per DTU, say). Only hashes are stored.
pub trait ApiKeyStore {
    /// Stores a new key's public prefix and hash.
    fn create_api_key(
        &self,
        scope: &TenantScope,
        name: &str,
        prefix: &str,
        key_hash: &str,
    ) -> impl Future<Output = StoreResult<ApiKey>> + Send;
    /// The scope's keys, newest first (never the hashes).
    fn api_keys(
        &self,
        scope: &TenantScope,
    ) -> impl Future<Output = StoreResult<Vec<ApiKey>>> + Send;
    /// Revokes a key (idempotent); [`StoreError::NotFound`] for another tenant's key.
    fn revoke_api_key(
        &self,
        scope: &TenantScope,
        id: ApiKeyId,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes a key; [`StoreError::NotFound`] for another tenant's key.
    fn delete_api_key(
        &self,
        scope: &TenantScope,
        id: ApiKeyId,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Credential resolution (cross-tenant by nature): the tenant owning the key with this hash,
    /// if the key is not revoked and its owner is active. Records the use in `last_used_at`.
    fn resolve_api_key_unscoped(
        &self,
        key_hash: &str,
    ) -> impl Future<Output = StoreResult<Option<(TenantScope, ApiKeyId)>>> + Send;
}

/// Inverters and what devices tell about them.
pub trait InverterStore {
    /// Registers an inverter. [`StoreError::Conflict`] with
    /// [`crate::constraint::INVERTER_SERIAL`] or [`crate::constraint::INVERTER_LOGGER_SERIAL`].
    fn create_inverter(
        &self,
        scope: &TenantScope,
        fields: &InverterFields,
    ) -> impl Future<Output = StoreResult<Inverter>> + Send;
    /// One inverter; [`StoreError::NotFound`] for another tenant's id.
    fn inverter(
        &self,
        scope: &TenantScope,
        id: InverterId,
    ) -> impl Future<Output = StoreResult<Inverter>> + Send;
    /// The scope's inverters by id.
    fn inverters(
        &self,
        scope: &TenantScope,
    ) -> impl Future<Output = StoreResult<Vec<Inverter>>> + Send;
    /// The scope's inverter with this device serial (OpenDTU ingestion).
    fn inverter_by_serial(
        &self,
        scope: &TenantScope,
        serial: &DeviceSerial,
    ) -> impl Future<Output = StoreResult<Option<Inverter>>> + Send;
    /// Replaces the editable fields.
    fn update_inverter(
        &self,
        scope: &TenantScope,
        id: InverterId,
        fields: &InverterFields,
    ) -> impl Future<Output = StoreResult<Inverter>> + Send;
    /// Deletes the inverter and all its data.
    fn delete_inverter(
        &self,
        scope: &TenantScope,
        id: InverterId,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Fills in what the device reported about itself (absent values keep the stored ones).
    fn update_device_info(
        &self,
        scope: &TenantScope,
        id: InverterId,
        info: &DeviceInfo,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Moves `last_seen_at` forward to `seen_at` (never backwards).
    fn touch_inverter(
        &self,
        scope: &TenantScope,
        id: InverterId,
        seen_at: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Remembers an inverter serial pushed with the scope's key but not registered.
    fn record_unknown_serial(
        &self,
        scope: &TenantScope,
        inverter_serial: &str,
        dtu_serial: Option<&str>,
        seen_at: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Serials pushed but still not registered, most recent first.
    fn unknown_serials(
        &self,
        scope: &TenantScope,
    ) -> impl Future<Output = StoreResult<Vec<UnknownSerial>>> + Send;
}

/// Writing readings.
pub trait ReadingWriter {
    /// Stores a batch in one transaction and returns one outcome per item, in order.
    ///
    /// Duplicates (same inverter and time) change nothing; an inverter outside the scope stores
    /// nothing for its items. Daily energy, power rollups and `last_seen_at` are maintained in
    /// the same transaction. Values that are not finite are stored as absent.
    fn write_readings(
        &self,
        scope: &TenantScope,
        batch: &[(InverterId, Reading)],
        received_at: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Vec<WriteOutcome>>> + Send;
}

/// Reading series and energy.
pub trait ReadingReader {
    /// The newest reading of each of the scope's inverters that has data.
    fn latest_readings(
        &self,
        scope: &TenantScope,
    ) -> impl Future<Output = StoreResult<Vec<LatestReading>>> + Send;
    /// Up to `limit` readings with `from <= time < to`, in time order, with DC channels. Page on
    /// by calling again with `from` = the last time + 1 ms (times have millisecond precision).
    fn readings(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<Reading>>> + Send;
    /// AC power over `[from, to)` downsampled on the server to at most `max_points` buckets
    /// (mean/min/max of reachable readings); long ranges read the write-time rollups.
    fn power_series(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: u32,
    ) -> impl Future<Output = StoreResult<PowerSeries>> + Send;
    /// DC power per channel over `[from, to)`, at most `max_points` buckets per channel.
    fn dc_series(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: u32,
    ) -> impl Future<Output = StoreResult<DcSeries>> + Send;
    /// Daily energy for `from_day ..= to_day` (days without data are absent).
    fn daily_energy(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        from_day: NaiveDate,
        to_day: NaiveDate,
    ) -> impl Future<Output = StoreResult<Vec<DailyEnergy>>> + Send;
    /// The bars of an energy view in the owner's time zone: a day's hours (23/24/25), a week's
    /// or month's days, a year's months.
    fn energy_buckets(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        period: Period,
        date: NaiveDate,
    ) -> impl Future<Output = StoreResult<Vec<EnergyBucket>>> + Send;
    /// Energy of every inverter of the scope over the period containing `date`.
    fn energy_summary(
        &self,
        scope: &TenantScope,
        period: Period,
        date: NaiveDate,
    ) -> impl Future<Output = StoreResult<EnergySummary>> + Send;
}

/// Raw (undecodable) frames of claimed loggers.
pub trait RawFrameStore {
    /// Keeps a frame of the scope's inverter for later replay (bounded by retention).
    fn store_raw_frame(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        frame: &RawFrameInput<'_>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Up to `limit` stored frames of the inverter received in `[from, to)`, oldest first.
    fn raw_frames(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<RawFrame>>> + Send;
}

/// Solarman loggers: claims and frames of loggers nobody claimed yet.
pub trait UnclaimedLoggerStore {
    /// Credential resolution (cross-tenant by nature): the active claim of a logger serial.
    fn resolve_logger_unscoped(
        &self,
        serial: LoggerSerial,
    ) -> impl Future<Output = StoreResult<Option<LoggerClaim>>> + Send;
    /// Device-level write (cross-tenant): records a frame of an unclaimed logger
    /// (`unclaimed_loggers` upsert + a raw frame without owner).
    fn record_unclaimed_frame(
        &self,
        frame: &RawFrameInput<'_>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Right after a claim: assigns the logger's ownerless frames to the scope's inverter that
    /// claims `serial`, forgets the unclaimed logger, and returns the frames oldest first so the
    /// caller can decode and backfill. [`StoreError::NotFound`] when the scope has no inverter
    /// with this logger serial.
    fn take_unclaimed_frames(
        &self,
        scope: &TenantScope,
        serial: LoggerSerial,
    ) -> impl Future<Output = StoreResult<Vec<RawFrame>>> + Send;
}

/// The collector's group commit: frames of many Solarman loggers, of any tenants, in one
/// transaction.
pub trait LoggerFrameWriter {
    /// Stores `frames` in one transaction and returns one outcome per frame, in order.
    ///
    /// Device-level and cross-tenant by nature, like [`UnclaimedLoggerStore`]: each frame's
    /// serial is resolved in the transaction, as [`UnclaimedLoggerStore::resolve_logger_unscoped`]
    /// does, and each tenant's part is written with that tenant's scope.
    ///
    /// - Claimed logger: a reading is written as by [`ReadingWriter::write_readings`]
    ///   (received at the frame's `received_at`), then its device info as by
    ///   [`InverterStore::update_device_info`]; `Seen` moves the inverter's `last_seen_at`
    ///   forward; `Raw` keeps the frame for the inverter as [`RawFrameStore::store_raw_frame`].
    /// - Unclaimed logger: whatever the kind, as [`UnclaimedLoggerStore::record_unclaimed_frame`].
    ///
    /// Any error fails the whole batch and stores nothing: the caller may retry the frames one
    /// by one to find the bad one.
    fn write_logger_frames(
        &self,
        frames: &[LoggerFrame<'_>],
    ) -> impl Future<Output = StoreResult<Vec<LoggerFrameOutcome>>> + Send;
}

/// Admin views across tenants. Every method re-checks in the database, in the same transaction,
/// that the actor is an active superuser ([`StoreError::Forbidden`] otherwise).
pub trait AdminStore {
    /// Users matching `search` (substring of e-mail or name, any case), by id.
    fn admin_users(
        &self,
        actor: AdminActor,
        search: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> impl Future<Output = StoreResult<Vec<UserOverview>>> + Send;
    /// Sets a user's flags.
    fn admin_set_user_flags(
        &self,
        actor: AdminActor,
        user: UserId,
        flags: UserFlags,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes a user and everything they own.
    fn admin_delete_user(
        &self,
        actor: AdminActor,
        user: UserId,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// All inverters of all tenants, by id.
    fn admin_inverters(
        &self,
        actor: AdminActor,
    ) -> impl Future<Output = StoreResult<Vec<Inverter>>> + Send;
    /// Loggers that sent frames but are not claimed, most recent first.
    fn admin_unclaimed_loggers(
        &self,
        actor: AdminActor,
    ) -> impl Future<Output = StoreResult<Vec<UnclaimedLogger>>> + Send;
}

/// Operations.
pub trait Maintenance {
    /// Backend, TimescaleDB use and retention, for the startup report.
    fn backend_info(&self) -> impl Future<Output = StoreResult<BackendInfo>> + Send;
    /// A cheap round trip for readiness checks: the database answers and the newest migration
    /// of this build is applied ([`crate::StoreError::Unavailable`] otherwise).
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes measurements, DC measurements and raw frames older than `now - days` (for the
    /// hypertables TimescaleDB's policy does this instead), plus unclaimed loggers not seen
    /// since. Cross-tenant by nature. Daily energy and rollups are kept.
    fn apply_retention(
        &self,
        now: DateTime<Utc>,
        days: u32,
    ) -> impl Future<Output = StoreResult<RetentionReport>> + Send;
}

/// What the dashboards read: live status, power and energy over all inverters, DC channels.
/// See [`crate::dashboard`] for the producing / idle / offline rule.
pub trait DashboardReader {
    /// The status of each of the scope's inverters at `now`, by id.
    fn inverter_statuses(
        &self,
        scope: &TenantScope,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Vec<InverterStatus>>> + Send;
    /// One inverter's status at `now`; [`StoreError::NotFound`] for another tenant's id.
    fn inverter_status(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<InverterStatus>> + Send;
    /// Mean power of every inverter of the scope over `[from, to)` in shared buckets of at
    /// least five minutes (at most `max_points`, from the rollups), with the total per bucket
    /// and its peak.
    fn summary_power(
        &self,
        scope: &TenantScope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: u32,
    ) -> impl Future<Output = StoreResult<SummaryPower>> + Send;
    /// The energy bars of the period containing `date` (owner's time zone) for every inverter
    /// of the scope, and their sums.
    fn summary_energy(
        &self,
        scope: &TenantScope,
        period: Period,
        date: NaiveDate,
    ) -> impl Future<Output = StoreResult<SummaryEnergy>> + Send;
    /// The inverter's DC channels as of its newest reachable reading (empty without DC data).
    fn dc_channels(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Vec<DcChannelStatus>>> + Send;
    /// One DC metric of every channel over `[from, to)`, at most `max_points` buckets per
    /// channel, from reachable readings.
    fn dc_metric_series(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        metric: DcMetric,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: u32,
    ) -> impl Future<Output = StoreResult<DcMetricSeries>> + Send;
}

/// What an export needs to know before its first line.
pub trait ExportReader {
    /// The DC channel numbers that have readings of `inverter` in `[from, to)`, ascending (the
    /// column groups of a CSV export). [`StoreError::NotFound`] for another tenant's inverter.
    fn export_dc_channels(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Vec<u8>>> + Send;
}

/// Admin views and actions over the whole fleet: inverters of every tenant, their serials and
/// conflicts, moving an inverter to another owner, and counts for the status page. Like
/// [`AdminStore`], every method re-checks in the database, in the same transaction, that the
/// actor is an active superuser ([`StoreError::Forbidden`] otherwise).
pub trait AdminFleet {
    /// Inverters of all tenants whose device serial or logger serial contains `search` (any
    /// case; all inverters without a search), by id, with their owners' addresses.
    fn admin_search_inverters(
        &self,
        actor: AdminActor,
        search: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> impl Future<Output = StoreResult<Vec<crate::AdminInverter>>> + Send;
    /// Moves an inverter, with all its readings, energy and raw frames, to `new_owner`.
    /// [`StoreError::NotFound`] for an unknown inverter, [`StoreError::Invalid`] for an unknown
    /// owner, [`StoreError::Conflict`] with [`crate::constraint::INVERTER_SERIAL`] when the new
    /// owner already has an inverter with this serial. Days already computed keep the time zone
    /// they were computed in.
    fn admin_reassign_inverter(
        &self,
        actor: AdminActor,
        inverter: InverterId,
        new_owner: UserId,
    ) -> impl Future<Output = StoreResult<Inverter>> + Send;
    /// OpenDTU serials pushed with some tenant's key that this tenant has not registered, most
    /// recent first.
    fn admin_unknown_serials(
        &self,
        actor: AdminActor,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<crate::AdminUnknownSerial>>> + Send;
    /// Serials several tenants lay claim to: a device serial registered by more than one
    /// tenant or pushed by another tenant's key, and logger serials whose claim was refused to
    /// another tenant (recorded by [`crate::Store`]'s `create_inverter` and `update_inverter`).
    fn admin_serial_conflicts(
        &self,
        actor: AdminActor,
    ) -> impl Future<Output = StoreResult<Vec<crate::SerialConflict>>> + Send;
    /// Numbers of users, inverters (and those seen since `seen_since`), keys and unclaimed
    /// loggers.
    fn admin_counts(
        &self,
        actor: AdminActor,
        seen_since: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<crate::AdminCounts>> + Send;
}
