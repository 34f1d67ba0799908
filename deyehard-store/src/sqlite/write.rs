//! `write_readings` on SQLite: one transaction on the single writer connection, rows written
//! and read with multi-row statements (each sqlx call crosses to the connection's worker
//! thread, so the number of statements, not of rows or inverters, dominates), rollups and energy
//! maintained in the same transaction.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use deyehard_core::energy::AccumulatorState;
use deyehard_core::{DcReading, InverterId, Reading, TenantScope};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{AssertSqlSafe, Encode, FromRow, Transaction, Type};

use super::dialect::{self, MultiRow};
use super::{Db, SqliteStore};
use crate::common::energy::{
    DayWrite, Fold, Span, StoredEnergy, Target, TargetRow, bucket_energies, day_writes,
    stored_spans,
};
use crate::common::write::{self as shared, BucketEnergies, Deltas, Item, WriteInput, finite};
use crate::common::{Access, uid};
use crate::model::WriteOutcome;
use crate::ts::Ts;
use crate::{ReadingWriter, StoreResult};

/// Rows per statement, largest first. Any row count splits into these sizes, so each table
/// needs at most eight statement texts, all of which stay in the connection's statement cache
/// (128 AC rows bind 2,048 parameters, far below SQLite's limit of 32,766).
const CHUNK_SIZES: [usize; 8] = [128, 64, 32, 16, 8, 4, 2, 1];

impl ReadingWriter for SqliteStore {
    async fn write_readings(
        &self,
        scope: &TenantScope,
        batch: &[(InverterId, Reading)],
        received_at: DateTime<Utc>,
    ) -> StoreResult<Vec<WriteOutcome>> {
        let inputs = shared::inputs(batch, Ts::new(received_at));
        let mut tx = self.begin_write(Access::Tenant(scope)).await?;
        let outcomes = Self::write_readings_in(&mut tx, uid(scope), &inputs).await?;
        tx.commit().await?;
        Ok(outcomes)
    }
}

impl SqliteStore {
    /// Writes readings of the tenant `user` inside `tx`: one outcome per input, in order.
    pub(crate) async fn write_readings_in(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        batch: &[WriteInput<'_>],
    ) -> StoreResult<Vec<WriteOutcome>> {
        let targets = write_targets(tx, user, &shared::inverter_ids(batch)).await?;
        let owned: HashSet<i64> = targets.iter().map(|t| t.inverter_id).collect();
        let (mut outcomes, items) = shared::prepare(batch, &owned);
        let inserted = insert_measurements(tx, user, &items).await?;
        let stored = shared::mark_stored(&mut outcomes, &items, &inserted);
        insert_dc(tx, user, &stored).await?;
        let energy = Self::stored_energy_in(tx, user, &stored).await?;
        let upkeep = Self::upkeep_energy(tx, user, targets, &stored, energy).await?;
        Self::upsert_days(tx, user, &day_writes(&upkeep.folds), Ts::now()).await?;
        Self::update_states(tx, user, &upkeep.states).await?;
        let (five, hour) = shared::power_deltas(&stored);
        upsert_rollups(tx, user, &five, &hour, &bucket_energies(&upkeep.folds)).await?;
        let seen: Vec<(i64, Ts)> = shared::seen_times(batch, &owned).into_iter().collect();
        for chunk in chunks(&seen) {
            let mut query =
                sqlx::query(AssertSqlSafe(multi_row(&dialect::TOUCH_MANY, chunk.len())));
            for (id, seen_at) in chunk {
                query = query.bind(*id).bind(*seen_at);
            }
            query.bind(user).execute(&mut **tx).await?;
        }
        Ok(outcomes)
    }

    /// The stored days and bucket energies that the stored items may continue
    /// ([`stored_spans`]).
    async fn stored_energy_in(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        stored: &[Item<'_>],
    ) -> StoreResult<StoredEnergy> {
        let (days, buckets) = stored_spans(stored);
        Ok(StoredEnergy {
            days: rows_in_spans(tx, &dialect::DAY_ROWS_IN, user, &days).await?,
            buckets: rows_in_spans(tx, &dialect::BUCKET_ENERGIES_IN, user, &buckets).await?,
        })
    }

    /// Writes the days and bucket energies the folds touched (one fold per inverter).
    async fn write_folds(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        folds: &[(i64, Fold)],
    ) -> StoreResult<()> {
        Self::upsert_days(tx, user, &day_writes(folds), Ts::now()).await?;
        Self::set_bucket_energies(tx, user, &bucket_energies(folds)).await
    }

    /// Writes `daily_energy` rows (unique (inverter, day) keys).
    async fn upsert_days(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        days: &[DayWrite<'_>],
        now: Ts,
    ) -> StoreResult<()> {
        for chunk in chunks(days) {
            let sql = multi_row(&dialect::DAY_UPSERT, chunk.len());
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for d in chunk {
                query = query
                    .bind(d.inverter)
                    .bind(d.day)
                    .bind(user)
                    .bind(d.fold.totals.energy_wh)
                    .bind(d.fold.totals.peak_power_w)
                    .bind(d.fold.samples());
                query = bind_state(query, &d.fold.end_state).bind(now);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Sets the energy of 5-minute buckets (unique (inverter, bucket) keys).
    async fn set_bucket_energies(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        buckets: &BucketEnergies,
    ) -> StoreResult<()> {
        let buckets: Vec<((i64, Ts), f64)> = buckets.iter().map(|(k, e)| (*k, *e)).collect();
        for chunk in chunks(&buckets) {
            let mut query = sqlx::query(AssertSqlSafe(multi_row(
                &dialect::SET_BUCKET_ENERGY,
                chunk.len(),
            )));
            for ((inverter, bucket), energy_wh) in chunk {
                query = query
                    .bind(*inverter)
                    .bind(*bucket)
                    .bind(user)
                    .bind(*energy_wh);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Stores the energy state of each target.
    async fn update_states(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        targets: &[Target],
    ) -> StoreResult<()> {
        for chunk in chunks(targets) {
            let sql = multi_row(&dialect::STATE_UPDATE, chunk.len());
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for t in chunk {
                query = bind_state(query.bind(t.inverter).bind(t.last_sample_time), &t.state);
            }
            query.bind(user).execute(&mut **tx).await?;
        }
        Ok(())
    }
}

crate::common::upkeep::impl_energy_upkeep!(SqliteStore);

/// Binds the five columns of an energy state, in the order of the `daily_energy` and
/// `energy_state` tables: last time, power, day yield, total yield and pending total.
fn bind_state<'q>(
    query: Query<'q, Db, SqliteArguments>,
    state: &AccumulatorState,
) -> Query<'q, Db, SqliteArguments> {
    query
        .bind(state.last_time.map(Ts::new))
        .bind(state.last_power_w)
        .bind(state.last_yield_day_wh)
        .bind(state.last_yield_total_wh)
        .bind(state.pending_yield_total_wh)
}

/// The rows of each span: `statement`'s row template takes a span's inverter, first and last
/// key, its tail the tenant.
async fn rows_in_spans<K, R>(
    tx: &mut Transaction<'static, Db>,
    statement: &MultiRow,
    user: i64,
    spans: &[Span<K>],
) -> StoreResult<Vec<R>>
where
    K: Copy + Send + 'static + for<'q> Encode<'q, Db> + Type<Db>,
    R: for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
{
    let mut rows = Vec::new();
    for chunk in chunks(spans) {
        let sql = multi_row(statement, chunk.len());
        let mut query = sqlx::query_as::<_, R>(AssertSqlSafe(sql));
        for span in chunk {
            query = query.bind(span.inverter).bind(span.first).bind(span.last);
        }
        rows.extend(query.bind(user).fetch_all(&mut **tx).await?);
    }
    Ok(rows)
}

/// The statement for `rows` rows: head, the row template repeated, tail. The parameters stay
/// anonymous `?` (bound in order): SQLite resolves a numbered `$n` through a linear list,
/// which makes binding a statement with thousands of numbered parameters quadratic.
pub(super) fn multi_row(statement: &MultiRow, rows: usize) -> String {
    let mut sql = String::with_capacity(
        statement.head.len() + statement.tail.len() + rows * (statement.row.len() + 2) + 8,
    );
    sql.push_str(statement.head);
    sql.push_str(" VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(statement.row);
    }
    sql.push(' ');
    sql.push_str(statement.tail);
    sql
}

/// Splits rows into slices of [`CHUNK_SIZES`], largest first.
pub(super) fn chunks<T>(rows: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut rest = rows;
    for size in CHUNK_SIZES {
        while rest.len() >= size {
            let (chunk, tail) = rest.split_at(size);
            out.push(chunk);
            rest = tail;
        }
    }
    out
}

/// The write targets among `ids` (ascending) that belong to the scope.
async fn write_targets(
    tx: &mut Transaction<'static, Db>,
    user: i64,
    ids: &[i64],
) -> StoreResult<Vec<TargetRow>> {
    let mut targets = Vec::with_capacity(ids.len());
    for chunk in chunks(ids) {
        let sql = multi_row(&dialect::WRITE_TARGETS, chunk.len());
        let mut query = sqlx::query_as::<_, TargetRow>(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        targets.extend(query.bind(user).fetch_all(&mut **tx).await?);
    }
    Ok(targets)
}

/// Inserts the AC rows; returns the (inverter, time) keys actually inserted.
async fn insert_measurements(
    tx: &mut Transaction<'static, Db>,
    user: i64,
    items: &[Item<'_>],
) -> StoreResult<HashSet<(i64, Ts)>> {
    let mut inserted = HashSet::with_capacity(items.len());
    for chunk in chunks(items) {
        let sql = multi_row(&dialect::MEASUREMENTS, chunk.len());
        let mut query = sqlx::query_as::<_, (i64, Ts)>(AssertSqlSafe(sql));
        for item in chunk {
            let r = item.reading;
            query = query
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
                .bind(item.received_at);
        }
        inserted.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(inserted)
}

/// Inserts the DC rows of the stored readings.
async fn insert_dc(
    tx: &mut Transaction<'static, Db>,
    user: i64,
    stored: &[Item<'_>],
) -> StoreResult<()> {
    let rows: Vec<(&Item<'_>, &DcReading)> = stored
        .iter()
        .flat_map(|item| item.reading.dc.iter().map(move |dc| (item, dc)))
        .collect();
    for chunk in chunks(&rows) {
        let sql = multi_row(&dialect::DC_MEASUREMENTS, chunk.len());
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (item, dc) in chunk {
            query = query
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
                .bind(finite(dc.irradiation_pct));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Adds the batch's power deltas to the 5-minute and hourly rollups and sets the bucket
/// energies the in-order upkeep moved: each touched row is written once.
async fn upsert_rollups(
    tx: &mut Transaction<'static, Db>,
    user: i64,
    five: &Deltas,
    hour: &Deltas,
    energies: &BucketEnergies,
) -> StoreResult<()> {
    let (with_energy, power_only) = shared::rollup_rows(five, energies);
    for chunk in chunks(&with_energy) {
        let mut query = sqlx::query(AssertSqlSafe(multi_row(
            &dialect::UPSERT_5M_ENERGY,
            chunk.len(),
        )));
        for (((inverter, bucket), delta), energy_wh) in chunk {
            query = query
                .bind(*inverter)
                .bind(*bucket)
                .bind(user)
                .bind(delta.samples)
                .bind(delta.power_sum)
                .bind(delta.power_min)
                .bind(delta.power_max)
                .bind(*energy_wh);
        }
        query.execute(&mut **tx).await?;
    }
    let hour: Vec<_> = hour.iter().map(|(key, delta)| (*key, *delta)).collect();
    for (statement, rows) in [
        (&dialect::UPSERT_5M, power_only),
        (&dialect::UPSERT_1H, hour),
    ] {
        for chunk in chunks(&rows) {
            let mut query = sqlx::query(AssertSqlSafe(multi_row(statement, chunk.len())));
            for ((inverter, bucket), delta) in chunk {
                query = query
                    .bind(*inverter)
                    .bind(*bucket)
                    .bind(user)
                    .bind(delta.samples)
                    .bind(delta.power_sum)
                    .bind(delta.power_min)
                    .bind(delta.power_max);
            }
            query.execute(&mut **tx).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_split_into_cached_chunk_sizes() {
        let rows: Vec<u32> = (0..203).collect();
        let sizes: Vec<usize> = chunks(&rows).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [128, 64, 8, 2, 1]);
        assert_eq!(chunks(&rows).concat(), rows);
    }

    #[test]
    fn multi_row_repeats_the_row() {
        let statement = MultiRow {
            head: "INSERT INTO t (a, b, c)",
            row: "(?, 0, ?)",
            tail: "ON CONFLICT DO NOTHING",
        };
        assert_eq!(
            multi_row(&statement, 2),
            "INSERT INTO t (a, b, c) VALUES (?, 0, ?), (?, 0, ?) ON CONFLICT DO NOTHING"
        );
    }
}
