//! The per-inverter accumulator and its step function: the only place where the step rules of
//! the module documentation are implemented.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{EnergyMethod, EnergyRules, EnergySample, StepEnergy, hours, local_day};

/// Counter differences smaller than this (Wh) are float noise, not a decrease.
const NOISE_WH: f64 = 1e-6;

/// Serializable per-inverter accumulator state (all fields public so a store can keep them in
/// columns): the last *trusted* values seen. Glitched counter values are never adopted as the
/// baseline.
///
/// Persist the floats exactly (`DOUBLE PRECISION` / `REAL` columns; JSON through serde_json
/// only with its `float_roundtrip` feature, whose default parser may be one bit off), or the
/// incremental and the recomputed energy can differ in the last digits.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccumulatorState {
    /// Time of the last reachable sample accepted.
    pub last_time: Option<DateTime<Utc>>,
    /// Its trusted power, W.
    pub last_power_w: Option<f64>,
    /// Day counter at `last_time` as far as it is trusted, Wh.
    pub last_yield_day_wh: Option<f64>,
    /// Lifetime counter at `last_time` as far as it is trusted, Wh.
    pub last_yield_total_wh: Option<f64>,
    /// A lifetime-counter value seen at `last_time` that jumped implausibly high. It becomes the
    /// baseline only if the next sample continues plausibly from it (a level shift rather than a
    /// spike); otherwise it is dropped.
    pub pending_yield_total_wh: Option<f64>,
}

/// What one counter says about one step.
struct Verdict {
    /// Production over the step according to this counter, if it can be trusted.
    energy: Option<f64>,
    /// What the counter's baseline becomes.
    baseline: Baseline,
}

/// How a counter's baseline moves after a step.
enum Baseline {
    /// The sample's value is trusted (plausible, a reset, or the first value seen).
    Adopt(f64),
    /// The sample's value is not trusted: keep the previous baseline, advanced by the step's
    /// energy so it still describes the counter at the new `last_time`.
    CarryForward,
    /// Like `CarryForward`, and remember this implausibly high value for confirmation.
    CarryForwardPending(f64),
}

impl Verdict {
    const fn untrusted() -> Self {
        Self {
            energy: None,
            baseline: Baseline::CarryForward,
        }
    }

    const fn adopt(value: f64, energy: Option<f64>) -> Self {
        Self {
            energy,
            baseline: Baseline::Adopt(value),
        }
    }
}

impl Baseline {
    /// The new baseline given the previous one and the energy trusted for the step.
    fn apply(&self, previous: Option<f64>, step_wh: f64) -> Option<f64> {
        match self {
            Self::Adopt(value) => Some(*value),
            Self::CarryForward | Self::CarryForwardPending(_) => previous.map(|p| p + step_wh),
        }
    }

    fn pending(&self) -> Option<f64> {
        match self {
            Self::CarryForwardPending(value) => Some(*value),
            Self::Adopt(_) | Self::CarryForward => None,
        }
    }
}

/// A counter value as the rules accept it: finite and not negative.
fn clean_counter(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite() && *v >= 0.0)
}

/// A difference that is plausible production: not a decrease, at most `limit`.
fn plausible(delta: f64, limit: f64) -> Option<f64> {
    (delta >= -NOISE_WH && delta <= limit).then_some(delta.max(0.0))
}

/// Judges the lifetime counter (rule 3 of the module documentation).
fn judge_total(prev: Option<f64>, pending: Option<f64>, next: Option<f64>, limit: f64) -> Verdict {
    let Some(next) = next else {
        return Verdict::untrusted();
    };
    let Some(prev) = prev else {
        return Verdict::adopt(next, None);
    };
    let delta = next - prev;
    if delta < -NOISE_WH {
        return if next <= 0.0 {
            // a restart or DTU reboot reporting 0: ignored, the real total comes back
            Verdict::untrusted()
        } else {
            // restart or rollover: the lower value is the new baseline
            Verdict::adopt(next, None)
        };
    }
    if let Some(energy) = plausible(delta, limit) {
        return Verdict::adopt(next, Some(energy));
    }
    // implausibly high: a spike, unless it keeps counting from a level seen one sample earlier
    // (a level shift); a confirmed shift is adopted like a reset, so the step's energy comes
    // from the next source. A frozen value is never confirmed.
    let counts_on = pending.is_some_and(|p| next - p > NOISE_WH && next - p <= limit);
    if counts_on {
        Verdict::adopt(next, None)
    } else {
        Verdict {
            energy: None,
            baseline: Baseline::CarryForwardPending(next),
        }
    }
}

/// Judges the day counter (rule 4 of the module documentation).
fn judge_day(prev: Option<f64>, next: Option<f64>, limit: f64) -> Verdict {
    let Some(next) = next else {
        return Verdict::untrusted();
    };
    let Some(prev) = prev else {
        return Verdict::adopt(next, None);
    };
    if next - prev < -NOISE_WH {
        // reset at midnight or at the inverter's (re)start: it counts again from zero
        return Verdict::adopt(next, (next <= limit).then_some(next));
    }
    match plausible(next - prev, limit) {
        Some(energy) => Verdict::adopt(next, Some(energy)),
        None => Verdict::untrusted(),
    }
}

/// Trapezoid of two trusted powers over `dt`, unless the gap is too long (rule 5).
fn trapezoid(
    prev: Option<f64>,
    next: Option<f64>,
    dt: TimeDelta,
    rules: &EnergyRules,
) -> Option<f64> {
    let (prev, next) = (prev?, next?);
    (dt <= rules.max_gap).then(|| (prev + next) / 2.0 * hours(dt))
}

impl AccumulatorState {
    /// Feeds the next sample (time strictly after `last_time`; otherwise returns `None` and
    /// changes nothing — the caller then recomputes the affected day with `daily_energy`).
    /// Returns the local day the energy is attributed to (the local day of the sample's time in
    /// `tz`) and the step energy.
    pub fn push(
        &mut self,
        sample: &EnergySample,
        tz: Tz,
        rules: &EnergyRules,
    ) -> Option<(NaiveDate, StepEnergy)> {
        let step = self.step(sample, rules)?;
        Some((local_day(sample.time, tz), step))
    }

    /// The step function behind [`push`](Self::push), without the day attribution: the energy
    /// between the previous trusted sample and `sample`. `None` when `sample` is not after
    /// `last_time` (nothing changes then).
    pub fn step(&mut self, sample: &EnergySample, rules: &EnergyRules) -> Option<StepEnergy> {
        if self.last_time.is_some_and(|last| sample.time <= last) {
            return None;
        }
        if !sample.reachable {
            return Some(StepEnergy::nothing(None));
        }
        let power = rules.trusted_power(sample.power_w);
        let total = clean_counter(sample.yield_total_wh);
        let day = clean_counter(sample.yield_day_wh);
        let Some(last_time) = self.last_time else {
            *self = Self {
                last_time: Some(sample.time),
                last_power_w: power,
                last_yield_day_wh: day,
                last_yield_total_wh: total,
                pending_yield_total_wh: None,
            };
            return Some(StepEnergy::nothing(power));
        };

        let dt = sample.time - last_time;
        let limit = rules.limit_wh(dt);
        let total = judge_total(
            self.last_yield_total_wh,
            self.pending_yield_total_wh,
            total,
            limit,
        );
        let day = judge_day(self.last_yield_day_wh, day, limit);
        let (wh, method) = if let Some(wh) = total.energy {
            (wh, EnergyMethod::TotalCounter)
        } else if let Some(wh) = day.energy {
            (wh, EnergyMethod::DayCounter)
        } else if let Some(wh) = trapezoid(self.last_power_w, power, dt, rules) {
            (wh, EnergyMethod::PowerIntegration)
        } else {
            (0.0, EnergyMethod::None)
        };

        self.last_time = Some(sample.time);
        self.last_power_w = power;
        self.last_yield_total_wh = total.baseline.apply(self.last_yield_total_wh, wh);
        self.pending_yield_total_wh = total.baseline.pending();
        self.last_yield_day_wh = day.baseline.apply(self.last_yield_day_wh, wh);
        Some(StepEnergy {
            wh,
            method,
            power_w: power,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_750_000_000; // 2025-06-15T15:06:40Z

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(T0 + minutes * 60, 0).unwrap()
    }

    fn sample(
        minutes: i64,
        power: Option<f64>,
        day: Option<f64>,
        total: Option<f64>,
    ) -> EnergySample {
        EnergySample {
            time: at(minutes),
            power_w: power,
            yield_day_wh: day,
            yield_total_wh: total,
            reachable: true,
        }
    }

    fn rules() -> EnergyRules {
        // limit for one minute: 800 × 1/60 × 1.5 + 1 = 21 Wh
        EnergyRules::for_rated_power(Some(800.0))
    }

    /// Feeds samples and returns (wh, method) per step.
    fn run(state: &mut AccumulatorState, samples: &[EnergySample]) -> Vec<(f64, EnergyMethod)> {
        samples
            .iter()
            .map(|s| {
                let step = state.step(s, &rules()).unwrap();
                (step.wh, step.method)
            })
            .collect()
    }

    use EnergyMethod::{DayCounter, None as NoMethod, PowerIntegration, TotalCounter};

    #[test]
    fn first_sample_sets_the_baseline_without_energy() {
        let mut state = AccumulatorState::default();
        let steps = run(
            &mut state,
            &[sample(0, Some(300.0), Some(50.0), Some(1000.0))],
        );
        assert_eq!(steps, vec![(0.0, NoMethod)]);
        assert_eq!(
            state,
            AccumulatorState {
                last_time: Some(at(0)),
                last_power_w: Some(300.0),
                last_yield_day_wh: Some(50.0),
                last_yield_total_wh: Some(1000.0),
                pending_yield_total_wh: None,
            }
        );
    }

    #[test]
    fn methods_are_tried_in_order() {
        let mut state = AccumulatorState::default();
        let steps = run(
            &mut state,
            &[
                sample(0, Some(600.0), Some(0.0), Some(1000.0)),
                sample(1, Some(600.0), Some(10.0), Some(1010.0)),
                // total missing: day counter
                sample(2, Some(600.0), Some(20.0), None),
                // both counters missing: power
                sample(3, Some(300.0), None, None),
            ],
        );
        assert_eq!(
            steps,
            vec![
                (0.0, NoMethod),
                (10.0, TotalCounter),
                (10.0, DayCounter),
                (7.5, PowerIntegration)
            ]
        );
        // the missing counters were carried forward by the energy of the steps
        assert_eq!(state.last_yield_total_wh, Some(1027.5));
        assert_eq!(state.last_yield_day_wh, Some(27.5));
    }

    #[test]
    fn out_of_order_and_duplicate_samples_change_nothing() {
        let mut state = AccumulatorState::default();
        run(&mut state, &[sample(5, Some(1.0), Some(1.0), Some(1.0))]);
        let before = state.clone();
        assert_eq!(
            state.step(&sample(5, Some(9.0), Some(9.0), Some(9.0)), &rules()),
            None
        );
        assert_eq!(
            state.step(&sample(4, Some(9.0), Some(9.0), Some(9.0)), &rules()),
            None
        );
        assert_eq!(state, before);
    }

    #[test]
    fn unreachable_samples_produce_nothing_and_keep_the_state() {
        let mut state = AccumulatorState::default();
        run(
            &mut state,
            &[sample(0, Some(500.0), Some(4000.0), Some(9000.0))],
        );
        let before = state.clone();
        let stale = EnergySample {
            reachable: false,
            ..sample(30, Some(500.0), Some(4000.0), Some(9000.0))
        };
        let step = state.step(&stale, &rules()).unwrap();
        assert_eq!(step, StepEnergy::nothing(None));
        assert_eq!(state, before);
    }

    #[test]
    fn lifetime_counter_decrease_is_a_reset_and_the_new_baseline() {
        let mut state = AccumulatorState::default();
        let steps = run(
            &mut state,
            &[
                sample(0, None, None, Some(50_000.0)),
                sample(1, None, None, Some(20.0)),
                sample(2, None, None, Some(35.0)),
            ],
        );
        assert_eq!(
            steps,
            vec![(0.0, NoMethod), (0.0, NoMethod), (15.0, TotalCounter)]
        );
    }

    #[test]
    fn lifetime_counter_zero_after_non_zero_is_ignored() {
        let mut state = AccumulatorState::default();
        let steps = run(
            &mut state,
            &[
                sample(0, None, None, Some(50_000.0)),
                sample(1, None, None, Some(0.0)),
                sample(2, None, None, Some(0.0)),
                sample(3, None, None, Some(50_012.0)),
            ],
        );
        assert_eq!(
            steps,
            vec![
                (0.0, NoMethod),
                (0.0, NoMethod),
                (0.0, NoMethod),
                (12.0, TotalCounter)
            ]
        );
    }

    #[test]
    fn rollover_to_zero_is_caught_at_the_next_value() {
        let mut state = AccumulatorState::default();
        let steps = run(
            &mut state,
            &[
                sample(0, None, None, Some(50_000.0)),
                sample(1, None, None, Some(0.0)),
                sample(2, None, None, Some(8.0)),
                sample(3, None, None, Some(20.0)),
            ],
        );
        assert_eq!(
            steps,
            vec![
                (0.0, NoMethod),
                (0.0, NoMethod),
                (0.0, NoMethod),
                (12.0, TotalCounter)
            ]
        );
    }

    #[test]
    fn spike_is_neither_production_nor_baseline() {
        let mut state = AccumulatorState::default();
        let steps = run(
            &mut state,
            &[
                sample(0, None, Some(100.0), Some(50_000.0)),
                sample(1, None, Some(110.0), Some(2_113_405_000.0)),
                sample(2, None, Some(121.0), Some(50_021.0)),
            ],
        );
        assert_eq!(
            steps,
            vec![(0.0, NoMethod), (10.0, DayCounter), (11.0, TotalCounter)]
        );
        assert_eq!(state.last_yield_total_wh, Some(50_021.0));
        assert_eq!(state.pending_yield_total_wh, None);
    }

    #[test]
    fn confirmed_level_shift_becomes_the_baseline_without_counting_the_jump() {
        let mut state = AccumulatorState::default();
        let steps = run(
            &mut state,
            &[
                sample(0, Some(600.0), None, Some(50_000.0)),
                // the total comes back from a low value: implausible jump, power used
                sample(1, Some(600.0), None, Some(900_000.0)),
                // continues plausibly from it: adopted like a reset, power used once more
                sample(2, Some(600.0), None, Some(900_010.0)),
                sample(3, Some(600.0), None, Some(900_020.0)),
            ],
        );
        assert_eq!(
            steps,
            vec![
                (0.0, NoMethod),
                (10.0, PowerIntegration),
                (10.0, PowerIntegration),
                (10.0, TotalCounter)
            ]
        );
        assert_eq!(state.pending_yield_total_wh, None);
    }

    #[test]
    fn a_repeated_spike_is_never_confirmed() {
        let mut state = AccumulatorState::default();
        let steps = run(
            &mut state,
            &[
                sample(0, None, Some(0.0), Some(50_000.0)),
                sample(1, None, Some(10.0), Some(2_113_405_000.0)),
                sample(2, None, Some(20.0), Some(2_113_405_000.0)),
                sample(3, None, Some(30.0), Some(2_113_405_000.0)),
                sample(4, None, Some(40.0), Some(50_040.0)),
            ],
        );
        assert_eq!(
            steps,
            vec![
                (0.0, NoMethod),
                (10.0, DayCounter),
                (10.0, DayCounter),
                (10.0, DayCounter),
                (10.0, TotalCounter)
            ]
        );
    }

    #[test]
    fn a_second_spike_is_not_confirmed_by_a_different_spike() {
        let mut state = AccumulatorState::default();
        let steps = run(
            &mut state,
            &[
                sample(0, None, None, Some(50_000.0)),
                sample(1, None, None, Some(7_000_000.0)),
                sample(2, None, None, Some(9_000_000.0)),
                sample(3, None, None, Some(50_020.0)),
            ],
        );
        assert_eq!(
            steps,
            vec![
                (0.0, NoMethod),
                (0.0, NoMethod),
                (0.0, NoMethod),
                (20.0, TotalCounter)
            ]
        );
    }

    #[test]
    fn day_counter_reset_counts_the_energy_since_the_reset() {
        let mut state = AccumulatorState::default();
        let steps = run(
            &mut state,
            &[
                sample(0, None, Some(4000.0), None),
                sample(1, None, Some(0.0), None),
                sample(2, None, Some(9.0), None),
                sample(3, None, Some(3000.0), None),
                sample(4, None, Some(5.0), None),
                sample(5, None, Some(20.0), None),
                sample(6, None, Some(40.0), None),
                // a reset to a value above the limit: no energy, but the baseline moves
                sample(7, None, Some(30.0), None),
                sample(8, None, Some(40.0), None),
            ],
        );
        assert_eq!(
            steps,
            vec![
                (0.0, NoMethod),
                (0.0, DayCounter),
                (9.0, DayCounter),
                // a glitch: not adopted, so the drop to 5 is a reset, not a 2995 Wh loss
                (0.0, NoMethod),
                (5.0, DayCounter),
                (15.0, DayCounter),
                (20.0, DayCounter),
                (0.0, NoMethod),
                (10.0, DayCounter)
            ]
        );
    }

    #[test]
    fn power_integration_does_not_bridge_long_gaps() {
        let mut state = AccumulatorState::default();
        let steps = run(
            &mut state,
            &[
                sample(0, Some(600.0), None, None),
                sample(15, Some(600.0), None, None),
                sample(31, Some(600.0), None, None),
                sample(32, Some(-20.0), None, None),
            ],
        );
        assert_eq!(
            steps,
            vec![
                (0.0, NoMethod),
                (150.0, PowerIntegration),
                (0.0, NoMethod),
                (5.0, PowerIntegration)
            ]
        );
    }

    #[test]
    fn garbage_values_never_count() {
        let mut state = AccumulatorState::default();
        let steps = run(
            &mut state,
            &[
                sample(0, Some(100.0), Some(10.0), Some(1000.0)),
                sample(1, Some(f64::NAN), Some(f64::INFINITY), Some(-5.0)),
                sample(2, Some(65_535.0), Some(f64::NAN), Some(f64::NAN)),
            ],
        );
        assert_eq!(
            steps,
            vec![(0.0, NoMethod), (0.0, NoMethod), (0.0, NoMethod)]
        );
        assert_eq!(state.last_yield_total_wh, Some(1000.0));
        assert_eq!(state.last_power_w, None);
    }

    #[test]
    fn push_attributes_the_step_to_the_local_day_of_its_end() {
        let tz = chrono_tz::Europe::Berlin;
        let mut state = AccumulatorState::default();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let before = EnergySample {
            time: at("2025-06-15T21:59:00Z"), // 23:59 CEST
            ..sample(0, None, None, Some(100.0))
        };
        let after = EnergySample {
            time: at("2025-06-15T22:01:00Z"), // 00:01 CEST on the 16th
            ..sample(0, None, None, Some(103.0))
        };
        let day = |d| NaiveDate::from_ymd_opt(2025, 6, d).unwrap();
        assert_eq!(state.push(&before, tz, &rules()).unwrap().0, day(15));
        let (attributed, step) = state.push(&after, tz, &rules()).unwrap();
        assert_eq!((attributed, step.wh), (day(16), 3.0));
    }

    #[test]
    fn state_round_trips_through_json_and_reads_older_rows() {
        let state = AccumulatorState {
            last_time: Some(at(0)),
            last_power_w: Some(1.5),
            last_yield_day_wh: None,
            last_yield_total_wh: Some(123_456.5),
            pending_yield_total_wh: Some(9e9),
        };
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(
            serde_json::from_str::<AccumulatorState>(&json).unwrap(),
            state
        );
        let without_pending = r#"{"last_time":null,"last_power_w":2.0,
            "last_yield_day_wh":3.0,"last_yield_total_wh":4.0}"#;
        let old: AccumulatorState = serde_json::from_str(without_pending).unwrap();
        assert_eq!(old.pending_yield_total_wh, None);
        assert_eq!(old.last_yield_total_wh, Some(4.0));
    }
}
