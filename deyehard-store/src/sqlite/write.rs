//! `write_readings` on SQLite: one transaction on the single writer connection, prepared
//! statements reused row by row (SQLite has no array binds; each execution is an in-process
//! call), rollups and energy maintained in the same transaction.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use deyehard_core::{InverterId, Reading, TenantScope};
use sqlx::Transaction;

use super::{Db, SqliteStore, dialect};
use crate::common::energy::TargetRow;
use crate::common::write::{self as shared, Deltas, Item, finite};
use crate::common::{Access, uid};
use crate::model::WriteOutcome;
use crate::ts::Ts;
use crate::{ReadingWriter, StoreResult, sql};

impl ReadingWriter for SqliteStore {
    async fn write_readings(
        &self,
        scope: &TenantScope,
        batch: &[(InverterId, Reading)],
        received_at: DateTime<Utc>,
    ) -> StoreResult<Vec<WriteOutcome>> {
        let user = uid(scope);
        let received_at = Ts::new(received_at);
        let mut tx = self.begin_write(Access::Tenant(scope)).await?;
        let mut targets = Vec::new();
        for id in shared::inverter_ids(batch) {
            let target: Option<TargetRow> = sqlx::query_as(dialect::WRITE_TARGET)
                .bind(user)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            targets.extend(target);
        }
        let owned: HashSet<i64> = targets.iter().map(|t| t.inverter_id).collect();
        let (mut outcomes, items) = shared::prepare(batch, &owned);
        let mut inserted = HashSet::with_capacity(items.len());
        for item in &items {
            if insert_reading(&mut tx, user, item, received_at).await? {
                inserted.insert((item.inverter, item.time));
            }
        }
        let stored = shared::mark_stored(&mut outcomes, &items, &inserted);
        let (five, hour) = shared::power_deltas(&stored);
        upsert_rollups(&mut tx, user, &five, &hour).await?;
        Self::upkeep_energy(&mut tx, user, targets, &stored).await?;
        for id in &owned {
            sqlx::query(sql::INVERTER_TOUCH)
                .bind(user)
                .bind(*id)
                .bind(received_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

impl SqliteStore {
    /// Sets the energy of 5-minute buckets of one inverter.
    async fn set_bucket_energy(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        inverter: i64,
        buckets: &BTreeMap<Ts, f64>,
    ) -> StoreResult<()> {
        for (bucket, energy_wh) in buckets {
            sqlx::query(dialect::SET_BUCKET_ENERGY)
                .bind(inverter)
                .bind(*bucket)
                .bind(user)
                .bind(*energy_wh)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

crate::common::upkeep::impl_energy_upkeep!(SqliteStore);

/// Inserts the AC row and, if it was new, the DC rows. Returns whether the AC row was new.
async fn insert_reading(
    tx: &mut Transaction<'static, Db>,
    user: i64,
    item: &Item<'_>,
    received_at: Ts,
) -> StoreResult<bool> {
    let r = item.reading;
    let done = sqlx::query(dialect::INSERT_MEASUREMENT)
        .bind(item.inverter)
        .bind(item.time)
        .bind(user)
        .bind(finite(r.power_ac_w))
        .bind(finite(r.voltage_ac_v))
        .bind(finite(r.current_ac_a))
        .bind(finite(r.frequency_hz))
        .bind(finite(r.power_factor))
        .bind(finite(r.power_dc_w))
        .bind(finite(r.temperature_c))
        .bind(finite(r.yield_day_wh))
        .bind(finite(r.yield_total_wh))
        .bind(r.reachable)
        .bind(r.producing)
        .bind(r.source.as_str())
        .bind(received_at)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    for dc in &r.dc {
        sqlx::query(dialect::INSERT_DC)
            .bind(item.inverter)
            .bind(item.time)
            .bind(i16::from(dc.channel))
            .bind(user)
            .bind(dc.name.as_deref())
            .bind(finite(dc.power_w))
            .bind(finite(dc.voltage_v))
            .bind(finite(dc.current_a))
            .bind(finite(dc.yield_day_wh))
            .bind(finite(dc.yield_total_wh))
            .bind(finite(dc.irradiation_pct))
            .execute(&mut **tx)
            .await?;
    }
    Ok(true)
}

/// Adds the batch's deltas to the 5-minute and hourly rollups.
async fn upsert_rollups(
    tx: &mut Transaction<'static, Db>,
    user: i64,
    five: &Deltas,
    hour: &Deltas,
) -> StoreResult<()> {
    for (&(inverter, bucket), delta) in five {
        sqlx::query(dialect::UPSERT_5M)
            .bind(inverter)
            .bind(bucket)
            .bind(user)
            .bind(delta.samples)
            .bind(delta.power_sum)
            .bind(delta.power_min)
            .bind(delta.power_max)
            .execute(&mut **tx)
            .await?;
    }
    for (&(inverter, bucket), delta) in hour {
        sqlx::query(dialect::UPSERT_1H)
            .bind(inverter)
            .bind(bucket)
            .bind(user)
            .bind(delta.samples)
            .bind(delta.power_sum)
            .bind(delta.power_min)
            .bind(delta.power_max)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
