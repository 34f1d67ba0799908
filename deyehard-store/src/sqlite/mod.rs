//! The embedded SQLite backend: one file, WAL journal, one writer connection and a pool of
//! read-only connections.
//!
//! Durability: "a 2xx means durably stored", so commits run with `synchronous = FULL` (with WAL,
//! `NORMAL` may lose the last commits on power loss). Foreign keys are on (deleting a user
//! cascades), `busy_timeout` covers other processes sharing the file. SQLite has no Row-Level
//! Security: tenant isolation rests on the `WHERE user_id = ?` that every shared statement
//! carries.

mod dialect;
mod frames;
mod write;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::Transaction;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::common::Access;
use crate::model::{BackendInfo, BackendKind, StoreOptions};
use crate::{StoreError, StoreResult};

type Db = sqlx::Sqlite;

static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

/// How long a statement waits for a lock held by another process before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows the connection's worker thread may run ahead of the reader (sqlx's default of 50
/// makes every longer result a ping-pong between two threads).
const ROW_BUFFER: usize = 1024;
/// Prepared statements kept per connection (the multi-row writes use up to eight texts per
/// table).
const STATEMENT_CACHE: usize = 256;

/// A store in an SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    options: StoreOptions,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and runs the migrations.
    pub async fn open(path: &Path, options: &StoreOptions) -> StoreResult<Self> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .statement_cache_capacity(STATEMENT_CACHE)
            .row_buffer_size(ROW_BUFFER);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(base.clone().create_if_missing(true))
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(base.read_only(true))
            .await?;
        Ok(Self {
            writer,
            reader,
            options: options.clone(),
        })
    }

    /// The file behind `sqlite://path`, `sqlite:path` or a plain path. In-memory databases are
    /// refused: every pooled connection would see its own empty database.
    pub(crate) fn path_from_url(url: &str) -> StoreResult<PathBuf> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path == ":memory:" || path.starts_with(":memory:") {
            return Err(StoreError::Invalid(
                "an SQLite store needs a file (in-memory databases are per connection)".into(),
            ));
        }
        PathBuf::from_str(path).map_err(|e| StoreError::Invalid(e.to_string()))
    }

    /// A read transaction on a reader connection. Scoping is in the SQL (no RLS here).
    async fn begin_read(&self, _access: Access<'_>) -> StoreResult<Transaction<'static, Db>> {
        Ok(self.reader.begin().await?)
    }

    /// A write transaction on the writer connection, taking the write lock up front so it
    /// never has to upgrade (and fail) halfway.
    async fn begin_write(&self, _access: Access<'_>) -> StoreResult<Transaction<'static, Db>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Cross-tenant visibility needs no switch here: the shared SQL carries the scoping.
    async fn cross_tenant(_tx: &mut Transaction<'static, Db>) -> StoreResult<()> {
        Ok(())
    }

    /// SQLite has no TimescaleDB: retention deletes old rows itself.
    fn retention_covers_series(&self) -> bool {
        false
    }

    async fn backend_info_impl(&self) -> StoreResult<BackendInfo> {
        Ok(BackendInfo {
            kind: BackendKind::Sqlite,
            timescaledb: false,
            retention_days: self.options.retention_days,
        })
    }

    /// Reachable, and the newest migration of this build is applied.
    async fn ping_impl(&self) -> StoreResult<()> {
        let applied: Option<i64> = sqlx::query_scalar(crate::common::maintenance::APPLIED_VERSION)
            .fetch_one(&self.reader)
            .await?;
        crate::common::maintenance::check_migrated(applied, &MIGRATOR)
    }

    /// The writer and the reader pool, for metrics.
    pub fn pool_stats(&self) -> Vec<crate::PoolStats> {
        vec![
            crate::PoolStats::of("writer", &self.writer),
            crate::PoolStats::of("reader", &self.reader),
        ]
    }

    /// Closes both pools (waits for running calls).
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

crate::common::accounts::impl_accounts!(SqliteStore);
crate::common::devices::impl_devices!(SqliteStore);
crate::common::reads::impl_reads!(SqliteStore);
crate::common::maintenance::impl_maintenance!(SqliteStore);
crate::common::export::impl_export!(SqliteStore);
crate::common::dashboard_reads::impl_dashboard!(
    SqliteStore,
    crate::common::dashboard_sql::sqlite_sql
);
crate::common::admin::impl_admin!(SqliteStore, "PRAGMA defer_foreign_keys = ON");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_name_a_file() {
        let path = |url| SqliteStore::path_from_url(url).map(|p| p.display().to_string());
        assert_eq!(
            path("sqlite:///var/lib/dh.db").ok().as_deref(),
            Some("/var/lib/dh.db")
        );
        assert_eq!(
            path("sqlite:data/dh.db?mode=rwc").ok().as_deref(),
            Some("data/dh.db")
        );
        assert_eq!(path("./dh.db").ok().as_deref(), Some("./dh.db"));
        assert!(path("sqlite::memory:").is_err());
        assert!(path("sqlite://").is_err());
    }
}
