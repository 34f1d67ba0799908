//! The values the store takes and returns (besides the core readings).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use deyehard_core::{
    ApiKeyId, DeviceInfo, DeviceSerial, InverterId, InverterKind, LoggerSerial, Reading,
    TenantScope, UserId,
};

/// The time zone of users created without one.
pub const DEFAULT_TIME_ZONE: &str = "Europe/Berlin";
/// The locale of users created without one.
pub const DEFAULT_LOCALE: &str = "en";
/// How long measurements and raw frames are kept unless configured otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 730;

/// Tunables of a store connection.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreOptions {
    /// Days of measurements and raw frames to keep ([`crate::Maintenance::apply_retention`],
    /// or the TimescaleDB retention policy).
    pub retention_days: u32,
    /// Size of the connection pool (PostgreSQL) or of the reader pool (SQLite, which always has
    /// exactly one writer connection).
    pub max_connections: u32,
    /// How long a call waits for a free connection before failing with
    /// [`crate::StoreError::Unavailable`].
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            retention_days: DEFAULT_RETENTION_DAYS,
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// What the store runs on, for the startup report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInfo {
    /// The backend.
    pub kind: BackendKind,
    /// Whether measurements live in TimescaleDB hypertables (PostgreSQL only).
    pub timescaledb: bool,
    /// The configured retention window in days.
    pub retention_days: u32,
}

/// Rows removed by [`crate::Maintenance::apply_retention`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// AC rows deleted (0 when TimescaleDB drops chunks instead).
    pub measurements: u64,
    /// DC rows deleted (0 when TimescaleDB drops chunks instead).
    pub dc_measurements: u64,
    /// Raw frames deleted.
    pub raw_frames: u64,
}

/// A user account.
#[derive(Clone, PartialEq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// E-mail address as entered (unique case-insensitively).
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Name shown in the UI.
    pub display_name: String,
    /// IANA time zone for days, weeks, months and years.
    pub time_zone: String,
    /// UI locale (`en`, `de`).
    pub locale: String,
    /// Inactive users cannot log in and their keys and loggers resolve to nothing.
    pub is_active: bool,
    /// The e-mail address was verified.
    pub is_verified: bool,
    /// May use the admin views.
    pub is_superuser: bool,
    /// Bumped on password change and "log out everywhere"; sessions carry it.
    pub session_version: i64,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"<redacted>")
            .field("time_zone", &self.time_zone)
            .field("is_active", &self.is_active)
            .field("is_verified", &self.is_verified)
            .field("is_superuser", &self.is_superuser)
            .field("session_version", &self.session_version)
            .finish_non_exhaustive()
    }
}

/// A new account.
#[derive(Clone, PartialEq)]
pub struct NewUser {
    /// E-mail address.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Name shown in the UI.
    pub display_name: String,
    /// IANA time zone; [`DEFAULT_TIME_ZONE`] when `None`.
    pub time_zone: Option<String>,
    /// UI locale; [`DEFAULT_LOCALE`] when `None`.
    pub locale: Option<String>,
    /// Mark the address as verified right away (admin-created accounts, imports).
    pub is_verified: bool,
    /// Create a superuser (first-run setup, imports).
    pub is_superuser: bool,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("password_hash", &"<redacted>")
            .field("time_zone", &self.time_zone)
            .finish_non_exhaustive()
    }
}

/// The fields a user edits on the account page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileUpdate {
    /// Name shown in the UI.
    pub display_name: String,
    /// IANA time zone (checked). Energy of days already computed keeps the zone it was
    /// computed in; new days use the new zone.
    pub time_zone: String,
    /// UI locale.
    pub locale: String,
}

/// Account flags an admin sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserFlags {
    /// May log in; keys and loggers resolve.
    pub is_active: bool,
    /// E-mail verified.
    pub is_verified: bool,
    /// Admin.
    pub is_superuser: bool,
}

/// A user as the admin list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserOverview {
    /// The account.
    pub user: User,
    /// How many inverters it owns.
    pub inverter_count: i64,
}

/// Proof, checked again in the database on every call, that an authenticated user acts as an
/// admin. Admin methods verify `is_superuser` (and `is_active`) of this user in the same
/// transaction before reading across tenants, and fail with [`crate::StoreError::Forbidden`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminActor(TenantScope);

impl AdminActor {
    /// The acting user, from their authenticated scope.
    pub const fn new(scope: &TenantScope) -> Self {
        Self(*scope)
    }

    /// The acting user's id.
    pub const fn user_id(&self) -> UserId {
        self.0.user_id()
    }

    /// The acting user's own scope.
    pub(crate) const fn scope(&self) -> &TenantScope {
        &self.0
    }
}

/// An API key as listed to its owner (the hash is never returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Id.
    pub id: ApiKeyId,
    /// Name given by the user (e.g. the DTU it is for).
    pub name: String,
    /// Short public prefix for recognising the key.
    pub prefix: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last successful resolution.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; revoked keys resolve to nothing.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The editable fields of an inverter (create and update).
#[derive(Debug, Clone, PartialEq)]
pub struct InverterFields {
    /// Name shown in the UI.
    pub name: String,
    /// How it reaches us.
    pub kind: InverterKind,
    /// Device serial (unique per tenant).
    pub serial: Option<DeviceSerial>,
    /// Solarman logger serial (unique among all claims).
    pub logger_serial: Option<LoggerSerial>,
    /// Rated AC power, W (bounds the plausibility check of counters).
    pub rated_power_w: Option<f64>,
    /// Number of MPPT inputs.
    pub mppt_count: Option<u8>,
}

/// A stored inverter.
#[derive(Debug, Clone, PartialEq)]
pub struct Inverter {
    /// Id.
    pub id: InverterId,
    /// The owning tenant.
    pub owner: UserId,
    /// Name shown in the UI.
    pub name: String,
    /// How it reaches us.
    pub kind: InverterKind,
    /// Device serial.
    pub serial: Option<DeviceSerial>,
    /// Solarman logger serial.
    pub logger_serial: Option<LoggerSerial>,
    /// Rated AC power, W.
    pub rated_power_w: Option<f64>,
    /// Number of MPPT inputs.
    pub mppt_count: Option<u8>,
    /// Firmware as the device reports it.
    pub firmware_version: Option<String>,
    /// When data last arrived.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// An OpenDTU inverter serial pushed with a tenant's key but not registered by that tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSerial {
    /// The inverter serial.
    pub inverter_serial: String,
    /// The DTU that pushed it.
    pub dtu_serial: Option<String>,
    /// First push.
    pub first_seen_at: DateTime<Utc>,
    /// Latest push.
    pub last_seen_at: DateTime<Utc>,
    /// Number of pushes.
    pub times_seen: i64,
}

/// What a claimed logger resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggerClaim {
    /// The owning tenant (minted from the stored claim).
    pub scope: TenantScope,
    /// The inverter the logger belongs to.
    pub inverter_id: InverterId,
    /// The inverter's device serial, if known.
    pub serial: Option<DeviceSerial>,
}

/// A logger that sent frames without being claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnclaimedLogger {
    /// Its serial.
    pub logger_serial: LoggerSerial,
    /// First frame.
    pub first_seen_at: DateTime<Utc>,
    /// Latest frame.
    pub last_seen_at: DateTime<Utc>,
    /// Remote address of the latest connection.
    pub remote_addr: Option<String>,
    /// Frames received.
    pub frames_seen: i64,
}

/// A Solarman frame to keep raw.
#[derive(Clone, PartialEq, Eq)]
pub struct RawFrameInput<'a> {
    /// Logger serial from the frame header.
    pub logger_serial: LoggerSerial,
    /// When the collector received it.
    pub received_at: DateTime<Utc>,
    /// V5 control code.
    pub control: u16,
    /// Remote address of the connection.
    pub remote_addr: Option<&'a str>,
    /// The whole frame.
    pub bytes: &'a [u8],
}

impl fmt::Debug for RawFrameInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawFrameInput")
            .field("logger_serial", &self.logger_serial)
            .field("received_at", &self.received_at)
            .field("control", &format_args!("{:#06x}", self.control))
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// What a frame of a Solarman logger holds, as the collector decoded it (see
/// [`crate::LoggerFrameWriter`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoggerFrameKind<'a> {
    /// A decoded reading with a device time.
    Reading {
        /// The reading.
        reading: &'a Reading,
        /// What the device says about itself, when the caller wants it written (`None`: the
        /// caller knows it unchanged).
        device_info: Option<&'a DeviceInfo>,
    },
    /// A handshake or a heartbeat: the logger is alive.
    Seen,
    /// Anything else (info and report frames, data without a device time or of an unknown
    /// layout, unknown codes): kept raw for a later decoder.
    Raw,
}

/// One frame of a Solarman logger, for [`crate::LoggerFrameWriter::write_logger_frames`].
#[derive(Debug, Clone, PartialEq)]
pub struct LoggerFrame<'a> {
    /// The frame as received; its serial names the logger.
    pub frame: RawFrameInput<'a>,
    /// What it holds.
    pub kind: LoggerFrameKind<'a>,
}

/// What became of one frame of [`crate::LoggerFrameWriter::write_logger_frames`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoggerFrameOutcome {
    /// The logger is claimed by `inverter`; the frame was written for it.
    Claimed {
        /// The claiming inverter.
        inverter: InverterId,
        /// For a reading: stored, or a duplicate (or `NotFound` when the inverter went away
        /// during the write); `None` for the other kinds.
        reading: Option<WriteOutcome>,
    },
    /// Nobody claims the logger: it is recorded among the unclaimed loggers, with the frame
    /// kept raw for the backfill after a claim.
    Unclaimed,
}

/// A stored raw frame.
#[derive(Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// Id (increases in arrival order).
    pub id: i64,
    /// The inverter it was assigned to (`None` while its logger is unclaimed).
    pub inverter_id: Option<InverterId>,
    /// Logger serial from the frame header.
    pub logger_serial: LoggerSerial,
    /// When the collector received it.
    pub received_at: DateTime<Utc>,
    /// V5 control code.
    pub control: u16,
    /// Remote address of the connection.
    pub remote_addr: Option<String>,
    /// The whole frame.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for RawFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawFrame")
            .field("id", &self.id)
            .field("logger_serial", &self.logger_serial)
            .field("received_at", &self.received_at)
            .field("control", &format_args!("{:#06x}", self.control))
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Outcome of one item of [`crate::ReadingWriter::write_readings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Stored.
    Stored,
    /// A reading with this (inverter, time) was already stored: nothing changed.
    Duplicate,
    /// The inverter does not exist for this tenant: nothing stored.
    NotFound,
}

/// The newest reading of an inverter.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestReading {
    /// The inverter.
    pub inverter_id: InverterId,
    /// Its newest AC reading (without DC channels).
    pub reading: deyehard_core::Reading,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

/// Energy of one local day.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyEnergy {
    /// The local day (owner's time zone).
    pub day: NaiveDate,
    /// Energy produced, Wh.
    pub energy_wh: f64,
    /// Highest reachable AC power of the day, W.
    pub peak_power_w: Option<f64>,
    /// Readings stored for the day.
    pub samples: i64,
}

/// One bar of an energy view.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyBucket {
    /// Start (inclusive, UTC).
    pub start: DateTime<Utc>,
    /// End (exclusive, UTC).
    pub end: DateTime<Utc>,
    /// Local label: wall-clock start of an hour (02:00 twice on a 25-hour day), the first day
    /// at 00:00 for a day or a month.
    pub label: chrono::NaiveDateTime,
    /// Energy, Wh.
    pub energy_wh: f64,
}

/// Energy of all of a tenant's inverters over one period.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergySummary {
    /// Per inverter (every inverter of the tenant, 0 when it produced nothing).
    pub per_inverter: Vec<(InverterId, f64)>,
    /// Sum over all inverters, Wh.
    pub total_wh: f64,
}

/// One point of a downsampled series: aggregate over `[time, time + bucket)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesPoint {
    /// Bucket start (UTC).
    pub time: DateTime<Utc>,
    /// Mean power, W.
    pub avg_w: f64,
    /// Lowest power, W.
    pub min_w: f64,
    /// Highest power, W.
    pub max_w: f64,
}

/// A downsampled AC power series. Buckets without data are absent, so a chart draws gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerSeries {
    /// Width of each bucket.
    pub bucket: chrono::TimeDelta,
    /// Points in time order.
    pub points: Vec<SeriesPoint>,
}

/// A downsampled DC power series, one line per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct DcSeries {
    /// Width of each bucket.
    pub bucket: chrono::TimeDelta,
    /// `(channel, points in time order)`, channels ascending.
    pub channels: Vec<(u8, Vec<SeriesPoint>)>,
}

/// An inverter as the admin's cross-tenant list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminInverter {
    /// The inverter.
    pub inverter: Inverter,
    /// Its owner's e-mail address.
    pub owner_email: String,
}

/// An OpenDTU serial a tenant's key pushed but the tenant has not registered (admin view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUnknownSerial {
    /// The tenant whose key pushed it.
    pub owner: UserId,
    /// That tenant's e-mail address.
    pub owner_email: String,
    /// The serial and when it was pushed.
    pub serial: UnknownSerial,
}

/// The serial a [`SerialConflict`] is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConflictSerial {
    /// A device (inverter) serial: registered by several tenants, or registered by one and
    /// pushed (unregistered) with another tenant's key.
    Device(String),
    /// A Solarman logger serial: claimed by one tenant, refused to another.
    Logger(LoggerSerial),
}

/// One tenant's side of a [`SerialConflict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictClaim {
    /// The tenant.
    pub user: UserId,
    /// The tenant's e-mail address.
    pub email: String,
    /// The tenant's inverter with this serial; `None` for a refused claim or a serial pushed
    /// without being registered.
    pub inverter: Option<InverterId>,
    /// When it was last seen: the inverter's last data, the last refused claim or push.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Refused claims or unregistered pushes (0 for a registered inverter).
    pub attempts: i64,
}

/// A serial more than one tenant lays claim to, for the admin to resolve (by reassigning or
/// deleting an inverter). Conflicts disappear from the view once resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialConflict {
    /// The serial.
    pub serial: ConflictSerial,
    /// Every tenant's claim: registered inverters first, by inverter id, then refused claims
    /// and pushes, most recent first.
    pub claims: Vec<ConflictClaim>,
}

/// Counts for the admin's system status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdminCounts {
    /// All accounts.
    pub users: i64,
    /// Accounts that may log in.
    pub active_users: i64,
    /// Accounts with a confirmed address.
    pub verified_users: i64,
    /// Administrators.
    pub superusers: i64,
    /// Registered inverters.
    pub inverters: i64,
    /// Inverters with data since the time the caller gave.
    pub inverters_seen: i64,
    /// API keys that are not revoked.
    pub api_keys: i64,
    /// Loggers that sent frames but are not claimed.
    pub unclaimed_loggers: i64,
}
