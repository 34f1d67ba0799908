//! The dashboard reads ([`crate::DashboardReader`]), shared by both backends: the row types
//! and the pure steps between rows and the public model. The statements are in
//! [`super::dashboard_sql`], the trait implementation in [`super::dashboard_reads`].

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use deyehard_core::energy::{Bucket, Period};
use deyehard_core::{InverterId, Reading};

use super::energy::{day_bars, hour_bars};
use crate::dashboard::{
    DAYLIGHT_MARGIN, DEFAULT_INTERVAL, Daylight, DcChannelSeries, DcChannelStatus, DcMetric,
    DcMetricSeries, FALLBACK_DAYLIGHT_HOURS, InverterStatus, MetricPoint, SUMMARY_MIN_BUCKET,
    SummaryEnergy, SummaryPower,
};
use crate::model::{EnergyBucket, Inverter, SeriesPoint};
use crate::rows::{DailyEnergyRow, MeasurementRow};
use crate::series::{BucketRow, Plan, STEP_5M_MS, Source};
use crate::ts::Ts;
use crate::{StoreError, StoreResult};

// ---- rows -------------------------------------------------------------------------------------

/// A row of [`STATUS_FIGURES`](super::dashboard_sql::STATUS_FIGURES).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct FiguresRow {
    pub(crate) inverter_id: i64,
    pub(crate) today_wh: Option<f64>,
    pub(crate) today_peak_w: Option<f64>,
    pub(crate) lifetime_wh: Option<f64>,
    pub(crate) last_reachable_at: Option<Ts>,
    pub(crate) recorded_wh: Option<f64>,
    pub(crate) reference_day: Option<NaiveDate>,
}

/// A row of [`LAST_HOUR`](super::dashboard_sql::LAST_HOUR).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LastHourRow {
    pub(crate) inverter_id: i64,
    pub(crate) readings: i64,
    pub(crate) n: i64,
    pub(crate) total: Option<f64>,
}

impl LastHourRow {
    /// The mean reachable power, 0 when every reading was unreachable.
    pub(crate) fn mean(&self) -> Option<f64> {
        match (self.readings, self.n, self.total) {
            (0, ..) => None,
            (_, 0, _) | (_, _, None) => Some(0.0),
            (_, n, Some(total)) => Some(total / n as f64),
        }
    }
}

/// A summary power bucket of one inverter.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct InverterBucketRow {
    pub(crate) inverter_id: i64,
    #[sqlx(flatten)]
    pub(crate) bucket: BucketRow,
}

/// A daily row of one inverter.
#[derive(sqlx::FromRow)]
pub(crate) struct InverterDayRow {
    pub(crate) inverter_id: i64,
    #[sqlx(flatten)]
    pub(crate) day: DailyEnergyRow,
}

/// A row of [`DC_AT`](super::dashboard_sql::DC_AT).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DcAtRow {
    pub(crate) channel: i16,
    pub(crate) name: Option<String>,
    pub(crate) power_w: Option<f64>,
    pub(crate) voltage_v: Option<f64>,
    pub(crate) current_a: Option<f64>,
    pub(crate) irradiation_pct: Option<f64>,
    pub(crate) yield_day_wh: Option<f64>,
    pub(crate) yield_total_wh: Option<f64>,
    pub(crate) reachable: bool,
}

// ---- pure steps -------------------------------------------------------------------------------

/// The median gap between `times` (any order), within 5 s … 1 h; [`DEFAULT_INTERVAL`] with
/// fewer than three readings.
pub(crate) fn usual_interval(times: &[Ts]) -> TimeDelta {
    let mut sorted: Vec<i64> = times.iter().map(|t| t.millis()).collect();
    sorted.sort_unstable();
    let mut gaps: Vec<i64> = sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|gap| *gap > 0)
        .collect();
    if gaps.len() < 2 {
        return DEFAULT_INTERVAL;
    }
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    TimeDelta::milliseconds(median.clamp(5_000, 3_600_000))
}

/// Today's daylight from the reference day's first and last producing bucket (see
/// [`crate::dashboard`]).
pub(crate) fn daylight(today: NaiveDate, tz: Tz, span: Option<(Ts, Ts)>) -> Daylight {
    // a wall-clock time of today (the earlier one when it occurs twice; none in a DST gap)
    let local = |time: NaiveTime| {
        tz.from_local_datetime(&today.and_time(time))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    };
    let learnt = span.and_then(|(first, last)| {
        let first = first.get().with_timezone(&tz).time();
        let last = (last.get() + TimeDelta::milliseconds(STEP_5M_MS))
            .with_timezone(&tz)
            .time();
        let (start, end) = (local(first)?, local(last)?);
        if start >= end {
            return None;
        }
        let shrunk = (start + DAYLIGHT_MARGIN, end - DAYLIGHT_MARGIN);
        let (start, end) = if shrunk.0 < shrunk.1 {
            shrunk
        } else {
            (start, end)
        };
        Some(Daylight {
            start,
            end,
            learnt: true,
        })
    });
    learnt.unwrap_or_else(|| {
        let (from, to) = FALLBACK_DAYLIGHT_HOURS;
        let hour = |h| NaiveTime::from_hms_opt(h, 0, 0).and_then(local);
        let start = hour(from).unwrap_or(DateTime::<Utc>::MIN_UTC);
        Daylight {
            start,
            end: hour(to).unwrap_or(start),
            learnt: false,
        }
    })
}

/// How the summary is bucketed: a plan over the rollups, never narrower than
/// [`SUMMARY_MIN_BUCKET`].
pub(crate) fn summary_plan(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    max_points: u32,
) -> StoreResult<Plan> {
    let step = SUMMARY_MIN_BUCKET.num_milliseconds();
    let span = (to - from).num_milliseconds();
    let fitting = u32::try_from((span + step - 1).div_euclid(step).max(1)).unwrap_or(u32::MAX);
    let plan = Plan::new(from, to, max_points.min(fitting), true)?;
    if plan.source != Source::Raw {
        return Ok(plan);
    }
    // a range of a few minutes: one 5-minute bucket per step
    let base = Ts::from_millis(Ts::new(from).millis().div_euclid(step) * step)
        .ok_or_else(|| StoreError::Invalid("the range is out of bounds".into()))?;
    Ok(Plan {
        source: Source::Rollup5m,
        base,
        to: plan.to,
        width_ms: step,
    })
}

/// Aligns the per-inverter buckets (ordered by index) into one summary.
pub(crate) fn summary_power(
    plan: &Plan,
    inverters: &[i64],
    rows: Vec<InverterBucketRow>,
) -> SummaryPower {
    let mut by_index: BTreeMap<i64, Vec<(i64, f64)>> = BTreeMap::new();
    for row in rows.into_iter().filter(|r| r.bucket.n > 0) {
        let mean = row.bucket.total / row.bucket.n as f64;
        by_index
            .entry(row.bucket.idx)
            .or_default()
            .push((row.inverter_id, mean));
    }
    let times: Vec<DateTime<Utc>> = by_index.keys().map(|i| plan.bucket_start(*i)).collect();
    let total: Vec<f64> = by_index
        .values()
        .map(|means| means.iter().map(|(_, w)| w).sum())
        .collect();
    let per_inverter = inverters
        .iter()
        .map(|id| {
            let values = by_index
                .values()
                .map(|means| means.iter().find(|(i, _)| i == id).map(|(_, w)| *w))
                .collect();
            (InverterId::new(*id), values)
        })
        .collect();
    let peak =
        times.iter().zip(&total).fold(
            None,
            |best: Option<(DateTime<Utc>, f64)>, (t, w)| match best {
                Some((_, top)) if top >= *w => best,
                _ => Some((*t, *w)),
            },
        );
    SummaryPower {
        bucket: plan.bucket(),
        times,
        inverters: per_inverter,
        total,
        peak,
    }
}

/// Groups rows ordered by inverter into one list per inverter of `inverters` (empty lists
/// for inverters without rows).
pub(crate) fn group_by_inverter<T>(
    inverters: &[i64],
    rows: impl IntoIterator<Item = (i64, T)>,
) -> Vec<(i64, Vec<T>)> {
    let mut groups: BTreeMap<i64, Vec<T>> = inverters.iter().map(|id| (*id, Vec::new())).collect();
    for (id, row) in rows {
        if let Some(group) = groups.get_mut(&id) {
            group.push(row);
        }
    }
    groups.into_iter().collect()
}

/// The per-inverter figures of a status read, taken apart again per inverter.
pub(crate) struct StatusParts {
    figures: HashMap<i64, FiguresRow>,
    last_hour: HashMap<i64, Option<f64>>,
    latest: HashMap<i64, Reading>,
}

impl StatusParts {
    /// Indexes the rows of the figures, last-hour and latest-reading statements.
    pub(crate) fn new(
        figures: Vec<FiguresRow>,
        last_hour: Vec<LastHourRow>,
        latest: Vec<MeasurementRow>,
    ) -> StoreResult<Self> {
        let latest = latest
            .into_iter()
            .map(|row| Ok((row.inverter_id, row.into_reading()?)))
            .collect::<StoreResult<_>>()?;
        Ok(Self {
            figures: figures.into_iter().map(|f| (f.inverter_id, f)).collect(),
            last_hour: last_hour
                .into_iter()
                .map(|h| (h.inverter_id, h.mean()))
                .collect(),
            latest,
        })
    }

    /// The latest earlier day on which `inverter` produced.
    pub(crate) fn reference_day(&self, inverter: i64) -> Option<NaiveDate> {
        self.figures.get(&inverter).and_then(|f| f.reference_day)
    }

    /// The status of `inverter` (its parts are taken out).
    pub(crate) fn status(
        &mut self,
        inverter: Inverter,
        today: NaiveDate,
        interval: TimeDelta,
        daylight: Daylight,
    ) -> InverterStatus {
        let id = inverter.id.get();
        let figures = self.figures.remove(&id);
        let figure = |f: fn(&FiguresRow) -> Option<f64>| figures.as_ref().and_then(f);
        InverterStatus {
            today,
            latest: self.latest.remove(&id),
            last_reachable_at: figures
                .as_ref()
                .and_then(|f| f.last_reachable_at)
                .map(Ts::get),
            interval,
            today_wh: figure(|f| f.today_wh).unwrap_or(0.0),
            today_peak_w: figure(|f| f.today_peak_w),
            last_hour_avg_w: self.last_hour.remove(&id).flatten(),
            lifetime_wh: figure(|f| f.lifetime_wh),
            recorded_wh: figure(|f| f.recorded_wh).unwrap_or(0.0),
            daylight,
            inverter,
        }
    }
}

/// The first 5-minute bucket of the first hour and the last one of the last hour.
pub(crate) fn hours_range(hours: &[Bucket]) -> (Ts, Ts) {
    let first = hours.first().map_or(Ts::now(), |h| Ts::new(h.start));
    let last = hours
        .last()
        .map_or(first, |h| Ts::new(h.end - TimeDelta::milliseconds(1)));
    (first, last)
}

/// The bars of a period with no energy.
pub(crate) fn empty_bars(period: Period, date: NaiveDate, tz: Tz) -> Vec<EnergyBucket> {
    if period == Period::Day {
        hour_bars(
            &deyehard_core::energy::period_buckets(period, date, tz),
            &[],
        )
    } else {
        day_bars(Vec::new(), period, date, tz)
    }
}

/// Sums the inverters' bars (each aligned with `empty`) into the summary.
pub(crate) fn summary_energy(
    mut buckets: Vec<EnergyBucket>,
    inverters: Vec<(i64, Vec<EnergyBucket>)>,
) -> SummaryEnergy {
    for (_, bars) in &inverters {
        for (sum, bar) in buckets.iter_mut().zip(bars) {
            sum.energy_wh += bar.energy_wh;
        }
    }
    let total_wh = buckets.iter().map(|b| b.energy_wh).sum();
    SummaryEnergy {
        buckets,
        inverters: inverters
            .into_iter()
            .map(|(id, bars)| {
                (
                    InverterId::new(id),
                    bars.iter().map(|b| b.energy_wh).collect(),
                )
            })
            .collect(),
        total_wh,
    }
}

/// A channel card from its row; `from_today`: the reading is from the owner's today.
pub(crate) fn channel_status(
    row: DcAtRow,
    time: Ts,
    from_today: bool,
) -> StoreResult<DcChannelStatus> {
    let channel = u8::try_from(row.channel)
        .map_err(|_| StoreError::corrupt(format!("bad DC channel {}", row.channel)))?;
    Ok(DcChannelStatus {
        channel,
        name: row.name,
        time: time.get(),
        reachable: row.reachable,
        power_w: row.power_w,
        voltage_v: row.voltage_v,
        current_a: row.current_a,
        irradiation_pct: row.irradiation_pct,
        today_wh: if from_today {
            row.yield_day_wh
        } else {
            Some(0.0)
        },
        lifetime_wh: row.yield_total_wh,
    })
}

/// A metric series from channel points, named after the newest DC rows.
pub(crate) fn metric_series(
    metric: DcMetric,
    bucket: TimeDelta,
    channels: Vec<(u8, Vec<SeriesPoint>)>,
    names: Vec<DcAtRow>,
) -> DcMetricSeries {
    let name_of = |channel: u8| {
        names
            .iter()
            .find(|n| n.channel == i16::from(channel))
            .and_then(|n| n.name.clone())
    };
    DcMetricSeries {
        metric,
        bucket,
        channels: channels
            .into_iter()
            .map(|(channel, points)| DcChannelSeries {
                channel,
                name: name_of(channel),
                points: points
                    .into_iter()
                    .map(|p| MetricPoint {
                        time: p.time,
                        avg: p.avg_w,
                        min: p.min_w,
                        max: p.max_w,
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: i64) -> Ts {
        Ts::from_millis(ms).unwrap_or_else(Ts::now)
    }

    #[test]
    fn usual_interval_is_the_median_gap() {
        let minute = 60_000;
        let times: Vec<Ts> = [0, 1, 2, 3, 60, 61, 62]
            .iter()
            .map(|m| ts(m * minute))
            .collect();
        assert_eq!(usual_interval(&times), TimeDelta::minutes(1));
        assert_eq!(usual_interval(&times[..2]), DEFAULT_INTERVAL);
        let five: Vec<Ts> = (0..11).map(|i| ts(i * 5 * minute)).collect();
        assert_eq!(usual_interval(&five), TimeDelta::minutes(5));
    }

    #[test]
    fn daylight_is_learnt_from_the_reference_day_or_falls_back() {
        let tz = chrono_tz::Europe::Berlin;
        let day = NaiveDate::from_ymd_opt(2025, 6, 15).unwrap_or_default();
        let local = |d: u32, h: u32, m: u32| {
            tz.with_ymd_and_hms(2025, 6, d, h, m, 0)
                .single()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        // produced yesterday from 05:30 to 21:05 (last bucket 21:00)
        let span = Some((Ts::new(local(14, 5, 30)), Ts::new(local(14, 21, 0))));
        let learnt = daylight(day, tz, span);
        assert_eq!(
            (learnt.start, learnt.end),
            (local(15, 6, 0), local(15, 20, 35))
        );
        assert!(learnt.learnt);
        let fallback = daylight(day, tz, None);
        assert_eq!(
            (fallback.start, fallback.end),
            (local(15, 8, 0), local(15, 18, 0))
        );
        assert!(!fallback.learnt);
        // 40 minutes of production: too short for the margins, used as it is
        let short = daylight(
            day,
            tz,
            Some((Ts::new(local(14, 12, 0)), Ts::new(local(14, 12, 35)))),
        );
        assert_eq!(
            (short.start, short.end),
            (local(15, 12, 0), local(15, 12, 40))
        );
    }

    #[test]
    fn the_summary_total_is_the_peak_of_the_sum() {
        let from = Utc
            .with_ymd_and_hms(2025, 6, 15, 10, 0, 0)
            .single()
            .unwrap_or_default();
        let plan =
            summary_plan(from, from + TimeDelta::hours(1), 1000).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.width_ms, STEP_5M_MS);
        let row = |inverter_id, idx, n, total| InverterBucketRow {
            inverter_id,
            bucket: BucketRow {
                idx,
                n,
                total,
                lo: 0.0,
                hi: 0.0,
            },
        };
        // inverter 1 peaks at bucket 0 (500 W), inverter 2 at bucket 2 (400 W): the sum peaks
        // at bucket 1 with 700 W, not at 900 W
        let rows = vec![
            row(1, 0, 5, 2500.0),
            row(2, 0, 5, 500.0),
            row(1, 1, 5, 2000.0),
            row(2, 1, 5, 1500.0),
            row(2, 2, 5, 2000.0),
        ];
        let summary = summary_power(&plan, &[1, 2, 3], rows);
        assert_eq!(summary.total, vec![600.0, 700.0, 400.0]);
        assert_eq!(summary.peak, Some((from + TimeDelta::minutes(5), 700.0)));
        assert_eq!(summary.inverters.len(), 3);
        assert_eq!(summary.inverters[0].1, vec![Some(500.0), Some(400.0), None]);
        assert_eq!(summary.inverters[2].1, vec![None, None, None]);
    }

    #[test]
    fn tiny_summary_ranges_still_read_rollups() {
        let from = Utc
            .with_ymd_and_hms(2025, 6, 15, 10, 2, 0)
            .single()
            .unwrap_or_default();
        let plan = summary_plan(from, from + TimeDelta::minutes(1), 1000)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.source, Source::Rollup5m);
        assert_eq!(plan.base.millis() % STEP_5M_MS, 0);
    }

    #[test]
    fn last_hour_mean_counts_unreachable_hours_as_zero() {
        let row = |readings, n, total| LastHourRow {
            inverter_id: 1,
            readings,
            n,
            total,
        };
        assert_eq!(row(0, 0, None).mean(), None);
        assert_eq!(row(4, 0, None).mean(), Some(0.0));
        assert_eq!(row(4, 2, Some(300.0)).mean(), Some(150.0));
    }
}
