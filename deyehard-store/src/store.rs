//! [`Store`]: one concrete type over the compiled-in backends, so binaries need no generics.

use chrono::{DateTime, NaiveDate, Utc};
use deyehard_core::energy::Period;
use deyehard_core::{
    ApiKeyId, DeviceInfo, DeviceSerial, InverterId, LoggerSerial, Reading, TenantScope, UserId,
};

#[cfg(feature = "postgres")]
use crate::PgStore;
#[cfg(feature = "sqlite")]
use crate::SqliteStore;
use crate::dashboard::{
    DcChannelStatus, DcMetric, DcMetricSeries, InverterStatus, SummaryEnergy, SummaryPower,
};
use crate::model::SerialConflict;
use crate::model::{
    AdminActor, AdminCounts, AdminInverter, AdminUnknownSerial, ApiKey, BackendInfo, BackendKind,
    DailyEnergy, DcSeries, EnergyBucket, EnergySummary, Inverter, InverterFields, LatestReading,
    LoggerClaim, LoggerFrame, LoggerFrameOutcome, NewUser, PowerSeries, ProfileUpdate, RawFrame,
    RawFrameInput, RetentionReport, StoreOptions, UnclaimedLogger, UnknownSerial, User, UserFlags,
    UserOverview, WriteOutcome,
};
use crate::traits::{
    AdminFleet, AdminStore, ApiKeyStore, DashboardReader, ExportReader, InverterStore,
    LoggerFrameWriter, Maintenance, RawFrameStore, ReadingReader, ReadingWriter, StoreResult,
    UnclaimedLoggerStore, UserStore,
};

/// One connection pool of a store, at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// `main` (PostgreSQL), `writer` or `reader` (SQLite).
    pub name: &'static str,
    /// Open connections, idle or in use.
    pub size: u32,
    /// Open connections not in use.
    pub idle: usize,
    /// Most connections the pool opens.
    pub max: u32,
}

impl PoolStats {
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn of<DB: sqlx::Database>(name: &'static str, pool: &sqlx::Pool<DB>) -> Self {
        Self {
            name,
            size: pool.size(),
            idle: pool.num_idle(),
            max: pool.options().get_max_connections(),
        }
    }
}

/// A store on one of the compiled-in backends. Implements every capability trait by
/// delegation.
#[derive(Debug, Clone)]
pub enum Store {
    /// Embedded SQLite file.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteStore),
    /// PostgreSQL server.
    #[cfg(feature = "postgres")]
    Postgres(PgStore),
}

impl Store {
    /// Connects and runs the migrations: `postgres://…` / `postgresql://…` opens PostgreSQL;
    /// `sqlite://…`, `sqlite:…` or a plain file path opens (creating) an SQLite file.
    ///
    /// [`crate::StoreError::Unavailable`] when the server cannot be reached, [`crate::StoreError::Invalid`]
    /// for a URL of a backend that is not compiled in.
    pub async fn connect(url_or_path: &str, options: &StoreOptions) -> StoreResult<Self> {
        let is_postgres =
            url_or_path.starts_with("postgres://") || url_or_path.starts_with("postgresql://");
        if is_postgres {
            #[cfg(feature = "postgres")]
            return Ok(Self::Postgres(
                PgStore::connect(url_or_path, options).await?,
            ));
            #[cfg(not(feature = "postgres"))]
            return Err(crate::StoreError::Invalid(
                "this build has no PostgreSQL backend (feature `postgres`)".into(),
            ));
        }
        #[cfg(feature = "sqlite")]
        {
            let path = SqliteStore::path_from_url(url_or_path)?;
            Ok(Self::Sqlite(SqliteStore::open(&path, options).await?))
        }
        #[cfg(not(feature = "sqlite"))]
        {
            let _ = options;
            Err(crate::StoreError::Invalid(
                "this build has no SQLite backend (feature `sqlite`)".into(),
            ))
        }
    }

    /// On PostgreSQL, the same store through a pool of its own (same size), connected from the
    /// caller's runtime; `None` on SQLite, whose single writer connection every pool would share.
    pub async fn with_own_pool(&self) -> StoreResult<Option<Self>> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Ok(None),
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => Ok(Some(Self::Postgres(store.with_own_pool().await?))),
        }
    }

    /// The connection pools and their use, for metrics: SQLite has a `writer` and a `reader`
    /// pool, PostgreSQL one `main` pool.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.pool_stats(),
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.pool_stats(),
        }
    }

    /// Which backend this store runs on.
    pub fn kind(&self) -> BackendKind {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => BackendKind::Sqlite,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Closes the connection pools.
    pub async fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.close().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.close().await,
        }
    }
}

/// Calls the same method on whichever backend `self` holds.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            #[cfg(feature = "sqlite")]
            Store::Sqlite(store) => store.$method($($arg),*).await,
            #[cfg(feature = "postgres")]
            Store::Postgres(store) => store.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// When a claim of `fields`' logger serial was refused because another tenant holds it,
    /// records the attempt for the admin's conflict view ([`AdminFleet::admin_serial_conflicts`]);
    /// returns `outcome` unchanged (a failed record is only logged).
    async fn note_refused_claim(
        &self,
        scope: &TenantScope,
        fields: &InverterFields,
        outcome: StoreResult<Inverter>,
    ) -> StoreResult<Inverter> {
        if let (Err(crate::StoreError::Conflict(name)), Some(serial)) =
            (&outcome, fields.logger_serial)
            && name == crate::constraint::INVERTER_LOGGER_SERIAL
            && let Err(e) = dispatch!(self.record_claim_conflict(scope, serial))
        {
            tracing::warn!(error = %e, %serial, "cannot record a refused logger claim");
        }
        outcome
    }
}

impl UserStore for Store {
    async fn create_user(&self, new: &NewUser) -> StoreResult<User> {
        dispatch!(self.create_user(new))
    }
    async fn user(&self, scope: &TenantScope) -> StoreResult<User> {
        dispatch!(self.user(scope))
    }
    async fn user_by_email_unscoped(&self, email: &str) -> StoreResult<Option<User>> {
        dispatch!(self.user_by_email_unscoped(email))
    }
    async fn user_by_id_unscoped(&self, id: UserId) -> StoreResult<Option<User>> {
        dispatch!(self.user_by_id_unscoped(id))
    }
    async fn update_profile(
        &self,
        scope: &TenantScope,
        update: &ProfileUpdate,
    ) -> StoreResult<User> {
        dispatch!(self.update_profile(scope, update))
    }
    async fn set_password_hash(
        &self,
        scope: &TenantScope,
        password_hash: &str,
    ) -> StoreResult<i64> {
        dispatch!(self.set_password_hash(scope, password_hash))
    }
    async fn bump_session_version(&self, scope: &TenantScope) -> StoreResult<i64> {
        dispatch!(self.bump_session_version(scope))
    }
    async fn set_verified(&self, scope: &TenantScope, verified: bool) -> StoreResult<()> {
        dispatch!(self.set_verified(scope, verified))
    }
    async fn set_active(&self, scope: &TenantScope, active: bool) -> StoreResult<()> {
        dispatch!(self.set_active(scope, active))
    }
    async fn set_email(&self, scope: &TenantScope, email: &str) -> StoreResult<()> {
        dispatch!(self.set_email(scope, email))
    }
    async fn delete_user(&self, scope: &TenantScope) -> StoreResult<()> {
        dispatch!(self.delete_user(scope))
    }
    async fn upgrade_password_hash(
        &self,
        scope: &TenantScope,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<bool> {
        dispatch!(self.upgrade_password_hash(scope, old_hash, new_hash))
    }
    async fn set_superuser(&self, scope: &TenantScope, superuser: bool) -> StoreResult<()> {
        dispatch!(self.set_superuser(scope, superuser))
    }
    async fn users_unscoped(
        &self,
        search: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Vec<UserOverview>> {
        dispatch!(self.users_unscoped(search, limit, offset))
    }
}

impl ApiKeyStore for Store {
    async fn create_api_key(
        &self,
        scope: &TenantScope,
        name: &str,
        prefix: &str,
        key_hash: &str,
    ) -> StoreResult<ApiKey> {
        dispatch!(self.create_api_key(scope, name, prefix, key_hash))
    }
    async fn api_keys(&self, scope: &TenantScope) -> StoreResult<Vec<ApiKey>> {
        dispatch!(self.api_keys(scope))
    }
    async fn revoke_api_key(&self, scope: &TenantScope, id: ApiKeyId) -> StoreResult<()> {
        dispatch!(self.revoke_api_key(scope, id))
    }
    async fn delete_api_key(&self, scope: &TenantScope, id: ApiKeyId) -> StoreResult<()> {
        dispatch!(self.delete_api_key(scope, id))
    }
    async fn resolve_api_key_unscoped(
        &self,
        key_hash: &str,
    ) -> StoreResult<Option<(TenantScope, ApiKeyId)>> {
        dispatch!(self.resolve_api_key_unscoped(key_hash))
    }
}

impl InverterStore for Store {
    async fn create_inverter(
        &self,
        scope: &TenantScope,
        fields: &InverterFields,
    ) -> StoreResult<Inverter> {
        let created = dispatch!(self.create_inverter(scope, fields));
        self.note_refused_claim(scope, fields, created).await
    }
    async fn inverter(&self, scope: &TenantScope, id: InverterId) -> StoreResult<Inverter> {
        dispatch!(self.inverter(scope, id))
    }
    async fn inverters(&self, scope: &TenantScope) -> StoreResult<Vec<Inverter>> {
        dispatch!(self.inverters(scope))
    }
    async fn inverter_by_serial(
        &self,
        scope: &TenantScope,
        serial: &DeviceSerial,
    ) -> StoreResult<Option<Inverter>> {
        dispatch!(self.inverter_by_serial(scope, serial))
    }
    async fn update_inverter(
        &self,
        scope: &TenantScope,
        id: InverterId,
        fields: &InverterFields,
    ) -> StoreResult<Inverter> {
        let updated = dispatch!(self.update_inverter(scope, id, fields));
        self.note_refused_claim(scope, fields, updated).await
    }
    async fn delete_inverter(&self, scope: &TenantScope, id: InverterId) -> StoreResult<()> {
        dispatch!(self.delete_inverter(scope, id))
    }
    async fn update_device_info(
        &self,
        scope: &TenantScope,
        id: InverterId,
        info: &DeviceInfo,
    ) -> StoreResult<()> {
        dispatch!(self.update_device_info(scope, id, info))
    }
    async fn touch_inverter(
        &self,
        scope: &TenantScope,
        id: InverterId,
        seen_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        dispatch!(self.touch_inverter(scope, id, seen_at))
    }
    async fn record_unknown_serial(
        &self,
        scope: &TenantScope,
        inverter_serial: &str,
        dtu_serial: Option<&str>,
        seen_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        dispatch!(self.record_unknown_serial(scope, inverter_serial, dtu_serial, seen_at))
    }
    async fn unknown_serials(&self, scope: &TenantScope) -> StoreResult<Vec<UnknownSerial>> {
        dispatch!(self.unknown_serials(scope))
    }
}

impl ReadingWriter for Store {
    async fn write_readings(
        &self,
        scope: &TenantScope,
        batch: &[(InverterId, Reading)],
        received_at: DateTime<Utc>,
    ) -> StoreResult<Vec<WriteOutcome>> {
        dispatch!(self.write_readings(scope, batch, received_at))
    }
}

impl ReadingReader for Store {
    async fn latest_readings(&self, scope: &TenantScope) -> StoreResult<Vec<LatestReading>> {
        dispatch!(self.latest_readings(scope))
    }
    async fn readings(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Reading>> {
        dispatch!(self.readings(scope, inverter, from, to, limit))
    }
    async fn power_series(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: u32,
    ) -> StoreResult<PowerSeries> {
        dispatch!(self.power_series(scope, inverter, from, to, max_points))
    }
    async fn dc_series(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: u32,
    ) -> StoreResult<DcSeries> {
        dispatch!(self.dc_series(scope, inverter, from, to, max_points))
    }
    async fn daily_energy(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        from_day: NaiveDate,
        to_day: NaiveDate,
    ) -> StoreResult<Vec<DailyEnergy>> {
        dispatch!(self.daily_energy(scope, inverter, from_day, to_day))
    }
    async fn energy_buckets(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        period: Period,
        date: NaiveDate,
    ) -> StoreResult<Vec<EnergyBucket>> {
        dispatch!(self.energy_buckets(scope, inverter, period, date))
    }
    async fn energy_summary(
        &self,
        scope: &TenantScope,
        period: Period,
        date: NaiveDate,
    ) -> StoreResult<EnergySummary> {
        dispatch!(self.energy_summary(scope, period, date))
    }
}

impl RawFrameStore for Store {
    async fn store_raw_frame(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        frame: &RawFrameInput<'_>,
    ) -> StoreResult<()> {
        dispatch!(self.store_raw_frame(scope, inverter, frame))
    }
    async fn raw_frames(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<RawFrame>> {
        dispatch!(self.raw_frames(scope, inverter, from, to, limit))
    }
}

impl UnclaimedLoggerStore for Store {
    async fn resolve_logger_unscoped(
        &self,
        serial: LoggerSerial,
    ) -> StoreResult<Option<LoggerClaim>> {
        dispatch!(self.resolve_logger_unscoped(serial))
    }
    async fn record_unclaimed_frame(&self, frame: &RawFrameInput<'_>) -> StoreResult<()> {
        dispatch!(self.record_unclaimed_frame(frame))
    }
    async fn take_unclaimed_frames(
        &self,
        scope: &TenantScope,
        serial: LoggerSerial,
    ) -> StoreResult<Vec<RawFrame>> {
        dispatch!(self.take_unclaimed_frames(scope, serial))
    }
}

impl LoggerFrameWriter for Store {
    async fn write_logger_frames(
        &self,
        frames: &[LoggerFrame<'_>],
    ) -> StoreResult<Vec<LoggerFrameOutcome>> {
        dispatch!(self.write_logger_frames(frames))
    }
}

impl AdminStore for Store {
    async fn admin_users(
        &self,
        actor: AdminActor,
        search: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Vec<UserOverview>> {
        dispatch!(self.admin_users(actor, search, limit, offset))
    }
    async fn admin_set_user_flags(
        &self,
        actor: AdminActor,
        user: UserId,
        flags: UserFlags,
    ) -> StoreResult<()> {
        dispatch!(self.admin_set_user_flags(actor, user, flags))
    }
    async fn admin_delete_user(&self, actor: AdminActor, user: UserId) -> StoreResult<()> {
        dispatch!(self.admin_delete_user(actor, user))
    }
    async fn admin_inverters(&self, actor: AdminActor) -> StoreResult<Vec<Inverter>> {
        dispatch!(self.admin_inverters(actor))
    }
    async fn admin_unclaimed_loggers(
        &self,
        actor: AdminActor,
    ) -> StoreResult<Vec<UnclaimedLogger>> {
        dispatch!(self.admin_unclaimed_loggers(actor))
    }
}

impl Maintenance for Store {
    async fn backend_info(&self) -> StoreResult<BackendInfo> {
        dispatch!(self.backend_info())
    }
    async fn ping(&self) -> StoreResult<()> {
        dispatch!(self.ping())
    }
    async fn apply_retention(&self, now: DateTime<Utc>, days: u32) -> StoreResult<RetentionReport> {
        dispatch!(self.apply_retention(now, days))
    }
}

impl DashboardReader for Store {
    async fn inverter_statuses(
        &self,
        scope: &TenantScope,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<InverterStatus>> {
        dispatch!(self.inverter_statuses(scope, now))
    }
    async fn inverter_status(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        now: DateTime<Utc>,
    ) -> StoreResult<InverterStatus> {
        dispatch!(self.inverter_status(scope, inverter, now))
    }
    async fn summary_power(
        &self,
        scope: &TenantScope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: u32,
    ) -> StoreResult<SummaryPower> {
        dispatch!(self.summary_power(scope, from, to, max_points))
    }
    async fn summary_energy(
        &self,
        scope: &TenantScope,
        period: Period,
        date: NaiveDate,
    ) -> StoreResult<SummaryEnergy> {
        dispatch!(self.summary_energy(scope, period, date))
    }
    async fn dc_channels(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<DcChannelStatus>> {
        dispatch!(self.dc_channels(scope, inverter, now))
    }
    async fn dc_metric_series(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        metric: DcMetric,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: u32,
    ) -> StoreResult<DcMetricSeries> {
        dispatch!(self.dc_metric_series(scope, inverter, metric, from, to, max_points))
    }
}

impl ExportReader for Store {
    async fn export_dc_channels(
        &self,
        scope: &TenantScope,
        inverter: InverterId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<u8>> {
        dispatch!(self.export_dc_channels(scope, inverter, from, to))
    }
}

impl AdminFleet for Store {
    async fn admin_search_inverters(
        &self,
        actor: AdminActor,
        search: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Vec<AdminInverter>> {
        dispatch!(self.admin_search_inverters(actor, search, limit, offset))
    }
    async fn admin_reassign_inverter(
        &self,
        actor: AdminActor,
        inverter: InverterId,
        new_owner: UserId,
    ) -> StoreResult<Inverter> {
        dispatch!(self.admin_reassign_inverter(actor, inverter, new_owner))
    }
    async fn admin_unknown_serials(
        &self,
        actor: AdminActor,
        limit: u32,
    ) -> StoreResult<Vec<AdminUnknownSerial>> {
        dispatch!(self.admin_unknown_serials(actor, limit))
    }
    async fn admin_serial_conflicts(&self, actor: AdminActor) -> StoreResult<Vec<SerialConflict>> {
        dispatch!(self.admin_serial_conflicts(actor))
    }
    async fn admin_counts(
        &self,
        actor: AdminActor,
        seen_since: DateTime<Utc>,
    ) -> StoreResult<AdminCounts> {
        dispatch!(self.admin_counts(actor, seen_since))
    }
}
