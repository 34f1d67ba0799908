//! The PostgreSQL backend: Row-Level Security for tenant isolation, TimescaleDB hypertables
//! when the server offers the extension.
//!
//! Every transaction starts, in the same round trip as its `BEGIN`, with one statement that
//! switches to the role `deyehard_app` and names the tenant, both transaction-local
//! (`set_config(…, true)`), so a pooled connection never carries them into the next transaction
//! (safe with PgBouncer's transaction pooling):
//!
//! ```sql
//! BEGIN;
//! SELECT set_config('role', 'deyehard_app', true),
//!        set_config('app.current_user_id', '42', true),  -- '' for none: tenant tables read empty
//!        set_config('app.cross_tenant', 'off', true)     -- 'on' only for named cross-tenant calls
//! ```
//!
//! The login role (superuser, or owner with membership in `deyehard_app`) only runs the
//! migrations; queries run as `deyehard_app`, which is neither superuser nor `BYPASSRLS`, so the
//! forced policies apply even to statements that forgot their `WHERE user_id`.

mod dialect;
mod frames;
mod write;

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, Transaction};

use crate::StoreResult;
use crate::common::Access;
use crate::model::{BackendInfo, BackendKind, StoreOptions};

type Db = sqlx::Postgres;

static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// A pooled connection idle for longer than this is pinged before it is handed out. One used
/// more recently is not: the pool pings every connection when it comes back, so a connection
/// idle for less than this was alive that long ago, and the round trip a ping per acquire
/// costs buys little (measured with 64 clients pushing, on two cores: opening a write
/// transaction took 0.9–1.1 ms without it, 1.3–1.5 ms with it). A connection broken within
/// that window (the server restarted) fails its next statement instead; the store reports that
/// as unavailable (503 for a push) and the pool drops the connection.
const PING_IDLE_AFTER: Duration = Duration::from_secs(5);

/// Widens an open transaction to all tenants (named cross-tenant methods only).
const CROSS_TENANT: &str = "SELECT set_config('app.cross_tenant', 'on', true)";

/// A store on a PostgreSQL server.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    options: StoreOptions,
    timescaledb: bool,
}

impl PgStore {
    /// Connects, runs the migrations and, with TimescaleDB, sets its retention policy to the
    /// configured window.
    pub async fn connect(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_IDLE_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        let timescaledb = dialect::timescaledb_in_use(&pool).await?;
        if timescaledb {
            dialect::set_timescale_retention(&pool, options.retention_days).await?;
        }
        tracing::debug!(timescaledb, "PostgreSQL store ready");
        Ok(Self {
            pool,
            options: options.clone(),
            timescaledb,
        })
    }

    /// A transaction as `deyehard_app` for `access`, opened in one round trip: `BEGIN` and the
    /// settings go out as one simple-protocol message.
    async fn begin(&self, access: Access<'_>) -> StoreResult<Transaction<'static, Db>> {
        self.begin_with_settings(access, "").await
    }

    /// Like [`Self::begin`], with `extra` (`, set_config(…)` calls, fixed text) in the same
    /// message.
    async fn begin_with_settings(
        &self,
        access: Access<'_>,
        extra: &'static str,
    ) -> StoreResult<Transaction<'static, Db>> {
        // Safe to format: the tenant is an integer (or empty), the flag a fixed word and
        // `extra` a constant.
        let statement = format!(
            "BEGIN; SELECT set_config('role', 'deyehard_app', true), \
             set_config('app.current_user_id', '{}', true), \
             set_config('app.cross_tenant', '{}', true){extra}",
            access.tenant_setting(),
            access.cross_tenant_setting()
        );
        Ok(self.pool.begin_with(sqlx::AssertSqlSafe(statement)).await?)
    }

    async fn begin_read(&self, access: Access<'_>) -> StoreResult<Transaction<'static, Db>> {
        self.begin(access).await
    }

    async fn begin_write(&self, access: Access<'_>) -> StoreResult<Transaction<'static, Db>> {
        self.begin(access).await
    }

    /// Sets `app.cross_tenant = 'on'` for the rest of the transaction. Call sites: admin
    /// methods after their superuser re-check, `take_unclaimed_frames` after its claim check.
    async fn cross_tenant(tx: &mut Transaction<'static, Db>) -> StoreResult<()> {
        sqlx::query(CROSS_TENANT).execute(&mut **tx).await?;
        Ok(())
    }

    /// With TimescaleDB, its retention policy drops old chunks of the hypertables.
    fn retention_covers_series(&self) -> bool {
        self.timescaledb
    }

    async fn backend_info_impl(&self) -> StoreResult<BackendInfo> {
        Ok(BackendInfo {
            kind: BackendKind::Postgres,
            timescaledb: self.timescaledb,
            retention_days: self.options.retention_days,
        })
    }

    /// Reachable, and the newest migration of this build is applied.
    async fn ping_impl(&self) -> StoreResult<()> {
        let applied: Option<i64> = sqlx::query_scalar(crate::common::maintenance::APPLIED_VERSION)
            .fetch_one(&self.pool)
            .await?;
        crate::common::maintenance::check_migrated(applied, &MIGRATOR)
    }

    /// The connection pool, for metrics.
    pub fn pool_stats(&self) -> Vec<crate::PoolStats> {
        vec![crate::PoolStats::of("main", &self.pool)]
    }

    /// Closes the pool (waits for running calls).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

crate::common::accounts::impl_accounts!(PgStore);
crate::common::devices::impl_devices!(PgStore);
crate::common::reads::impl_reads!(PgStore);
crate::common::maintenance::impl_maintenance!(PgStore);
crate::common::export::impl_export!(PgStore);
crate::common::dashboard_reads::impl_dashboard!(PgStore, crate::common::dashboard_sql::pg_sql);
crate::common::admin::impl_admin!(PgStore, "SET CONSTRAINTS ALL DEFERRED");
