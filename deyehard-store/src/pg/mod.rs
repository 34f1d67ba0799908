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
/// that window (the server restarted) fails at the transaction's `BEGIN`, and
/// [`PgStore::begin_with_settings`] takes another one (see [`connection_lost`]).
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
        let pool = Self::pool_options(options).connect(url).await?;
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

    /// The same store through a pool of its own (same server, options and size; migrations
    /// and retention already done), whose connections are opened from the caller's runtime.
    pub async fn with_own_pool(&self) -> StoreResult<Self> {
        let connect = (*self.pool.connect_options()).clone();
        let pool = Self::pool_options(&self.options)
            .connect_with(connect)
            .await?;
        Ok(Self {
            pool,
            options: self.options.clone(),
            timescaledb: self.timescaledb,
        })
    }

    fn pool_options(options: &StoreOptions) -> PgPoolOptions {
        PgPoolOptions::new()
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
    }

    /// A transaction as `deyehard_app` for `access`, opened in one round trip: `BEGIN` and the
    /// settings go out as one simple-protocol message.
    async fn begin(&self, access: Access<'_>) -> StoreResult<Transaction<'static, Db>> {
        self.begin_with_settings(access, "", "").await
    }

    /// Like [`Self::begin`], with `extra` (`, set_config(…)` calls, fixed text) in the same
    /// message, then the statement `then` if it is not empty (sent as it is, so built by this
    /// crate from its own values, as [`dialect::lock_targets`] is).
    async fn begin_with_settings(
        &self,
        access: Access<'_>,
        extra: &'static str,
        then: &str,
    ) -> StoreResult<Transaction<'static, Db>> {
        // Safe to format: the tenant is an integer (or empty), the flag a fixed word, `extra`
        // a constant and `then` this crate's own text.
        let mut statement = format!(
            "BEGIN; SELECT set_config('role', 'deyehard_app', true), \
             set_config('app.current_user_id', '{}', true), \
             set_config('app.cross_tenant', '{}', true){extra}",
            access.tenant_setting(),
            access.cross_tenant_setting()
        );
        if !then.is_empty() {
            statement.push_str("; ");
            statement.push_str(then);
        }
        // A pooled connection the server closed since its last use (every one of them, after
        // a restart) fails here, before anything was done; the pool drops it, so each retry
        // takes another one, until a live or new connection answers.
        let mut lost = 0;
        loop {
            match self
                .pool
                .begin_with(sqlx::AssertSqlSafe(statement.clone()))
                .await
            {
                Ok(tx) => return Ok(tx),
                Err(err) if connection_lost(&err) && lost < self.options.max_connections => {
                    lost += 1;
                    tracing::debug!(error = %err, "pooled connection lost; taking another");
                }
                Err(err) => return Err(err.into()),
            }
        }
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

/// Whether `err` says that the server closed an established connection (it was restarted, or
/// terminated the backend), as opposed to refusing a new one: another pooled or new
/// connection may work.
fn connection_lost(err: &sqlx::Error) -> bool {
    use std::io::ErrorKind;
    match err {
        // admin_shutdown, crash_shutdown: the FATAL message the server sent before closing.
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("57P01" | "57P02")),
        sqlx::Error::Io(io) => matches!(
            io.kind(),
            ErrorKind::BrokenPipe
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

crate::common::accounts::impl_accounts!(PgStore);
crate::common::devices::impl_devices!(PgStore);
crate::common::reads::impl_reads!(PgStore);
crate::common::maintenance::impl_maintenance!(PgStore);
crate::common::export::impl_export!(PgStore);
crate::common::dashboard_reads::impl_dashboard!(PgStore, crate::common::dashboard_sql::pg_sql);
crate::common::admin::impl_admin!(PgStore, "SET CONSTRAINTS ALL DEFERRED");

/// A database of its own for a PostgreSQL unit test, on the server of `DEYEHARD_TEST_PG_URL`,
/// dropped with the value (also when the test panics).
#[cfg(test)]
pub(crate) struct TestDatabase {
    admin: sqlx::PgConnection,
    admin_url: String,
    /// Its name.
    pub(crate) name: String,
    /// Its URL.
    pub(crate) url: String,
}

#[cfg(test)]
impl TestDatabase {
    /// Creates `dh_test_<tag>_<pid>` (dropping a leftover of that name first); fails with a
    /// clear message when there is no PostgreSQL.
    pub(crate) async fn create(tag: &str) -> Self {
        let admin_url = std::env::var("DEYEHARD_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "PostgreSQL is not reachable at {admin_url} ({err}): start it with \
                     `pg_ctlcluster 15 main start` or set DEYEHARD_TEST_PG_URL"
                )
            });
        let name = format!("dh_test_{tag}_{}", std::process::id());
        let url = match admin_url.rsplit_once('/') {
            Some((root, _)) => format!("{root}/{name}"),
            None => panic!("DEYEHARD_TEST_PG_URL has no database: {admin_url}"),
        };
        let mut database = Self {
            admin,
            admin_url,
            name,
            url,
        };
        database.execute(&database.drop_statement()).await;
        database
            .execute(&format!("CREATE DATABASE {}", database.name))
            .await;
        database
    }

    fn drop_statement(&self) -> String {
        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)
    }

    /// Runs `sql` on the server as the admin connection.
    pub(crate) async fn execute(&mut self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut self.admin)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
    }
}

#[cfg(test)]
impl Drop for TestDatabase {
    /// Drops the database from a thread with a runtime of its own (there is no async drop, and
    /// the test's runtime may be the one this blocks), on a connection of its own.
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let statement = self.drop_statement();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| err.to_string())?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .map_err(|err| err.to_string())?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                    .execute(&mut admin)
                    .await
                    .map(drop)
                    .map_err(|err| err.to_string())
            })
        })
        .join();
        if let Ok(Err(err)) = dropped {
            eprintln!("could not drop {}: {err}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use deyehard_core::{TenantScope, UserId};

    use super::*;

    /// After the server closed every pooled connection (as a restart does), the next
    /// transaction gets a live connection instead of failing, although connections used a
    /// moment ago are not pinged before use ([`PING_IDLE_AFTER`]).
    #[tokio::test]
    async fn a_transaction_after_the_server_closed_the_pool_succeeds() {
        let mut db = TestDatabase::create("lost").await;
        let options = StoreOptions {
            max_connections: 4,
            ..StoreOptions::default()
        };
        let store = PgStore::connect(&db.url, &options).await.expect("connect");
        let scope = TenantScope::for_tests(UserId::new(1));
        // Four connections in the pool, all used just now.
        let mut open = Vec::new();
        for _ in 0..4 {
            open.push(store.begin(Access::Tenant(&scope)).await.expect("begin"));
        }
        for tx in open {
            tx.commit().await.expect("commit");
        }
        assert_eq!(store.pool.size(), 4);
        // Waits (up to 5 s each) until the backends are gone, as after a restart.
        let terminate = format!(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '{}'",
            db.name
        );
        db.execute(&terminate).await;
        for attempt in 0..2 {
            let mut tx = store
                .begin(Access::Tenant(&scope))
                .await
                .unwrap_or_else(|err| panic!("begin {attempt}: {err}"));
            let tenant: String =
                sqlx::query_scalar("SELECT current_setting('app.current_user_id')")
                    .fetch_one(&mut *tx)
                    .await
                    .expect("query");
            assert_eq!(tenant, "1");
            tx.commit().await.expect("commit");
        }
        store.close().await;
        drop(db);
    }
}
