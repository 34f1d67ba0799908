//! `write_readings` on PostgreSQL: one transaction of four round trips whatever the batch size:
//! `BEGIN` with the settings and the lock of the batch's targets ([`dialect::lock_targets`]);
//! the reads and the AC rows ([`dialect::WRITE_START`]); everything else ([`dialect::WRITE_REST`]);
//! `COMMIT`. Each statement is an `INSERT … SELECT FROM UNNEST($arrays)` or a join of such arrays
//! to the tables by primary key. Only an inverter with items older than its stored samples costs
//! more (its days are recomputed on their own). The batch's inverters are locked first, so
//! concurrent writers of one inverter serialize, and the later statements' snapshots see all
//! that earlier writers of these inverters committed.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use deyehard_core::energy::AccumulatorState;
use deyehard_core::{DcReading, InverterId, Reading, TenantScope};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{FromRow, Row, Transaction};

use super::{Db, PgStore, dialect};
use crate::common::energy::{
    DayWrite, Fold, InverterDayRow, Span, StoredEnergy, Target, TargetRow, bucket_energies,
    day_writes, stored_spans,
};
use crate::common::write::{self as shared, Item, RollupRow, WriteInput, finite};
use crate::common::{Access, uid};
use crate::model::WriteOutcome;
use crate::ts::Ts;
use crate::{ReadingWriter, StoreResult};

/// Planner settings of the write transaction. Its statements join the batch's arrays (a few
/// hundred rows at most) to the tables by primary key, and must not depend on the tables'
/// statistics: before autovacuum's first `ANALYZE` (a fresh database, or a tenant that just
/// added thousands of inverters) a plan made for the parameter values may scan the whole table,
/// or all of the tenant's rows, for every row of the batch. Measured: a batch's bucket read took
/// 40 ms instead of 0.1 ms; the `last_seen_at` update of 64 inverters of a tenant with 4,000
/// took 7 ms (the tenant's rows materialized and joined to each id) instead of 0.7 ms. So scans
/// and hash and merge joins are ruled out, and the plan is the generic one (made once per
/// connection, without the values, which probes the keys). Memoize is off too: the batch's keys
/// are unique, so its cache would never hit. (The tenant's `inverters` rows are reached by id
/// whatever the statistics say: see `dialect::same_tenant!`.)
const INDEX_LOOKUPS_ONLY: &str = ", set_config('enable_seqscan', 'off', true), \
     set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true), \
     set_config('enable_memoize', 'off', true), \
     set_config('plan_cache_mode', 'force_generic_plan', true)";

impl ReadingWriter for PgStore {
    async fn write_readings(
        &self,
        scope: &TenantScope,
        batch: &[(InverterId, Reading)],
        received_at: DateTime<Utc>,
    ) -> StoreResult<Vec<WriteOutcome>> {
        let inputs = shared::inputs(batch, Ts::new(received_at));
        let user = uid(scope);
        let ids = shared::inverter_ids(&inputs);
        let lock = dialect::lock_targets(user, &ids);
        let mut tx = self
            .begin_with_settings(Access::Tenant(scope), INDEX_LOOKUPS_ONLY, &lock)
            .await?;
        let outcomes = Self::write_locked(&mut tx, user, &inputs, ids).await?;
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
        let ids = shared::inverter_ids(batch);
        sqlx::raw_sql(sqlx::AssertSqlSafe(dialect::lock_targets(user, &ids)))
            .execute(&mut **tx)
            .await?;
        Self::write_locked(tx, user, batch, ids).await
    }

    /// [`Self::write_readings_in`] once the batch's targets, among its inverters `ids`
    /// ([`shared::inverter_ids`]), are locked ([`dialect::lock_targets`]).
    async fn write_locked(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        batch: &[WriteInput<'_>],
        ids: Vec<i64>,
    ) -> StoreResult<Vec<WriteOutcome>> {
        let start = write_start(tx, user, batch, ids).await?;
        let owned: HashSet<i64> = start.targets.iter().map(|t| t.inverter_id).collect();
        let (mut outcomes, items) = shared::prepare(batch, &owned);
        let stored = shared::mark_stored(&mut outcomes, &items, &start.inserted);
        let upkeep = Self::upkeep_energy(tx, user, start.targets, &stored, start.energy).await?;
        let seen = shared::seen_times(batch, &owned);
        write_rest(tx, user, &stored, &upkeep.folds, &upkeep.states, &seen).await?;
        Ok(outcomes)
    }

    /// Writes the days and bucket energies the folds touched (one fold per inverter), in one
    /// statement ([`write_rest`] with nothing else to write: the buckets get their energy and
    /// no power delta).
    async fn write_folds(
        tx: &mut Transaction<'static, Db>,
        user: i64,
        folds: &[(i64, Fold)],
    ) -> StoreResult<()> {
        write_rest(tx, user, &[], folds, &[], &BTreeMap::new()).await
    }
}

crate::common::upkeep::impl_energy_upkeep!(PgStore);

/// What [`write_start`] read and inserted.
struct Start {
    /// The batch's inverters that belong to the tenant, with their energy bookkeeping.
    targets: Vec<TargetRow>,
    /// The (inverter, time) keys of the AC rows inserted.
    inserted: HashSet<(i64, Ts)>,
    /// The stored rows the items may continue.
    energy: StoredEnergy,
}

/// Reads the targets among the batch's inverters `ids`, inserts the AC rows of the targets'
/// items and reads the stored energy they may continue, in one statement
/// ([`dialect::WRITE_START`]). The items of inverters outside the tenant are sent too (the
/// statement keeps the targets' only, and the caller sorts the outcomes once it knows them), so
/// that all of it takes one round trip.
async fn write_start(
    tx: &mut Transaction<'static, Db>,
    user: i64,
    batch: &[WriteInput<'_>],
    ids: Vec<i64>,
) -> StoreResult<Start> {
    let (_, items) = shared::prepare(batch, &ids.iter().copied().collect());
    let (day_spans, bucket_spans) = stored_spans(&items);
    let column = |f: fn(&Reading) -> Option<f64>| -> Vec<Option<f64>> {
        items.iter().map(|i| finite(f(i.reading))).collect()
    };
    let query = sqlx::query(dialect::WRITE_START)
        .bind(user)
        .bind(ids)
        // AC rows: $3–$17
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
        );
    // day spans: $18–$20, bucket spans: $21–$23
    let rows = bind_spans(bind_spans(query, &day_spans), &bucket_spans)
        .fetch_all(&mut **tx)
        .await?;
    let mut start = Start {
        targets: Vec::new(),
        inserted: HashSet::with_capacity(items.len()),
        energy: StoredEnergy::default(),
    };
    for row in rows {
        match row.try_get::<i32, _>("kind")? {
            0 => start.targets.push(TargetRow::from_row(&row)?),
            1 => {
                start
                    .inserted
                    .insert((row.try_get("inverter_id")?, row.try_get("time")?));
            }
            2 => start.energy.days.push(InverterDayRow::from_row(&row)?),
            _ => start.energy.buckets.push((
                row.try_get("inverter_id")?,
                row.try_get("time")?,
                row.try_get("energy_wh")?,
            )),
        }
    }
    Ok(start)
}

/// Binds the inverters, first keys and last keys of spans (three arrays).
fn bind_spans<'q, K>(
    query: Query<'q, Db, PgArguments>,
    spans: &[Span<K>],
) -> Query<'q, Db, PgArguments>
where
    K: Copy,
    Vec<K>: for<'e> sqlx::Encode<'e, Db> + sqlx::Type<Db> + Send + 'q,
{
    query
        .bind(spans.iter().map(|s| s.inverter).collect::<Vec<i64>>())
        .bind(spans.iter().map(|s| s.first).collect::<Vec<K>>())
        .bind(spans.iter().map(|s| s.last).collect::<Vec<K>>())
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

/// Writes the rest of a batch after its reads, in one statement ([`dialect::WRITE_REST`]): the
/// DC rows of the stored readings (a channel repeated within a reading keeps its first row),
/// the days and bucket energies of the folds and the energy states, both rollups (each touched
/// bucket written once: those whose energy a fold moved with it, the others with their power
/// deltas alone) and `last_seen_at`.
async fn write_rest(
    tx: &mut Transaction<'static, Db>,
    user: i64,
    stored: &[Item<'_>],
    folds: &[(i64, Fold)],
    states: &[Target],
    seen: &BTreeMap<i64, Ts>,
) -> StoreResult<()> {
    let dc: Vec<(&Item<'_>, &DcReading)> = stored
        .iter()
        .flat_map(|item| first_of_each_channel(&item.reading.dc).map(move |dc| (item, dc)))
        .collect();
    let dc_column = |f: fn(&DcReading) -> Option<f64>| -> Vec<Option<f64>> {
        dc.iter().map(|(_, row)| finite(f(row))).collect()
    };
    let days = day_writes(folds);
    let state = |f: fn(&AccumulatorState) -> Option<f64>| -> Vec<Option<f64>> {
        states.iter().map(|t| f(&t.state)).collect()
    };
    let (five, hour) = shared::power_deltas(stored);
    let (with_energy, power_only) = shared::rollup_rows(&five, &bucket_energies(folds));
    let (moved, energy): (Vec<RollupRow>, Vec<f64>) = with_energy.into_iter().unzip();
    let hour: Vec<RollupRow> = hour.into_iter().collect();
    let query = sqlx::query(dialect::WRITE_REST)
        .bind(user)
        // dc: $2–$11
        .bind(dc.iter().map(|(i, _)| i.inverter).collect::<Vec<i64>>())
        .bind(dc.iter().map(|(i, _)| i.time).collect::<Vec<Ts>>())
        .bind(
            dc.iter()
                .map(|(_, row)| i16::from(row.channel))
                .collect::<Vec<i16>>(),
        )
        .bind(
            dc.iter()
                .map(|(_, row)| row.name.as_deref())
                .collect::<Vec<Option<&str>>>(),
        )
        .bind(dc_column(|row| row.power_w))
        .bind(dc_column(|row| row.voltage_v))
        .bind(dc_column(|row| row.current_a))
        .bind(dc_column(|row| row.yield_day_wh))
        .bind(dc_column(|row| row.yield_total_wh))
        .bind(dc_column(|row| row.irradiation_pct));
    // days: $12–$22
    let query = bind_days(query, &days, Ts::now())
        // states: $23–$29
        .bind(states.iter().map(|t| t.inverter).collect::<Vec<i64>>())
        .bind(
            states
                .iter()
                .map(|t| t.last_sample_time)
                .collect::<Vec<Option<Ts>>>(),
        )
        .bind(
            states
                .iter()
                .map(|t| t.state.last_time.map(Ts::new))
                .collect::<Vec<Option<Ts>>>(),
        )
        .bind(state(|s| s.last_power_w))
        .bind(state(|s| s.last_yield_day_wh))
        .bind(state(|s| s.last_yield_total_wh))
        .bind(state(|s| s.pending_yield_total_wh));
    // five_energy: $30–$36, five: $37–$42, hour: $43–$48
    let query = bind_rollup(query, &moved).bind(energy);
    let query = bind_rollup(bind_rollup(query, &power_only), &hour);
    // last_seen_at: $49–$50
    query
        .bind(seen.keys().copied().collect::<Vec<i64>>())
        .bind(seen.values().copied().collect::<Vec<Ts>>())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Binds `updated_at` and the columns of `daily_energy` rows (ten arrays).
fn bind_days<'q>(
    query: Query<'q, Db, PgArguments>,
    days: &[DayWrite<'_>],
    now: Ts,
) -> Query<'q, Db, PgArguments> {
    let state = |f: fn(&AccumulatorState) -> Option<f64>| -> Vec<Option<f64>> {
        days.iter().map(|d| f(&d.fold.end_state)).collect()
    };
    query
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
}

/// Binds the key and power-delta columns of rollup rows (six arrays).
fn bind_rollup<'q>(
    query: Query<'q, Db, PgArguments>,
    rows: &[RollupRow],
) -> Query<'q, Db, PgArguments> {
    query
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
        )
}

#[cfg(test)]
mod tests {
    use deyehard_core::UserId;

    use super::*;
    use crate::model::StoreOptions;
    use crate::pg::TestDatabase;

    /// The generic plan of `sql` (its `$1` the tenant, the other parameters NULL; or its only
    /// plan if it has none) in a write transaction of `scope` (the settings of
    /// [`ReadingWriter::write_readings`]).
    async fn generic_plan(store: &PgStore, scope: &TenantScope, sql: &str) -> String {
        let params = (1..100)
            .take_while(|n| sql.contains(&format!("${n}")))
            .map(|n| {
                if n == 1 {
                    uid(scope).to_string()
                } else {
                    "NULL".to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut tx = store
            .begin_with_settings(Access::Tenant(scope), INDEX_LOOKUPS_ONLY, "")
            .await
            .expect("begin");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE w AS {sql}")))
            .execute(&mut *tx)
            .await
            .expect("prepare");
        let execute = if params.is_empty() {
            "EXPLAIN EXECUTE w".to_owned()
        } else {
            format!("EXPLAIN EXECUTE w({params})")
        };
        let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(execute))
            .fetch_all(&mut *tx)
            .await
            .expect("explain");
        // Not transactional: the pooled connection must not keep it.
        sqlx::raw_sql("DEALLOCATE w")
            .execute(&mut *tx)
            .await
            .expect("deallocate");
        tx.rollback().await.expect("rollback");
        lines.join("\n")
    }

    /// On a database whose statistics were never gathered, with tenants of hundreds of
    /// inverters, the write statements (the lock among them, planned with its values) probe
    /// `inverters` by id instead of reading all of a tenant's rows through `inverters_user_idx`
    /// (see `dialect::same_tenant!`).
    #[tokio::test]
    async fn write_plans_reach_inverters_by_id() {
        let db = TestDatabase::create("plan").await;
        let store = PgStore::connect(&db.url, &StoreOptions::default())
            .await
            .expect("migrate");
        // As the login role, outside any tenant: three tenants of 300 inverters, no ANALYZE.
        sqlx::raw_sql(
            "INSERT INTO users (email, password_hash, time_zone, created_at) \
             SELECT 'u' || n || '@example.com', 'x', 'UTC', now() FROM generate_series(1, 3) n; \
             INSERT INTO inverters (user_id, name, kind, serial, created_at) \
             SELECT 1 + n % 3, 'i', 'opendtu', 's' || n, now() FROM generate_series(1, 900) n",
        )
        .execute(&store.pool)
        .await
        .expect("provision");
        let scope = TenantScope::for_tests(UserId::new(1));
        let lock = dialect::lock_targets(1, &[1, 4, 7]);
        let mut plans = Vec::new();
        for sql in [
            lock.as_str(),
            dialect::WRITE_START,
            dialect::WRITE_REST,
            dialect::TOUCH_MANY,
        ] {
            plans.push(generic_plan(&store, &scope, sql).await);
        }
        store.pool.close().await;
        drop(db);
        for plan in plans {
            assert!(plan.contains("inverters i"), "{plan}");
            assert!(!plan.contains("inverters_user_idx"), "{plan}");
        }
    }
}
