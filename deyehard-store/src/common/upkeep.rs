//! The database side of energy maintenance (see [`crate::common::energy`] for the rules), shared
//! by both backends. Each backend provides `set_bucket_energy(tx, user, inverter, buckets)`.

/// Expands the energy upkeep methods for a backend store type.
macro_rules! impl_energy_upkeep {
    ($store:ty) => {
        impl $store {
            /// Maintains `daily_energy`, the bucket energies and `energy_state` for the items
            /// just stored, inverter by inverter.
            async fn upkeep_energy(
                tx: &mut sqlx::Transaction<'static, Db>,
                user: i64,
                targets: Vec<$crate::common::energy::TargetRow>,
                stored: &[$crate::common::write::Item<'_>],
            ) -> $crate::StoreResult<()> {
                let groups = $crate::common::write::by_inverter(stored);
                for row in targets {
                    let Some(items) = groups.get(&row.inverter_id) else {
                        continue;
                    };
                    let mut target = $crate::common::energy::Target::try_from(row)?;
                    if target.in_order(items) {
                        Self::energy_in_order(tx, user, &mut target, items).await?;
                    } else {
                        Self::energy_recompute(tx, user, &mut target, items).await?;
                    }
                    target.saw(items);
                    let state = &target.state;
                    sqlx::query($crate::sql::STATE_UPDATE)
                        .bind(user)
                        .bind(target.inverter)
                        .bind(target.last_sample_time)
                        .bind(state.last_time.map($crate::ts::Ts::new))
                        .bind(state.last_power_w)
                        .bind(state.last_yield_day_wh)
                        .bind(state.last_yield_total_wh)
                        .bind(state.pending_yield_total_wh)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            /// All items are newer than anything stored: continue the stored totals.
            async fn energy_in_order(
                tx: &mut sqlx::Transaction<'static, Db>,
                user: i64,
                target: &mut $crate::common::energy::Target,
                items: &[$crate::common::write::Item<'_>],
            ) -> $crate::StoreResult<()> {
                use $crate::common::energy;
                let (Some(first), Some(last), Some((first_bucket, last_bucket))) =
                    (items.first(), items.last(), energy::bucket_range(items))
                else {
                    return Ok(());
                };
                let days: Vec<energy::DayRow> = sqlx::query_as($crate::sql::DAY_ROWS_RANGE)
                    .bind(user)
                    .bind(target.inverter)
                    .bind(target.day(first.time))
                    .bind(target.day(last.time))
                    .fetch_all(&mut **tx)
                    .await?;
                let buckets: Vec<($crate::ts::Ts, f64)> =
                    sqlx::query_as($crate::sql::BUCKET_ENERGY_BETWEEN)
                        .bind(user)
                        .bind(target.inverter)
                        .bind(first_bucket)
                        .bind(last_bucket)
                        .fetch_all(&mut **tx)
                        .await?;
                let mut fold = energy::Fold::continuing(&days, buckets);
                let samples = items.iter().map(energy::sample);
                fold.run(&mut target.state, samples, target.tz, &target.rules);
                Self::write_fold(tx, user, target.inverter, &fold).await
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
                Self::write_fold(tx, user, target.inverter, &fold).await
            }

            /// Writes the days and bucket energies a fold touched.
            async fn write_fold(
                tx: &mut sqlx::Transaction<'static, Db>,
                user: i64,
                inverter: i64,
                fold: &$crate::common::energy::Fold,
            ) -> $crate::StoreResult<()> {
                let now = $crate::ts::Ts::now();
                for (day, folded) in &fold.days {
                    let end = &folded.end_state;
                    sqlx::query($crate::sql::DAY_UPSERT)
                        .bind(inverter)
                        .bind(*day)
                        .bind(user)
                        .bind(folded.totals.energy_wh)
                        .bind(folded.totals.peak_power_w)
                        .bind(folded.samples())
                        .bind(end.last_time.map($crate::ts::Ts::new))
                        .bind(end.last_power_w)
                        .bind(end.last_yield_day_wh)
                        .bind(end.last_yield_total_wh)
                        .bind(end.pending_yield_total_wh)
                        .bind(now)
                        .execute(&mut **tx)
                        .await?;
                }
                Self::set_bucket_energy(tx, user, inverter, &fold.buckets).await
            }
        }
    };
}

pub(crate) use impl_energy_upkeep;
