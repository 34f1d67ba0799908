//! The dashboard API: live status (`/summary`, `/inverters/{id}/stats`), energy bars
//! (`/inverters/{id}/energy`, `/summary/energy`) and chart series (`/inverters/{id}/power`,
//! `/inverters/{id}/dc`, `/summary/power`) in the chart format of `web/README.md`.
//!
//! Everything is read in the caller's time zone. Another tenant's inverter id answers 404,
//! exactly like a missing one. The views and their builders are in `dashboard_views`.

use chrono::{NaiveDate, Utc};
use deyehard_core::InverterId;
use deyehard_core::energy::Period;
use deyehard_store::{DashboardReader, DcMetric, InverterStore, ReadingReader};
use poem::Request;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;

use super::charts::{self, ChartData};
pub use super::dashboard_views::{
    DcChannel, EnergyBar, EnergyView, InverterEnergy, InverterLive, SummaryEnergyView, SummaryView,
    energy_view, summary_energy_view, summary_view,
};
use super::ranges::{self, Range};
use crate::error::ApiError;
use crate::http::AppState;
use crate::layout::Lang;
use crate::session::{Authenticated, SessionAuth};

/// The dashboard endpoints.
pub struct DashboardApi;

/// The caller's language for chart labels.
fn lang(req: &Request, auth: &Authenticated) -> Lang {
    crate::pages::page_lang(req, Some(&auth.user))
}

fn range(
    auth: &Authenticated,
    from: Option<String>,
    to: Option<String>,
    points: Option<u32>,
) -> Result<Range, ApiError> {
    let tz = ranges::user_zone(&auth.user.time_zone);
    ranges::resolve_range(from.as_deref(), to.as_deref(), points, tz, Utc::now())
}

fn period_and_date(
    auth: &Authenticated,
    period: Option<String>,
    date: Option<String>,
) -> Result<(Period, NaiveDate), ApiError> {
    let tz = ranges::user_zone(&auth.user.time_zone);
    let period = ranges::parse_period(period.as_deref())?;
    Ok((period, ranges::parse_date(date.as_deref(), tz, Utc::now())?))
}

#[OpenApi(tag = "super::ApiTags::Dashboard")]
impl DashboardApi {
    /// All inverters now: live power and state, today's energy, totals.
    #[oai(path = "/summary", method = "get")]
    async fn summary(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
    ) -> poem::Result<Json<SummaryView>> {
        Ok(Json(
            summary_view(&state, &auth.into_inner(), Utc::now()).await?,
        ))
    }

    /// Stacked power of all inverters over `[from, to)` (default: the last 24 hours) in
    /// buckets of at least 5 minutes, with the total as a separate series.
    #[oai(path = "/summary/power", method = "get")]
    async fn summary_power(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: SessionAuth,
        /// RFC 3339 time or local date.
        from: Query<Option<String>>,
        /// RFC 3339 time or local date (inclusive).
        to: Query<Option<String>>,
        /// Most points per series (2 … 5000, default 1000).
        points: Query<Option<u32>>,
    ) -> poem::Result<Json<ChartData>> {
        let auth = auth.into_inner();
        let r = range(&auth, from.0, to.0, points.0)?;
        let summary = state
            .store
            .summary_power(&auth.scope, r.from, r.to, r.points)
            .await
            .map_err(ApiError::from)?;
        let inverters = state
            .store
            .inverters(&auth.scope)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(charts::summary_power_chart(
            &summary,
            &inverters,
            lang(req, &auth),
        )))
    }

    /// Energy of all inverters over the `period` containing `date`, per bar and inverter.
    #[oai(path = "/summary/energy", method = "get")]
    async fn summary_energy(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        /// `day` (default), `week`, `month` or `year`.
        period: Query<Option<String>>,
        /// `YYYY-MM-DD` (default: today).
        date: Query<Option<String>>,
    ) -> poem::Result<Json<SummaryEnergyView>> {
        let auth = auth.into_inner();
        let (period, date) = period_and_date(&auth, period.0, date.0)?;
        Ok(Json(
            summary_energy_view(&state, &auth, period, date).await?.0,
        ))
    }

    /// One inverter now: current power, today's peak and energy, last hour's mean, lifetime.
    #[oai(path = "/inverters/:id/stats", method = "get")]
    async fn stats(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        id: Path<i64>,
    ) -> poem::Result<Json<InverterLive>> {
        let auth = auth.into_inner();
        let now = Utc::now();
        let status = state
            .store
            .inverter_status(&auth.scope, InverterId::new(id.0), now)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(InverterLive::new(&status, now)))
    }

    /// Energy bars of one inverter for the `period` containing `date`: hours of a day (23 or
    /// 25 on DST days), days of a week or month, months of a year; with the period's total
    /// and the dates of the previous and next periods.
    #[oai(path = "/inverters/:id/energy", method = "get")]
    async fn energy(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        id: Path<i64>,
        /// `day` (default), `week`, `month` or `year`.
        period: Query<Option<String>>,
        /// `YYYY-MM-DD` (default: today).
        date: Query<Option<String>>,
    ) -> poem::Result<Json<EnergyView>> {
        let auth = auth.into_inner();
        let (period, date) = period_and_date(&auth, period.0, date.0)?;
        let (view, _) = energy_view(&state, &auth, InverterId::new(id.0), period, date).await?;
        Ok(Json(view))
    }

    /// AC power of one inverter over `[from, to)` (default: the last 24 hours), downsampled
    /// on the server to at most `points` bucket means; gaps are `null`.
    #[oai(path = "/inverters/:id/power", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn power(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: SessionAuth,
        id: Path<i64>,
        /// RFC 3339 time or local date.
        from: Query<Option<String>>,
        /// RFC 3339 time or local date (inclusive).
        to: Query<Option<String>>,
        /// Most points (2 … 5000, default 1000).
        points: Query<Option<u32>>,
    ) -> poem::Result<Json<ChartData>> {
        let auth = auth.into_inner();
        let r = range(&auth, from.0, to.0, points.0)?;
        let series = state
            .store
            .power_series(&auth.scope, InverterId::new(id.0), r.from, r.to, r.points)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(charts::power_chart(&series, lang(req, &auth))))
    }

    /// One DC `metric` of every channel of an inverter over `[from, to)`, to compare strings:
    /// `power` (W), `voltage` (V), `current` (A), `irradiation` (%) or `day_energy` (Wh).
    #[oai(path = "/inverters/:id/dc", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn dc(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: SessionAuth,
        id: Path<i64>,
        /// `power` (default), `voltage`, `current`, `irradiation` or `day_energy`.
        metric: Query<Option<String>>,
        /// RFC 3339 time or local date.
        from: Query<Option<String>>,
        /// RFC 3339 time or local date (inclusive).
        to: Query<Option<String>>,
        /// Most points per channel (2 … 5000, default 1000).
        points: Query<Option<u32>>,
    ) -> poem::Result<Json<ChartData>> {
        let auth = auth.into_inner();
        let metric = parse_metric(metric.0.as_deref())?;
        let r = range(&auth, from.0, to.0, points.0)?;
        let series = state
            .store
            .dc_metric_series(
                &auth.scope,
                InverterId::new(id.0),
                metric,
                r.from,
                r.to,
                r.points,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(Json(charts::dc_chart(&series, lang(req, &auth))))
    }

    /// The DC channels of an inverter as of its newest reachable reading.
    #[oai(path = "/inverters/:id/dc/channels", method = "get")]
    async fn dc_channels(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: SessionAuth,
        id: Path<i64>,
    ) -> poem::Result<Json<Vec<DcChannel>>> {
        let auth = auth.into_inner();
        let channels = state
            .store
            .dc_channels(&auth.scope, InverterId::new(id.0), Utc::now())
            .await
            .map_err(ApiError::from)?;
        let lang = lang(req, &auth);
        Ok(Json(
            channels.iter().map(|c| DcChannel::new(c, lang)).collect(),
        ))
    }
}

/// Reads `metric` (default `power`).
///
/// # Errors
/// 422 naming the field.
pub fn parse_metric(value: Option<&str>) -> Result<DcMetric, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(DcMetric::Power),
        Some(v) => v.parse().map_err(|_| {
            ApiError::Unprocessable(
                "`metric` must be power, voltage, current, irradiation or day_energy".to_owned(),
            )
        }),
    }
}
