//! What the dashboards read ([`crate::DashboardReader`]): the live status of each inverter and
//! the rule that names its state, power and energy over all of a tenant's inverters, and the
//! DC channels of one inverter.
//!
//! ## Producing, idle or offline (DESIGN.md §7)
//! An inverter is *offline* when it sent no reachable reading for more than
//! [`OFFLINE_AFTER_INTERVALS`] of its usual intervals **in daylight**; outside daylight it is
//! *idle* (no data is expected at night: Deye micro-inverters power their logger from the
//! panels, OpenDTU reports them unreachable). We have no sun model (no location), so daylight
//! is learnt from the inverter itself: the span between its first and last producing 5-minute
//! bucket on the most recent earlier day it produced, moved to today's date and shrunk by
//! [`DAYLIGHT_MARGIN`] at both ends (dusk and dawn vary, and a short gap there is normal).
//! Without such a day (a new inverter), daylight is 08:00–18:00 local time.
//!
//! The usual interval is the median gap between the newest readings (OpenDTU pushes every
//! minute, Solarman loggers every five), [`DEFAULT_INTERVAL`] while there are too few.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use deyehard_core::{InverterId, Reading};

use crate::model::{EnergyBucket, Inverter};

/// No reachable reading for more than this many intervals in daylight: offline.
pub const OFFLINE_AFTER_INTERVALS: i32 = 3;
/// The interval assumed until an inverter has sent a few readings.
pub const DEFAULT_INTERVAL: TimeDelta = TimeDelta::minutes(5);
/// How far daylight starts after, and ends before, the reference day's production.
pub const DAYLIGHT_MARGIN: TimeDelta = TimeDelta::minutes(30);
/// Daylight (local hours) of an inverter that has not produced on an earlier day yet.
pub const FALLBACK_DAYLIGHT_HOURS: (u32, u32) = (8, 18);
/// How far back the status looks for the newest reachable reading and lifetime counter.
pub const STATUS_LOOKBACK: TimeDelta = TimeDelta::days(7);
/// The summary's power buckets are never narrower than this, so that inverters reporting at
/// different instants fall into the same buckets and their sum is meaningful.
pub const SUMMARY_MIN_BUCKET: TimeDelta = TimeDelta::minutes(5);

/// What an inverter is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveState {
    /// It never sent a reading.
    NoData,
    /// Fresh, reachable and delivering power.
    Producing,
    /// Fresh with no power (standby), or quiet outside daylight (night).
    Idle,
    /// Quiet in daylight. `since`: its newest reachable reading (`None`: none within
    /// [`STATUS_LOOKBACK`]).
    Offline {
        /// The newest reachable reading.
        since: Option<DateTime<Utc>>,
    },
}

impl LiveState {
    /// A stable name for APIs and CSS hooks: `no_data`, `producing`, `idle`, `offline`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoData => "no_data",
            Self::Producing => "producing",
            Self::Idle => "idle",
            Self::Offline { .. } => "offline",
        }
    }
}

/// The window in which an inverter is expected to produce today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Daylight {
    /// Start (UTC).
    pub start: DateTime<Utc>,
    /// End (UTC, exclusive).
    pub end: DateTime<Utc>,
    /// Learnt from an earlier production day (`false`: the 08:00–18:00 fallback).
    pub learnt: bool,
}

impl Daylight {
    /// Whether `time` lies in the window.
    pub fn contains(&self, time: DateTime<Utc>) -> bool {
        self.start <= time && time < self.end
    }
}

/// An inverter's live status and today's figures, in the owner's time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct InverterStatus {
    /// The inverter.
    pub inverter: Inverter,
    /// Today (owner's local day).
    pub today: NaiveDate,
    /// The newest reading, reachable or not (AC only).
    pub latest: Option<Reading>,
    /// Time of the newest reachable reading within [`STATUS_LOOKBACK`].
    pub last_reachable_at: Option<DateTime<Utc>>,
    /// The usual time between readings.
    pub interval: TimeDelta,
    /// Energy produced today, Wh.
    pub today_wh: f64,
    /// Highest AC power today, W.
    pub today_peak_w: Option<f64>,
    /// Mean AC power of the reachable readings of the last hour, W (0 when there were only
    /// unreachable ones, `None` when there were none).
    pub last_hour_avg_w: Option<f64>,
    /// The device's lifetime counter as last reported (within [`STATUS_LOOKBACK`]), Wh.
    pub lifetime_wh: Option<f64>,
    /// Energy recorded here over all days, Wh.
    pub recorded_wh: f64,
    /// Today's expected production window.
    pub daylight: Daylight,
}

impl InverterStatus {
    /// The state at `now` (see the module docs).
    pub fn state(&self, now: DateTime<Utc>) -> LiveState {
        let Some(latest) = &self.latest else {
            return LiveState::NoData;
        };
        let limit = self.interval * OFFLINE_AFTER_INTERVALS;
        match self.last_reachable_at {
            Some(at) if now - at <= limit => {
                let power = latest.power_ac_w.unwrap_or(0.0);
                if latest.reachable && power > 0.0 {
                    LiveState::Producing
                } else {
                    LiveState::Idle
                }
            }
            since if self.daylight.contains(now) => LiveState::Offline { since },
            _ => LiveState::Idle,
        }
    }

    /// The power that counts as live at `now`: the newest reading's while producing, else 0
    /// (a stale value is never counted).
    pub fn live_power_w(&self, now: DateTime<Utc>) -> f64 {
        match (self.state(now), &self.latest) {
            (LiveState::Producing, Some(latest)) => latest.power_ac_w.unwrap_or(0.0),
            _ => 0.0,
        }
    }

    /// The lifetime energy to show: the device's counter, else what was recorded here.
    pub fn lifetime_or_recorded_wh(&self) -> f64 {
        self.lifetime_wh.unwrap_or(self.recorded_wh)
    }
}

/// Power over all of a tenant's inverters, in shared buckets of at least
/// [`SUMMARY_MIN_BUCKET`] (mean power per bucket, from the write-time rollups).
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryPower {
    /// Width of each bucket.
    pub bucket: TimeDelta,
    /// Starts of the buckets in which any inverter has data, in time order.
    pub times: Vec<DateTime<Utc>>,
    /// Every inverter of the tenant (by id) with its mean power per bucket of `times`.
    pub inverters: Vec<(InverterId, Vec<Option<f64>>)>,
    /// Per bucket of `times`: the sum over the inverters with data.
    pub total: Vec<f64>,
    /// The highest total and its bucket: the peak of the sum (not the sum of the peaks).
    pub peak: Option<(DateTime<Utc>, f64)>,
}

/// The energy bars of a period for every inverter of a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryEnergy {
    /// The bars, each with the energy of all inverters together.
    pub buckets: Vec<EnergyBucket>,
    /// Every inverter (by id) with its energy per bar, Wh.
    pub inverters: Vec<(InverterId, Vec<f64>)>,
    /// The period's energy over all inverters, Wh.
    pub total_wh: f64,
}

/// One DC channel as of its newest reachable reading (the newest reading at all when none
/// is reachable within [`STATUS_LOOKBACK`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DcChannelStatus {
    /// 1-based channel.
    pub channel: u8,
    /// The name the device gives it (may be empty).
    pub name: Option<String>,
    /// Time of the reading.
    pub time: DateTime<Utc>,
    /// Whether that reading was reachable.
    pub reachable: bool,
    /// DC power, W.
    pub power_w: Option<f64>,
    /// DC voltage, V.
    pub voltage_v: Option<f64>,
    /// DC current, A.
    pub current_a: Option<f64>,
    /// Irradiation, % of the input's configured maximum.
    pub irradiation_pct: Option<f64>,
    /// The channel's day counter if the reading is from today (local), else 0, Wh.
    pub today_wh: Option<f64>,
    /// The channel's lifetime counter, Wh.
    pub lifetime_wh: Option<f64>,
}

/// A DC quantity compared across channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DcMetric {
    /// Power, W.
    Power,
    /// Voltage, V.
    Voltage,
    /// Current, A.
    Current,
    /// Irradiation, %.
    Irradiation,
    /// The channel's day counter, Wh.
    DayEnergy,
}

impl DcMetric {
    /// All metrics, in display order.
    pub const ALL: [Self; 5] = [
        Self::Power,
        Self::Voltage,
        Self::Current,
        Self::Irradiation,
        Self::DayEnergy,
    ];

    /// The name used in URLs and the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Power => "power",
            Self::Voltage => "voltage",
            Self::Current => "current",
            Self::Irradiation => "irradiation",
            Self::DayEnergy => "day_energy",
        }
    }

    /// The unit of the values.
    pub const fn unit(self) -> &'static str {
        match self {
            Self::Power => "W",
            Self::Voltage => "V",
            Self::Current => "A",
            Self::Irradiation => "%",
            Self::DayEnergy => "Wh",
        }
    }
}

impl fmt::Display for DcMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown [`DcMetric`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown DC metric (expected power, voltage, current, irradiation or day_energy)")]
pub struct UnknownDcMetric;

impl FromStr for DcMetric {
    type Err = UnknownDcMetric;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == text)
            .ok_or(UnknownDcMetric)
    }
}

/// One bucket of a metric series: aggregate over `[time, time + bucket)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    /// Bucket start (UTC).
    pub time: DateTime<Utc>,
    /// Mean.
    pub avg: f64,
    /// Lowest value.
    pub min: f64,
    /// Highest value.
    pub max: f64,
}

/// One channel of a [`DcMetricSeries`].
#[derive(Debug, Clone, PartialEq)]
pub struct DcChannelSeries {
    /// 1-based channel.
    pub channel: u8,
    /// The newest name the device gave it.
    pub name: Option<String>,
    /// Points in time order; buckets without data are absent.
    pub points: Vec<MetricPoint>,
}

/// One DC metric of every channel of an inverter, downsampled (reachable readings only).
#[derive(Debug, Clone, PartialEq)]
pub struct DcMetricSeries {
    /// The metric.
    pub metric: DcMetric,
    /// Width of each bucket.
    pub bucket: TimeDelta,
    /// Channels ascending.
    pub channels: Vec<DcChannelSeries>,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use deyehard_core::{InverterKind, Source, UserId};

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 15, h, m, 0)
            .single()
            .unwrap_or_default()
    }

    fn status(
        latest: Option<(DateTime<Utc>, f64, bool)>,
        reachable_at: Option<u32>,
    ) -> InverterStatus {
        let latest = latest.map(|(time, power, reachable)| {
            let mut r = Reading::new(time, Source::Opendtu);
            r.power_ac_w = Some(power);
            r.reachable = reachable;
            r
        });
        InverterStatus {
            inverter: Inverter {
                id: InverterId::new(1),
                owner: UserId::new(1),
                name: "HM".to_owned(),
                kind: InverterKind::Opendtu,
                serial: None,
                logger_serial: None,
                rated_power_w: None,
                mppt_count: None,
                firmware_version: None,
                last_seen_at: None,
                created_at: at(0, 0),
            },
            today: NaiveDate::from_ymd_opt(2025, 6, 15).unwrap_or_default(),
            latest,
            last_reachable_at: reachable_at.map(|m| at(12, 0) + TimeDelta::minutes(i64::from(m))),
            interval: TimeDelta::minutes(1),
            today_wh: 0.0,
            today_peak_w: None,
            last_hour_avg_w: None,
            lifetime_wh: None,
            recorded_wh: 12.5,
            daylight: Daylight {
                start: at(4, 0),
                end: at(19, 0),
                learnt: true,
            },
        }
    }

    #[test]
    fn fresh_power_is_producing_and_counts_as_live() {
        let s = status(Some((at(12, 0), 420.0, true)), Some(0));
        assert_eq!(s.state(at(12, 3)), LiveState::Producing);
        assert_eq!(s.live_power_w(at(12, 3)), 420.0);
        assert_eq!(s.lifetime_or_recorded_wh(), 12.5);
    }

    #[test]
    fn stale_in_daylight_is_offline_and_not_live() {
        let s = status(Some((at(12, 0), 420.0, true)), Some(0));
        let later = at(12, 4);
        assert_eq!(
            s.state(later),
            LiveState::Offline {
                since: Some(at(12, 0))
            }
        );
        assert_eq!(s.live_power_w(later), 0.0);
    }

    #[test]
    fn stale_at_night_is_idle() {
        let s = status(Some((at(12, 0), 420.0, true)), Some(0));
        assert_eq!(s.state(at(20, 0)), LiveState::Idle);
        // unreachable readings keep coming at night (OpenDTU): still idle, not offline
        let night = status(Some((at(19, 59), 0.0, false)), Some(0));
        assert_eq!(night.state(at(20, 0)), LiveState::Idle);
    }

    #[test]
    fn unreachable_all_week_in_daylight_is_offline_without_a_since() {
        let s = status(Some((at(11, 59), 0.0, false)), None);
        assert_eq!(s.state(at(12, 0)), LiveState::Offline { since: None });
        assert_eq!(LiveState::Offline { since: None }.as_str(), "offline");
    }

    #[test]
    fn fresh_without_power_is_idle_and_no_reading_is_no_data() {
        let s = status(Some((at(12, 0), 0.0, true)), Some(0));
        assert_eq!(s.state(at(12, 1)), LiveState::Idle);
        let empty = status(None, None);
        assert_eq!(empty.state(at(12, 0)), LiveState::NoData);
        assert_eq!(empty.live_power_w(at(12, 0)), 0.0);
    }

    #[test]
    fn metric_names_round_trip() {
        for metric in DcMetric::ALL {
            assert_eq!(metric.as_str().parse::<DcMetric>(), Ok(metric));
        }
        assert_eq!("volts".parse::<DcMetric>(), Err(UnknownDcMetric));
        assert_eq!(DcMetric::DayEnergy.unit(), "Wh");
    }
}
