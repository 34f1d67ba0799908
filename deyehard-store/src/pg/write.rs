//! `write_readings` on PostgreSQL: one transaction, one statement per table per batch
//! (`INSERT … SELECT FROM UNNEST($arrays)`, also for the energy upkeep of all in-order
//! inverters), the energy-state rows of the batch's inverters locked first so concurrent writers
//! of one inverter serialize.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use deyehard_core::energy::AccumulatorState;
use deyehard_core::{InverterId, Reading, TenantScope};
use sqlx::Transaction;

use super::{Db, PgStore, dialect};
use crate::common::energy::{
    BucketSpan, BucketWrite, DaySpan, DayWrite, InverterDayRow, Target, TargetRow,
};
use crate::common::write::{
    self as shared, BucketEnergies, Deltas, Item, RollupRow, WriteInput, finite,
};
use crate::common::{Access, uid};
use crate::model::WriteOutcome;
use crate::ts::Ts;
use crate::{ReadingWriter, StoreResult};

/// Planner settings of the write transaction. Its statements join the batch's arrays (a few
/// hundred rows at most) to the tables by primary key. The plans are cached per connection, and
/// one made while a table was still nearly empty (a fresh database, before autovacuum's first
/// `ANALYZE`) would scan the whole table, or hash it, for every batch until then: measured, such
/// a plan made a batch's bucket read take 40 ms instead of 0.1 ms. With scans and hash and merge
/// joins ruled out, every plan probes the primary keys.
const INDEX_LOOKUPS_ONLY: &str = ", set_config('enable_seqscan', 'off', true), \
     set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)";

impl ReadingWriter for PgStore {
    async fn write_readings(
        &self,
        scope: &TenantScope,
        batch: &[(InverterId, Reading)],
        received_at: DateTime<Utc>,
    ) -> StoreResult<Vec<WriteOutcome>> {
        let inputs = shared::inputs(batch, Ts::new(received_at));
        let mut tx = self
            .begin_with_settings(Access::Tenant(scope), INDEX_LOOKUPS_ONLY)
            .await?;
        let outcomes = Self::write_readings_in(&mut tx, uid(scope), &inputs).await?;
        tx.commit().await?;
        Ok(outcomes)
    }
}

impl PgStore {
    /// Writes readings of the tenant `user` inside `tx` (whose settings must name that
    /// tenant): one outcome per input, in order.
    pub(crate) async fn write_readings_in(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        batch: &[WriteInput<'_>],
    ) -> StoreResult<Vec<WriteOutcome>> {
        let targets: Vec<TargetRow> = sqlx::query_as(dialect::WRITE_TARGETS)
            .bind(user)
            .bind(shared::inverter_ids(batch))
            .fetch_all(&mut **tx)
            .await?;
        let owned: HashSet<i64> = targets.iter().map(|t| t.inverter_id).collect();
        let (mut outcomes, items) = shared::prepare(batch, &owned);
        let inserted = insert_measurements(tx, user, &items).await?;
        let stored = shared::mark_stored(&mut outcomes, &items, &inserted);
        insert_dc(tx, user, &stored).await?;
        let energies = Self::upkeep_energy(tx, user, targets, &stored).await?;
        let (five, hour) = shared::power_deltas(&stored);
        upsert_rollups(tx, user, &five, &hour, &energies).await?;
        let seen = shared::seen_times(batch, &owned);
        if !seen.is_empty() {
            sqlx::query(dialect::TOUCH_MANY)
                .bind(user)
                .bind(seen.keys().copied().collect::<Vec<i64>>())
                .bind(seen.values().copied().collect::<Vec<Ts>>())
                .execute(&mut **tx)
                .await?;
        }
        Ok(outcomes)
    }

    /// The stored days of each span, one statement for all inverters.
    async fn day_rows_in(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        spans: &[DaySpan],
    ) -> StoreResult<Vec<InverterDayRow>> {
        Ok(sqlx::query_as(dialect::DAY_ROWS_IN)
            .bind(user)
            .bind(spans.iter().map(|s| s.inverter).collect::<Vec<i64>>())
            .bind(spans.iter().map(|s| s.first).collect::<Vec<NaiveDate>>())
            .bind(spans.iter().map(|s| s.last).collect::<Vec<NaiveDate>>())
            .fetch_all(&mut **tx)
            .await?)
    }

    /// The stored bucket energies of each span, one statement for all inverters.
    async fn bucket_energies_in(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        spans: &[BucketSpan],
    ) -> StoreResult<Vec<(i64, Ts, f64)>> {
        Ok(sqlx::query_as(dialect::BUCKET_ENERGIES_IN)
            .bind(user)
            .bind(spans.iter().map(|s| s.inverter).collect::<Vec<i64>>())
            .bind(spans.iter().map(|s| s.first).collect::<Vec<Ts>>())
            .bind(spans.iter().map(|s| s.last).collect::<Vec<Ts>>())
            .fetch_all(&mut **tx)
            .await?)
    }

    /// Writes `daily_energy` rows (unique (inverter, day) keys), in one statement.
    async fn upsert_days(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        days: &[DayWrite<'_>],
        now: Ts,
    ) -> StoreResult<()> {
        if days.is_empty() {
            return Ok(());
        }
        let state = |f: fn(&AccumulatorState) -> Option<f64>| -> Vec<Option<f64>> {
            days.iter().map(|d| f(&d.fold.end_state)).collect()
        };
        sqlx::query(dialect::DAY_UPSERT_MANY)
            .bind(user)
            .bind(now)
            .bind(days.iter().map(|d| d.inverter).collect::<Vec<i64>>())
            .bind(days.iter().map(|d| d.day).collect::<Vec<NaiveDate>>())
            .bind(
                days.iter()
                    .map(|d| d.fold.totals.energy_wh)
                    .collect::<Vec<f64>>(),
            )
            .bind(
                days.iter()
                    .map(|d| d.fold.totals.peak_power_w)
                    .collect::<Vec<Option<f64>>>(),
            )
            .bind(days.iter().map(|d| d.fold.samples()).collect::<Vec<i64>>())
            .bind(
                days.iter()
                    .map(|d| d.fold.end_state.last_time.map(Ts::new))
                    .collect::<Vec<Option<Ts>>>(),
            )
            .bind(state(|s| s.last_power_w))
            .bind(state(|s| s.last_yield_day_wh))
            .bind(state(|s| s.last_yield_total_wh))
            .bind(state(|s| s.pending_yield_total_wh))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Sets the energy of 5-minute buckets (unique (inverter, bucket) keys), in one statement.
    async fn set_bucket_energies(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        buckets: &[BucketWrite],
    ) -> StoreResult<()> {
        if buckets.is_empty() {
            return Ok(());
        }
        sqlx::query(dialect::SET_BUCKET_ENERGY)
            .bind(user)
            .bind(buckets.iter().map(|b| b.inverter).collect::<Vec<i64>>())
            .bind(buckets.iter().map(|b| b.bucket).collect::<Vec<Ts>>())
            .bind(buckets.iter().map(|b| b.energy_wh).collect::<Vec<f64>>())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Stores the energy state of each target, in one statement.
    async fn update_states(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        targets: &[Target],
    ) -> StoreResult<()> {
        if targets.is_empty() {
            return Ok(());
        }
        let state = |f: fn(&AccumulatorState) -> Option<f64>| -> Vec<Option<f64>> {
            targets.iter().map(|t| f(&t.state)).collect()
        };
        sqlx::query(dialect::STATE_UPDATE_MANY)
            .bind(user)
            .bind(targets.iter().map(|t| t.inverter).collect::<Vec<i64>>())
            .bind(
                targets
                    .iter()
                    .map(|t| t.last_sample_time)
                    .collect::<Vec<Option<Ts>>>(),
            )
            .bind(
                targets
                    .iter()
                    .map(|t| t.state.last_time.map(Ts::new))
                    .collect::<Vec<Option<Ts>>>(),
            )
            .bind(state(|s| s.last_power_w))
            .bind(state(|s| s.last_yield_day_wh))
            .bind(state(|s| s.last_yield_total_wh))
            .bind(state(|s| s.pending_yield_total_wh))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

crate::common::upkeep::impl_energy_upkeep!(PgStore);

/// The AC rows as column arrays; returns the (inverter, time) keys actually inserted.
async fn insert_measurements(
    tx: &mut Transaction<'static, Db>,
    user: i64,
    items: &[Item<'_>],
) -> StoreResult<HashSet<(i64, Ts)>> {
    if items.is_empty() {
        return Ok(HashSet::new());
    }
    let column = |f: fn(&Reading) -> Option<f64>| -> Vec<Option<f64>> {
        items.iter().map(|i| finite(f(i.reading))).collect()
    };
    let keys: Vec<(i64, Ts)> = sqlx::query_as(dialect::INSERT_MEASUREMENTS)
        .bind(user)
        .bind(items.iter().map(|i| i.received_at).collect::<Vec<Ts>>())
        .bind(items.iter().map(|i| i.inverter).collect::<Vec<i64>>())
        .bind(items.iter().map(|i| i.time).collect::<Vec<Ts>>())
        .bind(column(|r| r.power_ac_w))
        .bind(column(|r| r.voltage_ac_v))
        .bind(column(|r| r.current_ac_a))
        .bind(column(|r| r.frequency_hz))
        .bind(column(|r| r.power_factor))
        .bind(column(|r| r.power_dc_w))
        .bind(column(|r| r.temperature_c))
        .bind(column(|r| r.yield_day_wh))
        .bind(column(|r| r.yield_total_wh))
        .bind(
            items
                .iter()
                .map(|i| i.reading.reachable)
                .collect::<Vec<bool>>(),
        )
        .bind(
            items
                .iter()
                .map(|i| i.reading.producing)
                .collect::<Vec<bool>>(),
        )
        .bind(
            items
                .iter()
                .map(|i| i.reading.source.as_str())
                .collect::<Vec<&str>>(),
        )
        .fetch_all(&mut **tx)
        .await?;
    Ok(keys.into_iter().collect())
}

/// The DC rows of the stored readings as column arrays; a channel repeated within a reading
/// keeps its first row.
async fn insert_dc(
    tx: &mut Transaction<'static, Db>,
    user: i64,
    stored: &[Item<'_>],
) -> StoreResult<()> {
    let rows: Vec<(&Item<'_>, &deyehard_core::DcReading)> = stored
        .iter()
        .flat_map(|item| first_of_each_channel(&item.reading.dc).map(move |dc| (item, dc)))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&deyehard_core::DcReading) -> Option<f64>| -> Vec<Option<f64>> {
        rows.iter().map(|(_, dc)| finite(f(dc))).collect()
    };
    sqlx::query(dialect::INSERT_DC)
        .bind(user)
        .bind(rows.iter().map(|(i, _)| i.inverter).collect::<Vec<i64>>())
        .bind(rows.iter().map(|(i, _)| i.time).collect::<Vec<Ts>>())
        .bind(
            rows.iter()
                .map(|(_, dc)| i16::from(dc.channel))
                .collect::<Vec<i16>>(),
        )
        .bind(
            rows.iter()
                .map(|(_, dc)| dc.name.as_deref())
                .collect::<Vec<Option<&str>>>(),
        )
        .bind(column(|dc| dc.power_w))
        .bind(column(|dc| dc.voltage_v))
        .bind(column(|dc| dc.current_a))
        .bind(column(|dc| dc.yield_day_wh))
        .bind(column(|dc| dc.yield_total_wh))
        .bind(column(|dc| dc.irradiation_pct))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The channels of a reading, each once (its first row): a reading holds a handful of channels.
fn first_of_each_channel(
    dc: &[deyehard_core::DcReading],
) -> impl Iterator<Item = &deyehard_core::DcReading> {
    dc.iter()
        .enumerate()
        .filter(|(n, row)| {
            !dc.iter()
                .take(*n)
                .any(|earlier| earlier.channel == row.channel)
        })
        .map(|(_, row)| row)
}

/// Adds the batch's deltas to both rollups and sets the bucket energies the in-order upkeep
/// moved: each touched row is written once (buckets with a new energy in one statement, the
/// others in another, the hourly rollup in a third).
async fn upsert_rollups(
    tx: &mut Transaction<'static, Db>,
    user: i64,
    five: &Deltas,
    hour: &Deltas,
    energies: &BucketEnergies,
) -> StoreResult<()> {
    let (with_energy, power_only) = shared::rollup_rows(five, energies);
    let (moved, energy): (Vec<RollupRow>, Vec<f64>) = with_energy.into_iter().unzip();
    let hour: Vec<RollupRow> = hour.iter().map(|(key, delta)| (*key, *delta)).collect();
    for (statement, rows, energy) in [
        (dialect::UPSERT_5M_ENERGY, moved, Some(energy)),
        (dialect::UPSERT_5M, power_only, None),
        (dialect::UPSERT_1H, hour, None),
    ] {
        if rows.is_empty() {
            continue;
        }
        let mut query = sqlx::query(statement)
            .bind(user)
            .bind(rows.iter().map(|r| r.0.0).collect::<Vec<i64>>())
            .bind(rows.iter().map(|r| r.0.1).collect::<Vec<Ts>>())
            .bind(rows.iter().map(|r| r.1.samples).collect::<Vec<i64>>())
            .bind(rows.iter().map(|r| r.1.power_sum).collect::<Vec<f64>>())
            .bind(
                rows.iter()
                    .map(|r| r.1.power_min)
                    .collect::<Vec<Option<f64>>>(),
            )
            .bind(
                rows.iter()
                    .map(|r| r.1.power_max)
                    .collect::<Vec<Option<f64>>>(),
            );
        if let Some(energy) = energy {
            query = query.bind(energy);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}
