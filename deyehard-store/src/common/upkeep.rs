//! The database side of energy maintenance (see [`crate::common::energy`] for the rules), shared
//! by both backends. Each backend reads the stored days and bucket energies a batch continues
//! before the upkeep ([`StoredEnergy`](crate::common::energy::StoredEnergy)) and provides
//! `write_folds` (the days and bucket energies that folds touched).
//!
//! The days and bucket energies of the in-order inverters (the usual case), and the new energy
//! state of every inverter of the batch, are returned as an
//! [`Upkeep`](crate::common::energy::Upkeep) rather than written: the caller writes them with
//! the batch's other rows (PostgreSQL in one statement), so each touched row is written once.

/// Expands the energy upkeep methods for a backend store type.
macro_rules! impl_energy_upkeep {
    ($store:ty) => {
        impl $store {
            /// Maintains `daily_energy`, the bucket energies and `energy_state` for the items
            /// just stored. The inverters whose items are all newer than their stored samples
            /// (the usual case) continue `stored` (read by the caller, see
            /// [`stored_spans`](crate::common::energy::stored_spans)), and their days and bucket
            /// energies are returned for the caller to write, with every target's new state;
            /// each inverter with late items is recomputed and written on its own.
            async fn upkeep_energy(
                tx: &mut sqlx::Transaction<'static, Db>,
                user: i64,
                targets: Vec<$crate::common::energy::TargetRow>,
                stored: &[$crate::common::write::Item<'_>],
                energy: $crate::common::energy::StoredEnergy,
            ) -> $crate::StoreResult<$crate::common::energy::Upkeep> {
                let groups = $crate::common::write::by_inverter(stored);
                let mut in_order = Vec::new();
                let mut done = Vec::with_capacity(targets.len());
                for row in targets {
                    let Some(items) = groups.get(&row.inverter_id) else {
                        continue;
                    };
                    let mut target = $crate::common::energy::Target::try_from(row)?;
                    if target.in_order(items) {
                        in_order.push((target, items.as_slice()));
                    } else {
                        Self::energy_recompute(tx, user, &mut target, items).await?;
                        target.saw(items);
                        done.push(target);
                    }
                }
                let folds = Self::energy_in_order(&mut in_order, energy);
                for (mut target, items) in in_order {
                    target.saw(items);
                    done.push(target);
                }
                Ok($crate::common::energy::Upkeep {
                    folds,
                    states: done,
                })
            }

            /// Inverters whose items are all newer than anything stored: continue the stored
            /// totals of the days and buckets they touch; one fold per inverter (its new days
            /// and bucket energies).
            fn energy_in_order(
                batch: &mut [(
                    $crate::common::energy::Target,
                    &[$crate::common::write::Item<'_>],
                )],
                energy: $crate::common::energy::StoredEnergy,
            ) -> Vec<(i64, $crate::common::energy::Fold)> {
                use std::collections::HashMap;
                use $crate::common::energy;
                let mut days: HashMap<i64, Vec<energy::DayRow>> = HashMap::new();
                for row in energy.days {
                    days.entry(row.inverter_id).or_default().push(row.row);
                }
                let mut buckets: HashMap<i64, Vec<($crate::ts::Ts, f64)>> = HashMap::new();
                for (inverter, bucket, energy_wh) in energy.buckets {
                    buckets
                        .entry(inverter)
                        .or_default()
                        .push((bucket, energy_wh));
                }
                let mut folds = Vec::with_capacity(batch.len());
                for (target, items) in batch.iter_mut() {
                    let stored_days = days.remove(&target.inverter).unwrap_or_default();
                    let stored_buckets = buckets.remove(&target.inverter).unwrap_or_default();
                    let mut fold = energy::Fold::continuing(&stored_days, stored_buckets);
                    let samples = items.iter().map(energy::sample);
                    fold.run(&mut target.state, samples, target.tz, &target.rules);
                    folds.push((target.inverter, fold));
                }
                folds
            }

            /// Some items are older than stored samples: recompute day by day from the first
            /// late day until a day ends in the state it had before.
            async fn energy_recompute(
                tx: &mut sqlx::Transaction<'static, Db>,
                user: i64,
                target: &mut $crate::common::energy::Target,
                items: &[$crate::common::write::Item<'_>],
            ) -> $crate::StoreResult<()> {
                use $crate::common::energy;
                let (Some(first), Some(last)) = (items.first(), items.last()) else {
                    return Ok(());
                };
                let (first_day, last_new_day) = (target.day(first.time), target.day(last.time));
                let before: Option<energy::DayRow> = sqlx::query_as($crate::sql::DAY_ROW_BEFORE)
                    .bind(user)
                    .bind(target.inverter)
                    .bind(first_day)
                    .fetch_optional(&mut **tx)
                    .await?;
                let old: Vec<energy::DayRow> = sqlx::query_as($crate::sql::DAY_ROWS_FROM)
                    .bind(user)
                    .bind(target.inverter)
                    .bind(first_day)
                    .fetch_all(&mut **tx)
                    .await?;
                let entering = before.map(|d| d.end_state()).unwrap_or_default();
                let old_ends: std::collections::BTreeMap<_, _> =
                    old.iter().map(|d| (d.day, d.end_state())).collect();
                let mut state = entering.clone();
                let mut day = first_day;
                loop {
                    Self::recompute_day(tx, user, target, day, &mut state).await?;
                    let old_end = old_ends
                        .range(..=day)
                        .next_back()
                        .map_or(&entering, |(_, s)| s);
                    if day >= last_new_day && state == *old_end {
                        // later days start from the same state: unchanged, as is energy_state
                        return Ok(());
                    }
                    let (_, end) = energy::day_range(day, target.tz);
                    let next: Option<$crate::ts::Ts> = sqlx::query_scalar($crate::sql::NEXT_SAMPLE)
                        .bind(user)
                        .bind(target.inverter)
                        .bind(end)
                        .fetch_one(&mut **tx)
                        .await?;
                    match next {
                        Some(time) => day = target.day(time),
                        None => break,
                    }
                }
                target.state = state;
                Ok(())
            }

            /// Rewrites one local day (and its bucket energies) from its raw rows, starting from
            /// `state` (the accumulator at the end of the previous day), which it advances.
            async fn recompute_day(
                tx: &mut sqlx::Transaction<'static, Db>,
                user: i64,
                target: &$crate::common::energy::Target,
                day: chrono::NaiveDate,
                state: &mut deyehard_core::energy::AccumulatorState,
            ) -> $crate::StoreResult<()> {
                use $crate::common::energy;
                let (start, end) = energy::day_range(day, target.tz);
                let rows: Vec<energy::SampleRow> = sqlx::query_as($crate::sql::DAY_SAMPLES)
                    .bind(user)
                    .bind(target.inverter)
                    .bind(start)
                    .bind(end)
                    .fetch_all(&mut **tx)
                    .await?;
                let mut fold = energy::Fold::default();
                fold.run(
                    state,
                    rows.into_iter().map(Into::into),
                    target.tz,
                    &target.rules,
                );
                sqlx::query($crate::sql::ZERO_BUCKET_ENERGY)
                    .bind(user)
                    .bind(target.inverter)
                    .bind(start)
                    .bind(end)
                    .execute(&mut **tx)
                    .await?;
                Self::write_folds(tx, user, &[(target.inverter, fold)]).await
            }
        }
    };
}

pub(crate) use impl_energy_upkeep;
