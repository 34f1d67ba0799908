//! The chart data format of `web/README.md` (what `app.js` draws with uPlot), built from the
//! store's series, for the JSON API and for the JSON blocks of the pages:
//!
//! ```json
//! { "timestamps": [1764111600, …], "series": [{"label": "AC power", "unit": "W",
//!   "values": [0, null, …]}], "stacked": false, "bucket": "hour" }
//! ```
//!
//! Buckets without data are absent from the store's series; a chart would join the points on
//! both sides. So where the distance between two points is larger than a few usual steps
//! ([`GAP_STEPS`] times the median step, at least two buckets), a `null` is inserted right
//! after the earlier point: uPlot draws a gap there.

use chrono::{DateTime, TimeDelta, Utc};
use deyehard_core::energy::Period;
use deyehard_store::{DcMetric, DcMetricSeries, EnergyBucket, PowerSeries, SummaryEnergy};
use deyehard_store::{Inverter, SummaryPower};
use poem_openapi::Object;
use serde::Serialize;

use crate::layout::Lang;

/// A step this many times longer than the usual one is a gap.
pub const GAP_STEPS: i64 = 3;

/// Series over time, in the format `app.js` draws.
#[derive(Debug, Clone, PartialEq, Serialize, Object)]
pub struct ChartData {
    /// Unix seconds (with milliseconds): point times, or bucket starts for energy bars.
    pub timestamps: Vec<f64>,
    /// One entry per line or bar series, each with one value per timestamp (`null`: no data).
    pub series: Vec<ChartSeries>,
    /// Whether the series are drawn stacked (the summary over inverters).
    pub stacked: bool,
    /// For energy bars: `hour`, `day` or `month`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub bucket: Option<String>,
}

/// One series of a [`ChartData`].
#[derive(Debug, Clone, PartialEq, Serialize, Object)]
pub struct ChartSeries {
    /// Legend label (device-supplied names are plain text, never markup).
    pub label: String,
    /// `W`, `Wh`, `V`, `A` or `%`.
    pub unit: String,
    /// One value per timestamp; `null` is a gap.
    pub values: Vec<Option<f64>>,
    /// A total drawn on top of a stacked chart, not stacked itself.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[oai(skip_serializing_if = "std::ops::Not::not")]
    pub total: bool,
}

impl ChartSeries {
    fn new(label: impl Into<String>, unit: &str, values: Vec<Option<f64>>) -> Self {
        Self {
            label: label.into(),
            unit: unit.to_owned(),
            values,
            total: false,
        }
    }
}

fn pick(lang: Lang, en: &'static str, de: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::De => de,
    }
}

/// Unix seconds with millisecond precision.
fn seconds(time: DateTime<Utc>) -> f64 {
    time.timestamp_millis() as f64 / 1000.0
}

/// Where the gaps go: for each output row, the index of the input point, or `None` for a gap
/// inserted after the previous point. `times` ascending.
pub fn with_gaps(
    times: &[DateTime<Utc>],
    bucket: TimeDelta,
) -> Vec<(DateTime<Utc>, Option<usize>)> {
    let mut steps: Vec<TimeDelta> = times.windows(2).map(|w| w[1] - w[0]).collect();
    steps.sort_unstable();
    let usual = steps.get(steps.len() / 2).copied().unwrap_or(bucket);
    let limit = (usual * i32::try_from(GAP_STEPS).unwrap_or(3)).max(bucket * 2);
    let mut rows = Vec::with_capacity(times.len() + 8);
    for (index, time) in times.iter().enumerate() {
        if let Some(previous) = index.checked_sub(1).and_then(|i| times.get(i))
            && *time - *previous > limit
        {
            rows.push((*previous + usual, None));
        }
        rows.push((*time, Some(index)));
    }
    rows
}

/// AC power of one inverter (the bucket means).
pub fn power_chart(series: &PowerSeries, lang: Lang) -> ChartData {
    let times: Vec<DateTime<Utc>> = series.points.iter().map(|p| p.time).collect();
    let rows = with_gaps(&times, series.bucket);
    let values = rows
        .iter()
        .map(|(_, i)| i.and_then(|i| series.points.get(i)).map(|p| p.avg_w))
        .collect();
    ChartData {
        timestamps: rows.iter().map(|(t, _)| seconds(*t)).collect(),
        series: vec![ChartSeries::new(
            pick(lang, "AC power", "AC-Leistung"),
            "W",
            values,
        )],
        stacked: false,
        bucket: None,
    }
}

/// The label of a DC channel: its name from the device, else "Input N".
pub fn channel_label(channel: u8, name: Option<&str>, lang: Lang) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => name.to_owned(),
        None => format!("{} {channel}", pick(lang, "Input", "Eingang")),
    }
}

/// One DC metric, one line per channel. The day counter shows each bucket's highest value,
/// the other metrics the mean.
pub fn dc_chart(series: &DcMetricSeries, lang: Lang) -> ChartData {
    let mut times: Vec<DateTime<Utc>> = series
        .channels
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.time))
        .collect();
    times.sort_unstable();
    times.dedup();
    let rows = with_gaps(&times, series.bucket);
    let lines = series
        .channels
        .iter()
        .map(|channel| {
            let values = rows
                .iter()
                .map(|(time, index)| {
                    (*index)?;
                    let point = channel.points.iter().find(|p| p.time == *time)?;
                    Some(match series.metric {
                        DcMetric::DayEnergy => point.max,
                        _ => point.avg,
                    })
                })
                .collect();
            let label = channel_label(channel.channel, channel.name.as_deref(), lang);
            ChartSeries::new(label, series.metric.unit(), values)
        })
        .collect();
    ChartData {
        timestamps: rows.iter().map(|(t, _)| seconds(*t)).collect(),
        series: lines,
        stacked: false,
        bucket: None,
    }
}

/// Stacked power of every inverter, with the total on top.
pub fn summary_power_chart(
    summary: &SummaryPower,
    inverters: &[Inverter],
    lang: Lang,
) -> ChartData {
    let rows = with_gaps(&summary.times, summary.bucket);
    let pick_values = |values: &[Option<f64>]| -> Vec<Option<f64>> {
        rows.iter()
            .map(|(_, i)| i.and_then(|i| values.get(i).copied().flatten()))
            .collect()
    };
    let mut series: Vec<ChartSeries> = summary
        .inverters
        .iter()
        .map(|(id, values)| ChartSeries::new(name_of(inverters, *id), "W", pick_values(values)))
        .collect();
    let total: Vec<Option<f64>> = rows
        .iter()
        .map(|(_, i)| i.and_then(|i| summary.total.get(i).copied()))
        .collect();
    series.push(ChartSeries {
        total: true,
        ..ChartSeries::new(pick(lang, "Total", "Summe"), "W", total)
    });
    ChartData {
        timestamps: rows.iter().map(|(t, _)| seconds(*t)).collect(),
        series,
        stacked: true,
        bucket: None,
    }
}

fn name_of(inverters: &[Inverter], id: deyehard_core::InverterId) -> String {
    inverters
        .iter()
        .find(|i| i.id == id)
        .map_or_else(|| format!("#{}", id.get()), |i| i.name.clone())
}

/// The bucket name of a period's bars.
pub fn bucket_name(period: Period) -> &'static str {
    match period {
        Period::Day => "hour",
        Period::Week | Period::Month => "day",
        Period::Year => "month",
    }
}

/// Energy bars of one inverter.
pub fn energy_chart(bars: &[EnergyBucket], period: Period, lang: Lang) -> ChartData {
    ChartData {
        timestamps: bars.iter().map(|b| seconds(b.start)).collect(),
        series: vec![ChartSeries::new(
            pick(lang, "Energy", "Energie"),
            "Wh",
            bars.iter().map(|b| Some(b.energy_wh)).collect(),
        )],
        stacked: false,
        bucket: Some(bucket_name(period).to_owned()),
    }
}

/// Stacked energy bars of every inverter.
pub fn summary_energy_chart(
    summary: &SummaryEnergy,
    inverters: &[Inverter],
    period: Period,
) -> ChartData {
    ChartData {
        timestamps: summary.buckets.iter().map(|b| seconds(b.start)).collect(),
        series: summary
            .inverters
            .iter()
            .map(|(id, bars)| {
                let values = bars.iter().map(|wh| Some(*wh)).collect();
                ChartSeries::new(name_of(inverters, *id), "Wh", values)
            })
            .collect(),
        stacked: true,
        bucket: Some(bucket_name(period).to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use deyehard_store::SeriesPoint;

    use super::*;

    fn minute(m: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 15, 0, 0, 0).unwrap() + TimeDelta::minutes(m)
    }

    #[test]
    fn gaps_longer_than_a_few_steps_become_nulls() {
        // readings every minute drawn in 10-second buckets: no gaps between them
        let times: Vec<_> = [0, 1, 2, 3, 4, 30, 31, 32].map(minute).to_vec();
        let rows = with_gaps(&times, TimeDelta::seconds(10));
        let gaps: Vec<_> = rows.iter().filter(|(_, i)| i.is_none()).collect();
        assert_eq!(gaps.len(), 1);
        assert_eq!(
            rows[5],
            (minute(5), None),
            "the gap starts one step after 00:04"
        );
        assert_eq!(rows.len(), times.len() + 1);
        assert!(with_gaps(&[], TimeDelta::minutes(5)).is_empty());
    }

    #[test]
    fn power_chart_has_seconds_and_nulls() {
        let point = |m, w| SeriesPoint {
            time: minute(m),
            avg_w: w,
            min_w: w,
            max_w: w,
        };
        let series = PowerSeries {
            bucket: TimeDelta::minutes(5),
            points: vec![point(0, 1.0), point(5, 2.0), point(10, 3.0), point(60, 4.0)],
        };
        let chart = power_chart(&series, Lang::De);
        assert_eq!(chart.series[0].label, "AC-Leistung");
        assert_eq!(
            chart.series[0].values,
            vec![Some(1.0), Some(2.0), Some(3.0), None, Some(4.0)]
        );
        assert_eq!(chart.timestamps[0], minute(0).timestamp() as f64);
        assert_eq!(chart.timestamps[3], minute(15).timestamp() as f64);
        let json = serde_json::to_value(&chart).unwrap();
        assert!(json.get("bucket").is_none());
        assert!(json["series"][0].get("total").is_none());
    }

    #[test]
    fn channel_labels_fall_back_to_the_input_number() {
        assert_eq!(channel_label(2, Some(" "), Lang::En), "Input 2");
        assert_eq!(channel_label(2, None, Lang::De), "Eingang 2");
        assert_eq!(channel_label(1, Some("<b>Süd</b>"), Lang::En), "<b>Süd</b>");
    }
}
