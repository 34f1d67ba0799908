//! The collector's batch write on PostgreSQL (see [`crate::common::frames`]): one statement
//! per table and part (`UNNEST` of column arrays), each tenant's part written with that
//! tenant's settings so RLS applies as in a scoped call.

use std::collections::{BTreeMap, HashMap};

use sqlx::Transaction;

use super::{Db, PgStore, dialect};
use crate::StoreResult;
use crate::common::Access;
use crate::common::devices::logger_serial;
use crate::common::frames::{Claim, RawRow, UnclaimedRow};
use crate::ts::Ts;

impl PgStore {
    /// Sets the tenant and the cross-tenant flag for the rest of the transaction.
    async fn switch_access(
        tx: &mut Transaction<'static, Db>,
        access: Access<'_>,
    ) -> StoreResult<()> {
        sqlx::query(dialect::SWITCH_ACCESS)
            .bind(access.tenant_setting())
            .bind(access.cross_tenant_setting())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// The active claims among `serials`, keyed by serial (needs cross-tenant access).
    async fn resolve_loggers(
        tx: &mut Transaction<'static, Db>,
        serials: &[i64],
    ) -> StoreResult<HashMap<i64, Claim>> {
        let found: Vec<Claim> = sqlx::query_as(dialect::LOGGERS_RESOLVE)
            .bind(serials)
            .fetch_all(&mut **tx)
            .await?;
        Ok(found.into_iter().map(|c| (c.logger_serial, c)).collect())
    }

    /// Inserts or updates the unclaimed loggers' rows (needs cross-tenant access).
    async fn upsert_unclaimed(
        tx: &mut Transaction<'static, Db>,
        rows: &[UnclaimedRow<'_>],
    ) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(dialect::UPSERT_UNCLAIMED)
            .bind(rows.iter().map(|r| r.serial).collect::<Vec<i64>>())
            .bind(rows.iter().map(|r| r.first_seen).collect::<Vec<Ts>>())
            .bind(rows.iter().map(|r| r.last_seen).collect::<Vec<Ts>>())
            .bind(
                rows.iter()
                    .map(|r| r.remote_addr)
                    .collect::<Vec<Option<&str>>>(),
            )
            .bind(rows.iter().map(|r| r.frames).collect::<Vec<i64>>())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Inserts raw frames.
    async fn insert_raw_frames(
        tx: &mut Transaction<'static, Db>,
        rows: &[RawRow<'_>],
    ) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(dialect::INSERT_RAW_FRAMES)
            .bind(rows.iter().map(|r| r.user).collect::<Vec<Option<i64>>>())
            .bind(
                rows.iter()
                    .map(|r| r.inverter)
                    .collect::<Vec<Option<i64>>>(),
            )
            .bind(
                rows.iter()
                    .map(|r| logger_serial(r.frame.logger_serial))
                    .collect::<Vec<i64>>(),
            )
            .bind(
                rows.iter()
                    .map(|r| Ts::new(r.frame.received_at))
                    .collect::<Vec<Ts>>(),
            )
            .bind(
                rows.iter()
                    .map(|r| i32::from(r.frame.control))
                    .collect::<Vec<i32>>(),
            )
            .bind(
                rows.iter()
                    .map(|r| r.frame.remote_addr)
                    .collect::<Vec<Option<&str>>>(),
            )
            .bind(rows.iter().map(|r| r.frame.bytes).collect::<Vec<&[u8]>>())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Moves `last_seen_at` of the tenant's inverters forward.
    async fn touch_seen(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        seen: &BTreeMap<i64, Ts>,
    ) -> StoreResult<()> {
        if seen.is_empty() {
            return Ok(());
        }
        sqlx::query(dialect::TOUCH_MANY)
            .bind(user)
            .bind(seen.keys().copied().collect::<Vec<i64>>())
            .bind(seen.values().copied().collect::<Vec<Ts>>())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

crate::common::frames::impl_logger_frames!(PgStore);
