//! Energy maths: how much an inverter produced per local day, week, month and year, from
//! device counters that cannot be trusted blindly (DESIGN.md §7, protocol/opendtu-push.md §1.4).
//!
//! Everything rests on one step function, [`AccumulatorState::step`]: it takes the next sample
//! of an inverter and returns the energy produced since the previous trusted sample. A store
//! keeps the state per inverter and calls [`AccumulatorState::push`] at write time; when a
//! sample arrives out of order it recomputes with [`daily_energy`] / [`replay`], which run the
//! very same step over the sorted samples, so both paths give identical results.
//!
//! # Step rules
//!
//! For the step from the previous trusted sample to the next one, of duration `dt`:
//!
//! 1. **Unreachable samples** (`reachable == false`) carry stale values (yesterday's day counter,
//!    the dusk power). They produce no energy and leave the state untouched, so the counter delta
//!    across an outage is counted at the next reachable sample, if plausible.
//! 2. **Plausibility limit**: `limit_wh = max_power × dt_hours × margin + counter_resolution_wh`,
//!    where `max_power` is the rated power, or [`EnergyRules::fallback_max_power_w`] when it is
//!    unknown. Non-finite or negative counter values count as missing.
//! 3. **Lifetime counter first** (both samples have `yield_total`): `delta = next − prev`.
//!    * `0 ≤ delta ≤ limit`: production.
//!    * a decrease to a non-zero value: a counter reset (restart, rollover). Not production; the
//!      new, lower value becomes the baseline.
//!    * a drop to 0 after a non-zero value (an inverter restart or a DTU reboot reports 0, then
//!      the real total again, OpenDTU #1258 / #2730): not production and *ignored*, so the return
//!      of the real total is not mistaken for a huge increase. A rollover to 0 is still caught:
//!      the next non-zero value is a decrease, hence a reset.
//!    * `delta > limit`: a glitch (e.g. a 2,113,405 kWh spike, OpenDTU #1022). Not production and
//!      not adopted. The value is remembered as *pending*: if the following sample keeps counting
//!      from it (`0 < next − pending ≤ limit`: a real level shift, e.g. the total coming back
//!      after a reset to a low value), it becomes the baseline then, like after a reset: that
//!      step's energy comes from the next source, and the jump never counts as production. A
//!      spike repeated unchanged is never confirmed.
//! 4. **Day counter next** (both have `yield_day`): `0 ≤ delta ≤ limit` is production. A decrease
//!    is a reset (at midnight or when the inverter restarts at dawn): the energy since the reset
//!    is the new value if it is within the limit (a reset to 0 at midnight gives 0), and the new
//!    value becomes the baseline either way. `delta > limit` is a glitch, not adopted.
//! 5. **Power last**: the trapezoid `(p1 + p2) / 2 × dt_hours` when both samples have a power
//!    and `dt ≤ max_gap`; a longer gap is not bridged (0). Negative power counts as 0; a power
//!    above `max_power × margin` or not finite is not trusted.
//! 6. **Baselines** move only to trusted values. A counter whose value was not trusted in a step
//!    is carried forward by the step's energy, so it always describes the counter at the state's
//!    `last_time`: the next delta then covers exactly one step and nothing is counted twice.
//! 7. **Attribution**: a step belongs to the local day (or hour bucket) of the sample that ends
//!    it: the step from 23:59 to 00:01 belongs to the new day. The day's peak power is the
//!    highest trusted power of its reachable samples.
//! 8. **Order**: a sample not after the state's `last_time` is refused. Of several samples with
//!    the same time the first one given counts, as in a store where the first row stored wins.
//!
//! # Recomputing after a late sample
//! [`AccumulatorState::push`] refuses a sample that is not after the state's `last_time`. The
//! store then replays, with a fresh state, the samples from the last reachable sample *before*
//! the local day of the late sample up to the newest one ([`replay`]), rewrites every day from
//! the late sample's day on (the seed day's own entry is partial: skip it) and keeps the
//! returned state. The first sample of a replay is its baseline, so start it at a sample whose
//! counters were trusted; after a glitch right before the day, start further back.
//!
//! # Calendar
//! Days, weeks (ISO, from Monday), months and years are local to the user's time zone:
//! [`day_bounds`] handles 23- and 25-hour days and zones whose DST starts at midnight (the day
//! then starts at the first instant that exists, e.g. 01:00).

mod accumulator;
mod aggregate;
mod calendar;
#[cfg(test)]
mod scenarios;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::Reading;

pub use accumulator::AccumulatorState;
pub use aggregate::{daily_energy, energy_per_bucket, replay, sum_days_into_buckets};
pub use calendar::{
    Bucket, Period, day_bounds, local_day, period_bounds, period_buckets, shift_period,
};

/// Longest shown part of a rejected input in an error message.
const SHOWN_INPUT_CHARS: usize = 64;

/// What callers of the energy maths can get wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnergyError {
    /// The name is not an IANA time zone.
    #[error("unknown time zone {0:?}: expected an IANA name such as \"Europe/Berlin\"")]
    UnknownTimeZone(String),
    /// The text is not one of `day`, `week`, `month`, `year`.
    #[error("unknown period {0:?}: expected day, week, month or year")]
    UnknownPeriod(String),
}

/// The first characters of a rejected input, so an error never echoes a huge string.
fn shown(input: &str) -> String {
    input.chars().take(SHOWN_INPUT_CHARS).collect()
}

/// Parses an IANA time zone name (case-sensitive, e.g. `Europe/Berlin`).
pub fn parse_tz(name: &str) -> Result<Tz, EnergyError> {
    name.parse::<Tz>()
        .map_err(|_| EnergyError::UnknownTimeZone(shown(name)))
}

/// One point of an inverter's history as the energy maths needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergySample {
    /// Device time of the sample.
    pub time: DateTime<Utc>,
    /// AC power, W.
    pub power_w: Option<f64>,
    /// The device's day counter, Wh.
    pub yield_day_wh: Option<f64>,
    /// The device's lifetime counter, Wh.
    pub yield_total_wh: Option<f64>,
    /// Whether the device was reachable; values of an unreachable device are stale.
    pub reachable: bool,
}

impl From<&Reading> for EnergySample {
    fn from(reading: &Reading) -> Self {
        Self {
            time: reading.time,
            power_w: reading.power_ac_w,
            yield_day_wh: reading.yield_day_wh,
            yield_total_wh: reading.yield_total_wh,
            reachable: reading.reachable,
        }
    }
}

/// Tunables of the step rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyRules {
    /// Rated AC power of the inverter, W, when known.
    pub rated_power_w: Option<f64>,
    /// Power integration never bridges a gap longer than this (default 15 minutes).
    pub max_gap: TimeDelta,
    /// Factor on the maximum power for the plausibility limit (default 1.5).
    pub margin: f64,
    /// Maximum power assumed when the rated power is unknown, W (default 100 kW).
    pub fallback_max_power_w: f64,
    /// Absolute allowance added to every counter limit, Wh: the counters' resolution (default
    /// 1 Wh as OpenDTU reports; a counter in 0.1 kWh steps needs 100).
    pub counter_resolution_wh: f64,
}

impl Default for EnergyRules {
    fn default() -> Self {
        Self {
            rated_power_w: None,
            max_gap: TimeDelta::minutes(15),
            margin: 1.5,
            fallback_max_power_w: 100_000.0,
            counter_resolution_wh: 1.0,
        }
    }
}

impl EnergyRules {
    /// The default rules for an inverter of the given rated power.
    pub fn for_rated_power(rated_power_w: Option<f64>) -> Self {
        Self {
            rated_power_w,
            ..Self::default()
        }
    }

    /// The power the plausibility limits assume: the rated power if it is known and positive,
    /// else the fallback.
    pub fn max_power_w(&self) -> f64 {
        match self.rated_power_w {
            Some(rated) if rated.is_finite() && rated > 0.0 => rated,
            _ => self.fallback_max_power_w,
        }
    }

    /// The most energy a counter may plausibly grow by within `dt`, Wh.
    pub fn limit_wh(&self, dt: TimeDelta) -> f64 {
        self.max_power_w() * hours(dt) * self.margin + self.counter_resolution_wh
    }

    /// The power value as the rules trust it: negative counts as 0, non-finite or above
    /// `max_power × margin` is not trusted.
    pub fn trusted_power(&self, power_w: Option<f64>) -> Option<f64> {
        let power = power_w.filter(|p| p.is_finite())?.max(0.0);
        (power <= self.max_power_w() * self.margin).then_some(power)
    }
}

/// A duration in hours.
fn hours(dt: TimeDelta) -> f64 {
    dt.as_seconds_f64() / 3600.0
}

/// How a step's energy was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnergyMethod {
    /// Delta of the lifetime counter.
    TotalCounter,
    /// Delta of the day counter (or its value after a reset).
    DayCounter,
    /// Trapezoid of the power of both samples.
    PowerIntegration,
    /// No trustworthy source: the step counts 0 (first sample, unreachable, gap, glitch).
    None,
}

/// Energy produced between two consecutive trusted samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepEnergy {
    /// Energy, Wh (never negative).
    pub wh: f64,
    /// Where it came from.
    pub method: EnergyMethod,
    /// The trusted power of the sample ending the step, W (for the day's peak); `None` when the
    /// sample was unreachable or had no trustworthy power.
    pub power_w: Option<f64>,
}

impl StepEnergy {
    /// A step that produced nothing.
    const fn nothing(power_w: Option<f64>) -> Self {
        Self {
            wh: 0.0,
            method: EnergyMethod::None,
            power_w,
        }
    }
}

/// Energy and peak power of one local day.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DayEnergy {
    /// Energy produced, Wh.
    pub energy_wh: f64,
    /// Highest trusted power of the day's reachable samples, W.
    pub peak_power_w: Option<f64>,
    /// Samples accepted for the day (reachable or not).
    pub samples: u64,
}

impl DayEnergy {
    /// Adds one accepted step: its energy, its power as a peak candidate, and one sample.
    /// Both the incremental and the recomputing path fold days with this.
    pub fn add_step(&mut self, step: &StepEnergy) {
        self.energy_wh += step.wh;
        if let Some(power) = step.power_w {
            self.peak_power_w = Some(self.peak_power_w.map_or(power, |peak| peak.max(power)));
        }
        self.samples = self.samples.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Source;

    #[test]
    fn parse_tz_accepts_iana_names_and_explains_unknown_ones() {
        assert_eq!(parse_tz("Europe/Berlin"), Ok(chrono_tz::Europe::Berlin));
        assert_eq!(parse_tz("UTC"), Ok(chrono_tz::UTC));
        let err = parse_tz("Mars/Olympus_Mons").unwrap_err();
        assert_eq!(
            err,
            EnergyError::UnknownTimeZone("Mars/Olympus_Mons".into())
        );
        let message = err.to_string();
        assert!(message.contains("\"Mars/Olympus_Mons\""), "{message}");
        assert!(message.contains("IANA"), "{message}");
        assert!(parse_tz("").is_err());
        assert!(parse_tz("europe/berlin").is_err());
    }

    #[test]
    fn errors_never_echo_huge_inputs() {
        let long = "x".repeat(10_000);
        let EnergyError::UnknownTimeZone(shown) = parse_tz(&long).unwrap_err() else {
            panic!("wrong variant")
        };
        assert_eq!(shown.len(), SHOWN_INPUT_CHARS);
    }

    #[test]
    fn limits_follow_rated_power_or_fallback() {
        let rated = EnergyRules::for_rated_power(Some(800.0));
        assert_eq!(rated.max_power_w(), 800.0);
        // 800 W × 0.5 h × 1.5 + 1 Wh
        assert_eq!(rated.limit_wh(TimeDelta::minutes(30)), 601.0);
        for unknown in [None, Some(0.0), Some(-5.0), Some(f64::NAN)] {
            let rules = EnergyRules::for_rated_power(unknown);
            assert_eq!(rules.max_power_w(), 100_000.0);
        }
        assert_eq!(
            EnergyRules::default().limit_wh(TimeDelta::hours(1)),
            150_001.0
        );
    }

    #[test]
    fn power_is_clamped_and_implausible_power_dropped() {
        let rules = EnergyRules::for_rated_power(Some(800.0));
        assert_eq!(rules.trusted_power(Some(-3.0)), Some(0.0));
        assert_eq!(rules.trusted_power(Some(640.5)), Some(640.5));
        assert_eq!(rules.trusted_power(Some(1200.0)), Some(1200.0));
        assert_eq!(rules.trusted_power(Some(1200.1)), None);
        assert_eq!(rules.trusted_power(Some(65_535.0)), None);
        assert_eq!(rules.trusted_power(Some(f64::INFINITY)), None);
        assert_eq!(rules.trusted_power(Some(f64::NAN)), None);
        assert_eq!(rules.trusted_power(None), None);
    }

    #[test]
    fn day_energy_folds_steps() {
        let mut day = DayEnergy::default();
        day.add_step(&StepEnergy::nothing(None));
        assert_eq!(day.peak_power_w, None);
        for (wh, power) in [(2.5, Some(300.0)), (4.0, Some(420.0)), (1.5, Some(90.0))] {
            day.add_step(&StepEnergy {
                wh,
                method: EnergyMethod::TotalCounter,
                power_w: power,
            });
        }
        assert_eq!(day.energy_wh, 8.0);
        assert_eq!(day.peak_power_w, Some(420.0));
        assert_eq!(day.samples, 4);
    }

    #[test]
    fn sample_from_reading_takes_ac_power_counters_and_reachability() {
        let time = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
        let mut reading = Reading::new(time, Source::Opendtu);
        reading.power_ac_w = Some(512.0);
        reading.power_dc_w = Some(540.0);
        reading.yield_day_wh = Some(1234.0);
        reading.yield_total_wh = Some(987_654.0);
        reading.reachable = false;
        let sample = EnergySample::from(&reading);
        assert_eq!(
            sample,
            EnergySample {
                time,
                power_w: Some(512.0),
                yield_day_wh: Some(1234.0),
                yield_total_wh: Some(987_654.0),
                reachable: false,
            }
        );
    }
}
