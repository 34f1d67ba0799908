//! `DashboardReader` for both backends (see [`crate::common`]); the statements are in
//! [`crate::common::dashboard_sql`] (`$sql` names the backend's dialect module there:
//! `sqlite_sql` / `pg_sql`), the pure steps in [`crate::common::dashboard`].

/// Expands `DashboardReader` for a backend store type. Relies on `check_owned` from
/// `impl_reads!`.
macro_rules! impl_dashboard {
    ($store:ty, $sql:path) => {
        impl $store {
            /// Statuses of the scope's inverters (all, or only `only`) at `now`.
            async fn dash_statuses(
                &self,
                scope: &deyehard_core::TenantScope,
                only: Option<deyehard_core::InverterId>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<Vec<$crate::InverterStatus>> {
                use $crate::common::dashboard as dash;
                let user = $crate::common::uid(scope);
                let only_id = only.map(|id| id.get());
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let zone: String = sqlx::query_scalar($crate::sql::USER_TIME_ZONE)
                    .bind(user)
                    .fetch_one(&mut *tx)
                    .await?;
                let tz = $crate::common::energy::parse_zone(&zone)?;
                let today = deyehard_core::energy::local_day(now, tz);
                let inverters: Vec<$crate::rows::InverterRow> = match only_id {
                    Some(id) => sqlx::query_as($crate::sql::INVERTER_BY_ID)
                        .bind(user)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .into_iter()
                        .collect(),
                    None => {
                        sqlx::query_as($crate::sql::INVERTERS)
                            .bind(user)
                            .fetch_all(&mut *tx)
                            .await?
                    }
                };
                if only.is_some() && inverters.is_empty() {
                    return Err($crate::StoreError::NotFound);
                }
                let mut parts = Self::dash_parts(&mut tx, user, only_id, today, now).await?;
                let mut statuses = Vec::with_capacity(inverters.len());
                for row in inverters {
                    let inverter = $crate::Inverter::try_from(row)?;
                    let id = inverter.id.get();
                    let reference = parts.reference_day(id);
                    let (times, span) =
                        Self::dash_history(&mut tx, user, id, reference, tz).await?;
                    let interval = dash::usual_interval(&times);
                    let daylight = dash::daylight(today, tz, span);
                    statuses.push(parts.status(inverter, today, interval, daylight));
                }
                tx.commit().await?;
                Ok(statuses)
            }

            /// The set-based figures of a status read (all inverters, or only `only_id`).
            async fn dash_parts(
                tx: &mut sqlx::Transaction<'static, Db>,
                user: i64,
                only_id: Option<i64>,
                today: chrono::NaiveDate,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<$crate::common::dashboard::StatusParts> {
                use $crate::common::dashboard as dash;
                let figures: Vec<dash::FiguresRow> =
                    sqlx::query_as($crate::common::dashboard_sql::STATUS_FIGURES)
                        .bind(user)
                        .bind(today)
                        .bind($crate::ts::Ts::new(
                            now - $crate::dashboard::STATUS_LOOKBACK,
                        ))
                        .bind(only_id)
                        .fetch_all(&mut **tx)
                        .await?;
                let last_hour: Vec<dash::LastHourRow> =
                    sqlx::query_as($crate::common::dashboard_sql::LAST_HOUR)
                        .bind(user)
                        .bind($crate::ts::Ts::new(now - chrono::TimeDelta::hours(1)))
                        .bind(only_id)
                        .fetch_all(&mut **tx)
                        .await?;
                let latest: Vec<$crate::rows::MeasurementRow> =
                    sqlx::query_as($crate::sql::LATEST_READINGS)
                        .bind(user)
                        .fetch_all(&mut **tx)
                        .await?;
                dash::StatusParts::new(figures, last_hour, latest)
            }

            /// The newest reading times of an inverter and its production span on `reference`.
            async fn dash_history(
                tx: &mut sqlx::Transaction<'static, Db>,
                user: i64,
                inverter: i64,
                reference: Option<chrono::NaiveDate>,
                tz: chrono_tz::Tz,
            ) -> $crate::StoreResult<(
                Vec<$crate::ts::Ts>,
                Option<($crate::ts::Ts, $crate::ts::Ts)>,
            )> {
                let times: Vec<$crate::ts::Ts> =
                    sqlx::query_scalar($crate::common::dashboard_sql::RECENT_TIMES)
                        .bind(user)
                        .bind(inverter)
                        .fetch_all(&mut **tx)
                        .await?;
                let Some(day) = reference else {
                    return Ok((times, None));
                };
                let (start, end) = $crate::common::energy::day_range(day, tz);
                let span: (Option<$crate::ts::Ts>, Option<$crate::ts::Ts>) =
                    sqlx::query_as($crate::common::dashboard_sql::PRODUCTION_SPAN)
                        .bind(user)
                        .bind(inverter)
                        .bind(start)
                        .bind(end)
                        .fetch_one(&mut **tx)
                        .await?;
                Ok((times, span.0.zip(span.1)))
            }

            /// The time of the DC rows the channel cards show: the newest reachable reading
            /// within the look-back, else the newest one.
            async fn dash_dc_time(
                tx: &mut sqlx::Transaction<'static, Db>,
                user: i64,
                inverter: i64,
                since: $crate::ts::Ts,
            ) -> $crate::StoreResult<Option<$crate::ts::Ts>> {
                let reachable: Option<$crate::ts::Ts> =
                    sqlx::query_scalar($crate::common::dashboard_sql::DC_NEWEST_REACHABLE)
                        .bind(user)
                        .bind(inverter)
                        .bind(since)
                        .fetch_optional(&mut **tx)
                        .await?;
                if reachable.is_some() {
                    return Ok(reachable);
                }
                Ok(sqlx::query_scalar($crate::common::dashboard_sql::DC_NEWEST)
                    .bind(user)
                    .bind(inverter)
                    .fetch_optional(&mut **tx)
                    .await?)
            }

            /// The DC rows at `time`.
            async fn dash_dc_at(
                tx: &mut sqlx::Transaction<'static, Db>,
                user: i64,
                inverter: i64,
                time: $crate::ts::Ts,
            ) -> $crate::StoreResult<Vec<$crate::common::dashboard::DcAtRow>> {
                Ok(sqlx::query_as($crate::common::dashboard_sql::DC_AT)
                    .bind(user)
                    .bind(inverter)
                    .bind(time)
                    .fetch_all(&mut **tx)
                    .await?)
            }
        }

        impl $crate::DashboardReader for $store {
            async fn inverter_statuses(
                &self,
                scope: &deyehard_core::TenantScope,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<Vec<$crate::InverterStatus>> {
                self.dash_statuses(scope, None, now).await
            }

            async fn inverter_status(
                &self,
                scope: &deyehard_core::TenantScope,
                inverter: deyehard_core::InverterId,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<$crate::InverterStatus> {
                let mut statuses = self.dash_statuses(scope, Some(inverter), now).await?;
                statuses.pop().ok_or($crate::StoreError::NotFound)
            }

            async fn summary_power(
                &self,
                scope: &deyehard_core::TenantScope,
                from: chrono::DateTime<chrono::Utc>,
                to: chrono::DateTime<chrono::Utc>,
                max_points: u32,
            ) -> $crate::StoreResult<$crate::SummaryPower> {
                use $crate::common::dashboard as dash;
                use $sql as dialect_sql;
                let plan = dash::summary_plan(from, to, max_points)?;
                let sql = match plan.source {
                    $crate::series::Source::Rollup1h => dialect_sql::SUMMARY_1H,
                    _ => dialect_sql::SUMMARY_5M,
                };
                let user = $crate::common::uid(scope);
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let ids: Vec<i64> = sqlx::query_scalar($crate::common::dashboard_sql::INVERTER_IDS)
                    .bind(user)
                    .fetch_all(&mut *tx)
                    .await?;
                let rows: Vec<dash::InverterBucketRow> = sqlx::query_as(sql)
                    .bind(user)
                    .bind(plan.base)
                    .bind(plan.to)
                    .bind(plan.width_ms)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(dash::summary_power(&plan, &ids, rows))
            }

            async fn summary_energy(
                &self,
                scope: &deyehard_core::TenantScope,
                period: deyehard_core::energy::Period,
                date: chrono::NaiveDate,
            ) -> $crate::StoreResult<$crate::SummaryEnergy> {
                use $crate::common::dashboard as dash;
                use $crate::common::energy;
                let user = $crate::common::uid(scope);
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let zone: String = sqlx::query_scalar($crate::sql::USER_TIME_ZONE)
                    .bind(user)
                    .fetch_one(&mut *tx)
                    .await?;
                let tz = energy::parse_zone(&zone)?;
                let ids: Vec<i64> = sqlx::query_scalar($crate::common::dashboard_sql::INVERTER_IDS)
                    .bind(user)
                    .fetch_all(&mut *tx)
                    .await?;
                let bars = if period == deyehard_core::energy::Period::Day {
                    let hours = deyehard_core::energy::period_buckets(period, date, tz);
                    let (first, last) = dash::hours_range(&hours);
                    let rows: Vec<(i64, $crate::ts::Ts, f64)> =
                        sqlx::query_as($crate::common::dashboard_sql::SUMMARY_BUCKET_ENERGY)
                            .bind(user)
                            .bind(first)
                            .bind(last)
                            .fetch_all(&mut *tx)
                            .await?;
                    let rows = rows.into_iter().map(|(id, b, wh)| (id, (b, wh)));
                    dash::group_by_inverter(&ids, rows)
                        .into_iter()
                        .map(|(id, buckets)| (id, energy::hour_bars(&hours, &buckets)))
                        .collect()
                } else {
                    let (first, last) = energy::period_days(period, date, tz);
                    let rows: Vec<dash::InverterDayRow> =
                        sqlx::query_as($crate::common::dashboard_sql::SUMMARY_DAYS)
                            .bind(user)
                            .bind(first)
                            .bind(last)
                            .fetch_all(&mut *tx)
                            .await?;
                    let rows = rows.into_iter().map(|r| (r.inverter_id, r.day));
                    dash::group_by_inverter(&ids, rows)
                        .into_iter()
                        .map(|(id, days)| (id, energy::day_bars(days, period, date, tz)))
                        .collect()
                };
                tx.commit().await?;
                Ok(dash::summary_energy(
                    dash::empty_bars(period, date, tz),
                    bars,
                ))
            }

            async fn dc_channels(
                &self,
                scope: &deyehard_core::TenantScope,
                inverter: deyehard_core::InverterId,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<Vec<$crate::DcChannelStatus>> {
                let user = $crate::common::uid(scope);
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let zone: Option<String> = sqlx::query_scalar($crate::sql::INVERTER_TIME_ZONE)
                    .bind(user)
                    .bind(inverter.get())
                    .fetch_optional(&mut *tx)
                    .await?;
                let zone = zone.ok_or($crate::StoreError::NotFound)?;
                let tz = $crate::common::energy::parse_zone(&zone)?;
                let since = $crate::ts::Ts::new(now - $crate::dashboard::STATUS_LOOKBACK);
                let Some(time) = Self::dash_dc_time(&mut tx, user, inverter.get(), since).await?
                else {
                    tx.commit().await?;
                    return Ok(Vec::new());
                };
                let rows = Self::dash_dc_at(&mut tx, user, inverter.get(), time).await?;
                tx.commit().await?;
                let today = deyehard_core::energy::local_day(now, tz);
                let from_today = deyehard_core::energy::local_day(time.get(), tz) == today;
                rows.into_iter()
                    .map(|row| $crate::common::dashboard::channel_status(row, time, from_today))
                    .collect()
            }

            async fn dc_metric_series(
                &self,
                scope: &deyehard_core::TenantScope,
                inverter: deyehard_core::InverterId,
                metric: $crate::DcMetric,
                from: chrono::DateTime<chrono::Utc>,
                to: chrono::DateTime<chrono::Utc>,
                max_points: u32,
            ) -> $crate::StoreResult<$crate::DcMetricSeries> {
                use $sql as dialect_sql;
                let plan = $crate::series::Plan::new(from, to, max_points, false)?;
                let user = $crate::common::uid(scope);
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let rows: Vec<$crate::series::ChannelBucketRow> =
                    sqlx::query_as(dialect_sql::dc_metric(metric))
                        .bind(user)
                        .bind(inverter.get())
                        .bind(plan.base)
                        .bind(plan.to)
                        .bind(plan.width_ms)
                        .fetch_all(&mut *tx)
                        .await?;
                if rows.is_empty() {
                    Self::check_owned(&mut tx, scope, inverter).await?;
                }
                let newest: Option<$crate::ts::Ts> =
                    sqlx::query_scalar($crate::common::dashboard_sql::DC_NEWEST)
                        .bind(user)
                        .bind(inverter.get())
                        .fetch_optional(&mut *tx)
                        .await?;
                let names = match newest {
                    Some(time) => Self::dash_dc_at(&mut tx, user, inverter.get(), time).await?,
                    None => Vec::new(),
                };
                tx.commit().await?;
                let channels = $crate::series::channel_points(&plan, rows)?;
                Ok($crate::common::dashboard::metric_series(
                    metric,
                    plan.bucket(),
                    channels,
                    names,
                ))
            }
        }
    };
}

pub(crate) use impl_dashboard;
