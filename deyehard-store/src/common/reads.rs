//! Reading series and energy views, shared by both backends (see [`crate::common`]). The
//! series aggregation SQL differs per dialect (`dialect::SERIES_*`).

/// Expands `ReadingReader` for a backend store type.
macro_rules! impl_reads {
    ($store:ty) => {
        impl $store {
            /// [`StoreError::NotFound`](crate::StoreError::NotFound) unless the scope owns the
            /// inverter. Reads call it only when they found nothing, to tell "no data" from
            /// "not yours" (another tenant's rows never show up in the first place).
            async fn check_owned(
                tx: &mut sqlx::Transaction<'static, Db>,
                scope: &deyehard_core::TenantScope,
                inverter: deyehard_core::InverterId,
            ) -> $crate::StoreResult<()> {
                let found: Option<i64> = sqlx::query_scalar($crate::sql::INVERTER_OWNED)
                    .bind($crate::common::uid(scope))
                    .bind(inverter.get())
                    .fetch_optional(&mut **tx)
                    .await?;
                found.map(|_| ()).ok_or($crate::StoreError::NotFound)
            }
        }

        impl $crate::ReadingReader for $store {
            async fn latest_readings(
                &self,
                scope: &deyehard_core::TenantScope,
            ) -> $crate::StoreResult<Vec<$crate::LatestReading>> {
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let rows: Vec<$crate::rows::MeasurementRow> =
                    sqlx::query_as($crate::sql::LATEST_READINGS)
                        .bind($crate::common::uid(scope))
                        .fetch_all(&mut *tx)
                        .await?;
                tx.commit().await?;
                rows.into_iter()
                    .map(|row| {
                        let inverter_id = deyehard_core::InverterId::new(row.inverter_id);
                        let received_at = row.received_at.get();
                        Ok($crate::LatestReading {
                            inverter_id,
                            reading: row.into_reading()?,
                            received_at,
                        })
                    })
                    .collect()
            }

            async fn readings(
                &self,
                scope: &deyehard_core::TenantScope,
                inverter: deyehard_core::InverterId,
                from: chrono::DateTime<chrono::Utc>,
                to: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::StoreResult<Vec<deyehard_core::Reading>> {
                let user = $crate::common::uid(scope);
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let rows: Vec<$crate::rows::MeasurementRow> =
                    sqlx::query_as($crate::sql::READINGS_PAGE)
                        .bind(user)
                        .bind(inverter.get())
                        .bind($crate::ts::Ts::new(from))
                        .bind($crate::ts::Ts::new(to))
                        .bind($crate::common::limit(limit))
                        .fetch_all(&mut *tx)
                        .await?;
                let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
                    Self::check_owned(&mut tx, scope, inverter).await?;
                    tx.commit().await?;
                    return Ok(Vec::new());
                };
                let dc: Vec<$crate::rows::DcRow> = sqlx::query_as($crate::sql::DC_RANGE)
                    .bind(user)
                    .bind(inverter.get())
                    .bind(first.time)
                    .bind(last.time)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                let mut readings = rows
                    .into_iter()
                    .map($crate::rows::MeasurementRow::into_reading)
                    .collect::<$crate::StoreResult<Vec<_>>>()?;
                $crate::rows::attach_dc(&mut readings, dc)?;
                Ok(readings)
            }

            async fn power_series(
                &self,
                scope: &deyehard_core::TenantScope,
                inverter: deyehard_core::InverterId,
                from: chrono::DateTime<chrono::Utc>,
                to: chrono::DateTime<chrono::Utc>,
                max_points: u32,
            ) -> $crate::StoreResult<$crate::PowerSeries> {
                let plan = $crate::series::Plan::new(from, to, max_points, true)?;
                let sql = match plan.source {
                    $crate::series::Source::Raw => dialect::SERIES_RAW,
                    $crate::series::Source::Rollup5m => dialect::SERIES_5M,
                    $crate::series::Source::Rollup1h => dialect::SERIES_1H,
                };
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let rows: Vec<$crate::series::BucketRow> = sqlx::query_as(sql)
                    .bind($crate::common::uid(scope))
                    .bind(inverter.get())
                    .bind(plan.base)
                    .bind(plan.to)
                    .bind(plan.width_ms)
                    .fetch_all(&mut *tx)
                    .await?;
                if rows.is_empty() {
                    Self::check_owned(&mut tx, scope, inverter).await?;
                }
                tx.commit().await?;
                Ok($crate::PowerSeries {
                    bucket: plan.bucket(),
                    points: $crate::series::points(&plan, rows),
                })
            }

            async fn dc_series(
                &self,
                scope: &deyehard_core::TenantScope,
                inverter: deyehard_core::InverterId,
                from: chrono::DateTime<chrono::Utc>,
                to: chrono::DateTime<chrono::Utc>,
                max_points: u32,
            ) -> $crate::StoreResult<$crate::DcSeries> {
                let plan = $crate::series::Plan::new(from, to, max_points, false)?;
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let rows: Vec<$crate::series::ChannelBucketRow> =
                    sqlx::query_as(dialect::SERIES_DC)
                        .bind($crate::common::uid(scope))
                        .bind(inverter.get())
                        .bind(plan.base)
                        .bind(plan.to)
                        .bind(plan.width_ms)
                        .fetch_all(&mut *tx)
                        .await?;
                if rows.is_empty() {
                    Self::check_owned(&mut tx, scope, inverter).await?;
                }
                tx.commit().await?;
                Ok($crate::DcSeries {
                    bucket: plan.bucket(),
                    channels: $crate::series::channel_points(&plan, rows)?,
                })
            }

            async fn daily_energy(
                &self,
                scope: &deyehard_core::TenantScope,
                inverter: deyehard_core::InverterId,
                from_day: chrono::NaiveDate,
                to_day: chrono::NaiveDate,
            ) -> $crate::StoreResult<Vec<$crate::DailyEnergy>> {
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let rows: Vec<$crate::rows::DailyEnergyRow> =
                    sqlx::query_as($crate::sql::DAILY_RANGE)
                        .bind($crate::common::uid(scope))
                        .bind(inverter.get())
                        .bind(from_day)
                        .bind(to_day)
                        .fetch_all(&mut *tx)
                        .await?;
                if rows.is_empty() {
                    Self::check_owned(&mut tx, scope, inverter).await?;
                }
                tx.commit().await?;
                Ok(rows
                    .into_iter()
                    .map(|r| $crate::DailyEnergy {
                        day: r.day,
                        energy_wh: r.energy_wh,
                        peak_power_w: r.peak_power_w,
                        samples: r.samples,
                    })
                    .collect())
            }

            async fn energy_buckets(
                &self,
                scope: &deyehard_core::TenantScope,
                inverter: deyehard_core::InverterId,
                period: deyehard_core::energy::Period,
                date: chrono::NaiveDate,
            ) -> $crate::StoreResult<Vec<$crate::EnergyBucket>> {
                use $crate::common::energy;
                let user = $crate::common::uid(scope);
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                // the owner's zone; no row: not the scope's inverter
                let zone: Option<String> = sqlx::query_scalar($crate::sql::INVERTER_TIME_ZONE)
                    .bind(user)
                    .bind(inverter.get())
                    .fetch_optional(&mut *tx)
                    .await?;
                let tz = energy::parse_zone(&zone.ok_or($crate::StoreError::NotFound)?)?;
                let bars = if period == deyehard_core::energy::Period::Day {
                    // hourly bars from the 5-minute bucket energies
                    let hours = deyehard_core::energy::period_buckets(period, date, tz);
                    let (Some(first), Some(last)) = (hours.first(), hours.last()) else {
                        return Ok(Vec::new());
                    };
                    let last_bucket = last.end - chrono::TimeDelta::milliseconds(1);
                    let buckets: Vec<($crate::ts::Ts, f64)> =
                        sqlx::query_as($crate::sql::BUCKET_ENERGY_BETWEEN)
                            .bind(user)
                            .bind(inverter.get())
                            .bind($crate::ts::Ts::new(first.start))
                            .bind($crate::ts::Ts::new(last_bucket))
                            .fetch_all(&mut *tx)
                            .await?;
                    energy::hour_bars(&hours, &buckets)
                } else {
                    let (first, last) = energy::period_days(period, date, tz);
                    let rows: Vec<$crate::rows::DailyEnergyRow> =
                        sqlx::query_as($crate::sql::DAILY_RANGE)
                            .bind(user)
                            .bind(inverter.get())
                            .bind(first)
                            .bind(last)
                            .fetch_all(&mut *tx)
                            .await?;
                    energy::day_bars(rows, period, date, tz)
                };
                tx.commit().await?;
                Ok(bars)
            }

            async fn energy_summary(
                &self,
                scope: &deyehard_core::TenantScope,
                period: deyehard_core::energy::Period,
                date: chrono::NaiveDate,
            ) -> $crate::StoreResult<$crate::EnergySummary> {
                use $crate::common::energy;
                let user = $crate::common::uid(scope);
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let zone: String = sqlx::query_scalar($crate::sql::USER_TIME_ZONE)
                    .bind(user)
                    .fetch_one(&mut *tx)
                    .await?;
                let (first, last) = energy::period_days(period, date, energy::parse_zone(&zone)?);
                let rows: Vec<(i64, f64)> = sqlx::query_as($crate::sql::ENERGY_SUMMARY)
                    .bind(user)
                    .bind(first)
                    .bind(last)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                let total_wh = rows.iter().map(|(_, wh)| wh).sum();
                let per_inverter = rows
                    .into_iter()
                    .map(|(id, wh)| (deyehard_core::InverterId::new(id), wh))
                    .collect();
                Ok($crate::EnergySummary {
                    per_inverter,
                    total_wh,
                })
            }
        }
    };
}

pub(crate) use impl_reads;
