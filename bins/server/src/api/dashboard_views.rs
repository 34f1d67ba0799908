//! The views of the dashboard API and their builders, shared with the pages (which show the
//! same figures): live status ([`InverterLive`], [`SummaryView`]), energy bars
//! ([`EnergyView`], [`SummaryEnergyView`]) and DC channel cards ([`DcChannel`]).

use chrono::{DateTime, NaiveDate, Utc};
use deyehard_core::InverterId;
use deyehard_core::energy::{self, Period};
use deyehard_store::{
    DashboardReader, DcChannelStatus, EnergyBucket, InverterStatus, InverterStore, LiveState,
    ReadingReader,
};
use poem_openapi::Object;

use super::charts::{self, ChartData};
use super::ranges;
use crate::error::ApiError;
use crate::http::AppState;
use crate::layout::Lang;
use crate::session::Authenticated;

/// An inverter's live status and today's figures.
#[derive(Debug, Clone, Object)]
pub struct InverterLive {
    /// Inverter id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// `opendtu`, `solarman` or `victron`.
    pub kind: String,
    /// `producing`, `idle` (standby or night), `offline` (quiet in daylight) or `no_data`.
    pub state: String,
    /// For `offline`: the newest reachable reading (absent when there was none for a week).
    pub offline_since: Option<DateTime<Utc>>,
    /// When data (reachable or not) last arrived.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Device time of the newest reading.
    pub reading_time: Option<DateTime<Utc>>,
    /// AC power now, W (0 unless producing: stale values never count).
    pub live_power_w: f64,
    /// Energy today, Wh.
    pub today_wh: f64,
    /// Highest AC power today, W.
    pub today_peak_w: Option<f64>,
    /// Mean AC power over the last hour, W.
    pub last_hour_avg_w: Option<f64>,
    /// Lifetime energy: the device's counter, else the energy recorded here, Wh.
    pub lifetime_wh: f64,
    /// Energy recorded here over all days, Wh.
    pub recorded_wh: f64,
    /// The usual time between readings, s.
    pub interval_s: i64,
}

impl InverterLive {
    /// The API view of a status at `now`.
    pub fn new(status: &InverterStatus, now: DateTime<Utc>) -> Self {
        let state = status.state(now);
        Self {
            id: status.inverter.id.get(),
            name: status.inverter.name.clone(),
            kind: status.inverter.kind.as_str().to_owned(),
            state: state.as_str().to_owned(),
            offline_since: match state {
                LiveState::Offline { since } => since,
                _ => None,
            },
            last_seen_at: status.inverter.last_seen_at,
            reading_time: status.latest.as_ref().map(|r| r.time),
            live_power_w: status.live_power_w(now),
            today_wh: status.today_wh,
            today_peak_w: status.today_peak_w,
            last_hour_avg_w: status.last_hour_avg_w,
            lifetime_wh: status.lifetime_or_recorded_wh(),
            recorded_wh: status.recorded_wh,
            interval_s: status.interval.num_seconds(),
        }
    }
}

/// All inverters at a glance.
#[derive(Debug, Clone, Object)]
pub struct SummaryView {
    /// The caller's time zone.
    pub time_zone: String,
    /// Today in that zone.
    pub today: NaiveDate,
    /// When this was computed.
    pub generated_at: DateTime<Utc>,
    /// Live power of the inverters producing now, W (stale inverters do not count).
    pub live_power_w: f64,
    /// Energy today over all inverters, Wh.
    pub today_wh: f64,
    /// The peak of today's summed power (5-minute means), W: the peak of the sum, not the
    /// sum of the peaks.
    pub today_peak_w: Option<f64>,
    /// Lifetime energy over all inverters, Wh.
    pub lifetime_wh: f64,
    /// Inverters producing now.
    pub producing: u32,
    /// Inverters offline now.
    pub offline: u32,
    /// Each inverter, by id.
    pub inverters: Vec<InverterLive>,
}

/// One bar of an energy view.
#[derive(Debug, Clone, Object)]
pub struct EnergyBar {
    /// Start (inclusive).
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
    /// Local wall-clock label (`2025-06-15T14:00:00`; 02:00 twice on a 25-hour day).
    pub label: String,
    /// Energy, Wh.
    pub energy_wh: f64,
}

impl From<&EnergyBucket> for EnergyBar {
    fn from(b: &EnergyBucket) -> Self {
        Self {
            start: b.start,
            end: b.end,
            label: b.label.format("%Y-%m-%dT%H:%M:%S").to_string(),
            energy_wh: b.energy_wh,
        }
    }
}

/// Energy of one inverter over a day (hourly bars), week or month (daily) or year (monthly).
#[derive(Debug, Clone, Object)]
pub struct EnergyView {
    /// Inverter id.
    pub inverter_id: i64,
    /// `day`, `week`, `month` or `year`.
    pub period: String,
    /// The date asked for.
    pub date: NaiveDate,
    /// The time zone of the bars.
    pub time_zone: String,
    /// Start of the period.
    pub start: DateTime<Utc>,
    /// End of the period (exclusive).
    pub end: DateTime<Utc>,
    /// Energy of the whole period, Wh.
    pub total_wh: f64,
    /// A date in the previous period.
    pub previous: NaiveDate,
    /// A date in the next period.
    pub next: NaiveDate,
    /// The bars (23 or 25 hours on DST days).
    pub buckets: Vec<EnergyBar>,
}

/// One inverter's share of a summary energy view.
#[derive(Debug, Clone, Object)]
pub struct InverterEnergy {
    /// Inverter id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Its energy over the period, Wh.
    pub total_wh: f64,
    /// Its energy per bar, Wh.
    pub energy_wh: Vec<f64>,
}

/// Energy of all inverters over a period.
#[derive(Debug, Clone, Object)]
pub struct SummaryEnergyView {
    /// `day`, `week`, `month` or `year`.
    pub period: String,
    /// The date asked for.
    pub date: NaiveDate,
    /// The time zone of the bars.
    pub time_zone: String,
    /// Energy of all inverters over the period, Wh.
    pub total_wh: f64,
    /// A date in the previous period.
    pub previous: NaiveDate,
    /// A date in the next period.
    pub next: NaiveDate,
    /// The bars with the energy of all inverters together.
    pub buckets: Vec<EnergyBar>,
    /// Each inverter's energy per bar.
    pub inverters: Vec<InverterEnergy>,
}

/// A DC channel (string / MPPT input) as of its newest reading.
#[derive(Debug, Clone, Object)]
pub struct DcChannel {
    /// 1-based channel.
    pub channel: u8,
    /// Name from the device (or `Input N`).
    pub label: String,
    /// Time of the reading.
    pub time: DateTime<Utc>,
    /// Whether that reading was reachable.
    pub reachable: bool,
    /// Power, W.
    pub power_w: Option<f64>,
    /// Voltage, V.
    pub voltage_v: Option<f64>,
    /// Current, A.
    pub current_a: Option<f64>,
    /// Irradiation, %.
    pub irradiation_pct: Option<f64>,
    /// Energy today, Wh.
    pub today_wh: Option<f64>,
    /// Lifetime energy, Wh.
    pub lifetime_wh: Option<f64>,
}

impl DcChannel {
    /// The API view of a channel card.
    pub fn new(c: &DcChannelStatus, lang: Lang) -> Self {
        Self {
            channel: c.channel,
            label: charts::channel_label(c.channel, c.name.as_deref(), lang),
            time: c.time,
            reachable: c.reachable,
            power_w: c.power_w,
            voltage_v: c.voltage_v,
            current_a: c.current_a,
            irradiation_pct: c.irradiation_pct,
            today_wh: c.today_wh,
            lifetime_wh: c.lifetime_wh,
        }
    }
}

/// The caller's status of everything, now.
///
/// # Errors
/// Store errors.
pub async fn summary_view(
    state: &AppState,
    auth: &Authenticated,
    now: DateTime<Utc>,
) -> Result<SummaryView, ApiError> {
    let statuses = state.store.inverter_statuses(&auth.scope, now).await?;
    let tz = ranges::user_zone(&auth.user.time_zone);
    let today = energy::local_day(now, tz);
    let (start, end) = energy::day_bounds(today, tz);
    let power = state
        .store
        .summary_power(&auth.scope, start, end, 400)
        .await?;
    let inverters: Vec<InverterLive> = statuses.iter().map(|s| InverterLive::new(s, now)).collect();
    let count = |name: &str| {
        let n = inverters.iter().filter(|i| i.state == name).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    Ok(SummaryView {
        time_zone: auth.user.time_zone.clone(),
        today,
        generated_at: now,
        live_power_w: inverters.iter().map(|i| i.live_power_w).sum(),
        today_wh: inverters.iter().map(|i| i.today_wh).sum(),
        today_peak_w: power.peak.map(|(_, w)| w),
        lifetime_wh: inverters.iter().map(|i| i.lifetime_wh).sum(),
        producing: count("producing"),
        offline: count("offline"),
        inverters,
    })
}

/// The previous and next dates of a period view.
fn neighbours(period: Period, date: NaiveDate) -> (NaiveDate, NaiveDate) {
    (
        energy::shift_period(period, date, -1),
        energy::shift_period(period, date, 1),
    )
}

/// One inverter's energy bars for the period containing `date`, with the raw buckets.
///
/// # Errors
/// 404 for an inverter that is not the caller's.
pub async fn energy_view(
    state: &AppState,
    auth: &Authenticated,
    inverter: InverterId,
    period: Period,
    date: NaiveDate,
) -> Result<(EnergyView, Vec<EnergyBucket>), ApiError> {
    let buckets = state
        .store
        .energy_buckets(&auth.scope, inverter, period, date)
        .await?;
    let tz = ranges::user_zone(&auth.user.time_zone);
    let (start, end) = energy::period_bounds(period, date, tz);
    let (previous, next) = neighbours(period, date);
    let view = EnergyView {
        inverter_id: inverter.get(),
        period: period.as_str().to_owned(),
        date,
        time_zone: auth.user.time_zone.clone(),
        start,
        end,
        total_wh: buckets.iter().map(|b| b.energy_wh).sum(),
        previous,
        next,
        buckets: buckets.iter().map(EnergyBar::from).collect(),
    };
    Ok((view, buckets))
}

/// The summary's energy bars for the period containing `date`, and their chart.
///
/// # Errors
/// Store errors.
pub async fn summary_energy_view(
    state: &AppState,
    auth: &Authenticated,
    period: Period,
    date: NaiveDate,
) -> Result<(SummaryEnergyView, ChartData), ApiError> {
    let summary = state
        .store
        .summary_energy(&auth.scope, period, date)
        .await?;
    let inverters = state.store.inverters(&auth.scope).await?;
    let chart = charts::summary_energy_chart(&summary, &inverters, period);
    let (previous, next) = neighbours(period, date);
    let view = SummaryEnergyView {
        period: period.as_str().to_owned(),
        date,
        time_zone: auth.user.time_zone.clone(),
        total_wh: summary.total_wh,
        previous,
        next,
        buckets: summary.buckets.iter().map(EnergyBar::from).collect(),
        inverters: summary
            .inverters
            .iter()
            .zip(&chart.series)
            .map(|((id, bars), series)| InverterEnergy {
                id: id.get(),
                name: series.label.clone(),
                total_wh: bars.iter().sum(),
                energy_wh: bars.clone(),
            })
            .collect(),
    };
    Ok((view, chart))
}
