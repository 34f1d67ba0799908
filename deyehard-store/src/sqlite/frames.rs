//! The collector's batch write on SQLite (see [`crate::common::frames`]): claims resolved with
//! `IN (…)` lists, unclaimed loggers and raw frames written with multi-row statements, all on
//! the single writer connection.

use std::collections::{BTreeMap, HashMap};

use sqlx::{AssertSqlSafe, Transaction};

use super::write::{chunks, multi_row};
use super::{Db, SqliteStore, dialect};
use crate::common::Access;
use crate::common::frames::{Claim, RawRow, UnclaimedRow};
use crate::ts::Ts;
use crate::{StoreResult, sql};

impl SqliteStore {
    /// No RLS here: the shared SQL carries the scoping.
    async fn switch_access(
        _tx: &mut Transaction<'static, Db>,
        _access: Access<'_>,
    ) -> StoreResult<()> {
        Ok(())
    }

    /// The active claims among `serials`, keyed by serial.
    async fn resolve_loggers(
        tx: &mut Transaction<'static, Db>,
        serials: &[i64],
    ) -> StoreResult<HashMap<i64, Claim>> {
        let mut claims = HashMap::with_capacity(serials.len());
        for chunk in chunks(serials) {
            let mut query =
                sqlx::query_as::<_, Claim>(AssertSqlSafe(dialect::logger_resolve(chunk.len())));
            for serial in chunk {
                query = query.bind(*serial);
            }
            let found = query.fetch_all(&mut **tx).await?;
            claims.extend(found.into_iter().map(|c| (c.logger_serial, c)));
        }
        Ok(claims)
    }

    /// Inserts or updates the unclaimed loggers' rows.
    async fn upsert_unclaimed(
        tx: &mut Transaction<'static, Db>,
        rows: &[UnclaimedRow<'_>],
    ) -> StoreResult<()> {
        for chunk in chunks(rows) {
            let mut query = sqlx::query(AssertSqlSafe(multi_row(&dialect::UNCLAIMED, chunk.len())));
            for row in chunk {
                query = query
                    .bind(row.serial)
                    .bind(row.first_seen)
                    .bind(row.last_seen)
                    .bind(row.remote_addr)
                    .bind(row.frames);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Inserts raw frames.
    async fn insert_raw_frames(
        tx: &mut Transaction<'static, Db>,
        rows: &[RawRow<'_>],
    ) -> StoreResult<()> {
        for chunk in chunks(rows) {
            let mut query =
                sqlx::query(AssertSqlSafe(multi_row(&dialect::RAW_FRAMES, chunk.len())));
            for row in chunk {
                let frame = row.frame;
                query = query
                    .bind(row.user)
                    .bind(row.inverter)
                    .bind(crate::common::devices::logger_serial(frame.logger_serial))
                    .bind(Ts::new(frame.received_at))
                    .bind(i32::from(frame.control))
                    .bind(frame.remote_addr)
                    .bind(frame.bytes);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Moves `last_seen_at` of the tenant's inverters forward.
    async fn touch_seen(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        seen: &BTreeMap<i64, Ts>,
    ) -> StoreResult<()> {
        for (inverter, seen_at) in seen {
            sqlx::query(sql::INVERTER_TOUCH)
                .bind(user)
                .bind(*inverter)
                .bind(*seen_at)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

crate::common::frames::impl_logger_frames!(SqliteStore);
