//! Realistic day shapes with exact expected energy, and properties of the whole pipeline.
//!
//! A simulated micro-inverter reports every minute like OpenDTU does: AC power to 0.1 W, and
//! both counters as whole Wh of what it really produced (the trapezoid of its power), so a
//! scenario knows the exact energy before the code under test sees a sample.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::{America, Australia, Europe, Tz};
use proptest::prelude::*;

use super::*;

const RATED_W: f64 = 800.0;
const SUNRISE_MIN: i64 = 5 * 60;
const SUNSET_MIN: i64 = 21 * 60 + 30;
/// The dusk power OpenDTU keeps pushing with `reachable = false` all night.
const STALE_DUSK_W: f64 = 12.3;

fn rules() -> EnergyRules {
    EnergyRules::for_rated_power(Some(RATED_W))
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn local(tz: Tz, date: NaiveDate, h: u32, min: u32) -> DateTime<Utc> {
    let naive = date.and_hms_opt(h, min, 0).unwrap();
    tz.from_local_datetime(&naive).unwrap().with_timezone(&Utc)
}

/// A clear summer day with a passing cloud around noon, peak ≈ 780 W.
fn sunny_power(minute_of_day: i64) -> f64 {
    if !(SUNRISE_MIN..=SUNSET_MIN).contains(&minute_of_day) {
        return 0.0;
    }
    let phase = (minute_of_day - SUNRISE_MIN) as f64 / (SUNSET_MIN - SUNRISE_MIN) as f64;
    let cloud = if (720..760).contains(&minute_of_day) {
        0.55
    } else {
        1.0
    };
    (780.0 * (std::f64::consts::PI * phase).sin() * cloud * 10.0).round() / 10.0
}

/// A simulated inverter. Its counters are whole Wh of the exact energy it produced.
struct Inverter {
    tz: Tz,
    /// Lifetime counter value at `produced_wh == 0`.
    total_offset_wh: f64,
    /// Exact energy produced since the simulation started.
    produced_wh: f64,
    /// `produced_wh` when the day counter was last reset.
    day_reset_at_wh: f64,
    power_w: f64,
    last_time: Option<DateTime<Utc>>,
}

impl Inverter {
    fn new(tz: Tz) -> Self {
        Self {
            tz,
            total_offset_wh: 1_234_000.0,
            produced_wh: 0.0,
            day_reset_at_wh: 0.0,
            power_w: 0.0,
            last_time: None,
        }
    }

    fn total(&self) -> f64 {
        self.total_offset_wh + self.produced_wh.floor()
    }

    fn day(&self) -> f64 {
        self.produced_wh.floor() - self.day_reset_at_wh.floor()
    }

    /// Runs to `time` at `power_w` and reports, reachable.
    fn report(&mut self, time: DateTime<Utc>, power_w: f64) -> EnergySample {
        if let Some(last) = self.last_time {
            let hours = (time - last).as_seconds_f64() / 3600.0;
            self.produced_wh += (self.power_w + power_w) / 2.0 * hours;
        }
        self.power_w = power_w;
        self.last_time = Some(time);
        EnergySample {
            time,
            power_w: Some(power_w),
            yield_day_wh: Some(self.day()),
            yield_total_wh: Some(self.total()),
            reachable: true,
        }
    }

    /// A stale report while the inverter sleeps: yesterday's values, `reachable = false`.
    fn stale(&self, time: DateTime<Utc>, power_w: f64) -> EnergySample {
        EnergySample {
            time,
            power_w: Some(power_w),
            yield_day_wh: Some(self.day()),
            yield_total_wh: Some(self.total()),
            reachable: false,
        }
    }

    /// The inverter starts at dawn: its day counter restarts at 0.
    fn restart(&mut self) {
        self.day_reset_at_wh = self.produced_wh;
    }

    /// One sunny day, a sample per minute from sunrise to sunset.
    fn sunny_day(&mut self, date: NaiveDate) -> Vec<EnergySample> {
        let midnight = local(self.tz, date, 0, 0);
        (SUNRISE_MIN..=SUNSET_MIN)
            .map(|minute| self.report(midnight + TimeDelta::minutes(minute), sunny_power(minute)))
            .collect()
    }

    /// The night after `date`: stale unreachable samples every 5 minutes, 21:35 to 04:55.
    fn night(&self, date: NaiveDate) -> Vec<EnergySample> {
        let dusk = local(self.tz, date, 0, 0) + TimeDelta::minutes(SUNSET_MIN);
        (1..90)
            .map(|i| self.stale(dusk + TimeDelta::minutes(5 * i), STALE_DUSK_W))
            .collect()
    }
}

fn last_total(samples: &[EnergySample]) -> f64 {
    samples
        .iter()
        .rev()
        .find(|s| s.reachable)
        .unwrap()
        .yield_total_wh
        .unwrap()
}

fn peak(samples: &[EnergySample]) -> f64 {
    samples.iter().filter_map(|s| s.power_w).fold(0.0, f64::max)
}

/// Yesterday's sunny day, its night, and a restarted inverter ready for `date`.
fn after_a_night(tz: Tz, date: NaiveDate) -> (Inverter, Vec<EnergySample>) {
    let mut inverter = Inverter::new(tz);
    let yesterday = date.pred_opt().unwrap();
    let mut samples = inverter.sunny_day(yesterday);
    samples.extend(inverter.night(yesterday));
    inverter.restart();
    (inverter, samples)
}

#[test]
fn normal_day_is_the_lifetime_counter_delta() {
    for tz in [Europe::Berlin, Australia::Adelaide] {
        let date = d(2025, 6, 15);
        let (mut inverter, mut samples) = after_a_night(tz, date);
        let evening_total = last_total(&samples);
        let produced_before = inverter.produced_wh;
        let today = inverter.sunny_day(date);
        let expected = last_total(&today) - evening_total;
        samples.extend_from_slice(&today);

        let days = daily_energy(&samples, tz, &rules());
        let day = days[&date];
        assert_eq!(day.energy_wh, expected, "{tz}");
        assert!(expected > 7000.0 && expected < 9000.0, "{expected}");
        assert!((day.energy_wh - (inverter.produced_wh - produced_before)).abs() < 1.0);
        assert_eq!(day.peak_power_w, Some(peak(&today)));
        assert_eq!(day.samples, today.len() as u64 + 60); // with the night after midnight
        assert_eq!(days.len(), 2);

        // every step of the day came from the lifetime counter
        let mut state = AccumulatorState::default();
        for sample in &samples {
            let (attributed, step) = state.push(sample, tz, &rules()).unwrap();
            if attributed == date && sample.reachable && step.wh > 0.0 {
                assert_eq!(step.method, EnergyMethod::TotalCounter);
            }
        }

        // with the counters gone, integrating power finds the exact production
        let power_only: Vec<EnergySample> = samples
            .iter()
            .map(|s| EnergySample {
                yield_day_wh: None,
                yield_total_wh: None,
                ..*s
            })
            .collect();
        let integrated = daily_energy(&power_only, tz, &rules())[&date].energy_wh;
        assert!((integrated - (inverter.produced_wh - produced_before)).abs() < 1e-6);
    }
}

#[test]
fn a_step_across_midnight_belongs_to_the_new_day() {
    // a battery-fed inverter produces through midnight and its day counter does not reset
    for tz in [Europe::Berlin, America::New_York] {
        let date = d(2025, 6, 15);
        let next = d(2025, 6, 16);
        let sample = |time, total| EnergySample {
            time,
            power_w: Some(300.0),
            yield_day_wh: Some(total - 4000.0),
            yield_total_wh: Some(total),
            reachable: true,
        };
        let samples = [
            sample(local(tz, date, 23, 58), 4995.0),
            sample(local(tz, date, 23, 59), 5000.0),
            sample(local(tz, next, 0, 1), 5010.0),
            sample(local(tz, next, 0, 2), 5015.0),
        ];
        let days = daily_energy(&samples, tz, &rules());
        assert_eq!(days[&date].energy_wh, 5.0, "{tz}");
        assert_eq!(days[&next].energy_wh, 15.0, "{tz}");
    }
}

/// Constant 100 W from power alone, a sample per minute covering the whole local day (the
/// first one a minute before it starts, so that the first step ends at its first instant).
fn constant_day(tz: Tz, date: NaiveDate) -> Vec<EnergySample> {
    let (start, end) = day_bounds(date, tz);
    (-1..(end - start).num_minutes())
        .map(|m| EnergySample {
            time: start + TimeDelta::minutes(m),
            power_w: Some(100.0),
            yield_day_wh: None,
            yield_total_wh: None,
            reachable: true,
        })
        .collect()
}

#[test]
fn dst_days_have_23_and_25_hours_of_energy() {
    for (tz, date, hours) in [
        (Europe::Berlin, d(2025, 3, 30), 23),
        (Europe::Berlin, d(2025, 10, 26), 25),
        (Europe::Berlin, d(2025, 6, 15), 24),
        // Santiago changes at midnight: no 00:00 on 7 September, 23:00 twice on 5 April
        (America::Santiago, d(2025, 9, 7), 23),
        (America::Santiago, d(2025, 4, 5), 25),
    ] {
        let (start, end) = day_bounds(date, tz);
        assert_eq!((end - start).num_hours(), hours, "{tz} {date}");
        let buckets = period_buckets(Period::Day, date, tz);
        assert_eq!(
            buckets.len(),
            usize::try_from(hours).unwrap(),
            "{tz} {date}"
        );

        let samples = constant_day(tz, date);
        let energy = daily_energy(&samples, tz, &rules())[&date].energy_wh;
        assert!(
            (energy - 100.0 * hours as f64).abs() < 1e-6,
            "{tz} {date}: {energy}"
        );
        let hourly = energy_per_bucket(&samples, &buckets, &rules());
        assert!(
            hourly.iter().all(|wh| (wh - 100.0).abs() < 1e-9),
            "{hourly:?}"
        );
    }
}

#[test]
fn counter_reset_at_dawn_counts_only_production() {
    for tz in [Europe::Berlin, Australia::Adelaide] {
        let date = d(2025, 6, 15);
        // the restarted inverter reports a low lifetime value and counts on from there
        let (mut low, mut samples) = after_a_night(tz, date);
        let before = low.produced_wh;
        low.total_offset_wh = 120.0 - before.floor();
        let today = low.sunny_day(date);
        assert_eq!(today[0].yield_total_wh, Some(120.0));
        assert_eq!(today[0].yield_day_wh, Some(0.0));
        let expected = today.last().unwrap().yield_day_wh.unwrap();
        samples.extend(today);
        assert_eq!(
            daily_energy(&samples, tz, &rules())[&date].energy_wh,
            expected
        );
        assert!((expected - (low.produced_wh - before)).abs() < 1.0);

        // the lifetime counter reads 0 for five minutes after the restart, then comes back
        let (mut back, mut samples) = after_a_night(tz, date);
        let mut today = back.sunny_day(date);
        for sample in &mut today[..5] {
            sample.yield_total_wh = Some(0.0);
        }
        let expected = today.last().unwrap().yield_day_wh.unwrap();
        samples.extend(today);
        assert_eq!(
            daily_energy(&samples, tz, &rules())[&date].energy_wh,
            expected
        );
    }
}

#[test]
fn lifetime_counter_spikes_do_not_touch_the_day() {
    for tz in [Europe::Berlin, Australia::Adelaide] {
        let date = d(2025, 6, 15);
        let (mut inverter, mut samples) = after_a_night(tz, date);
        samples.extend(inverter.sunny_day(date));
        let clean = daily_energy(&samples, tz, &rules())[&date];
        let noon = samples
            .iter()
            .position(|s| s.time == local(tz, date, 12, 0))
            .unwrap();
        for spiked_samples in [1, 3] {
            let mut spiked = samples.clone();
            for sample in &mut spiked[noon..noon + spiked_samples] {
                sample.yield_total_wh = Some(2_113_405_000.0); // 2,113,405 kWh
            }
            let day = daily_energy(&spiked, tz, &rules())[&date];
            assert_eq!(day, clean, "{tz}, {spiked_samples} spiked");
        }
    }
}

#[test]
fn a_night_of_stale_and_zero_values_contributes_nothing() {
    // the second inverter is young (150 kWh) and of unknown rated power: over the two hours from
    // the last zero to dawn its limit (100 kW × 2 h × 1.5) would let its whole lifetime through
    for (tz, rules, lifetime_wh) in [
        (Europe::Berlin, rules(), 1_234_000.0),
        (Australia::Adelaide, EnergyRules::default(), 150_000.0),
    ] {
        let date = d(2025, 6, 15);
        let yesterday = d(2025, 6, 14);
        let mut inverter = Inverter::new(tz);
        inverter.total_offset_wh = lifetime_wh;
        let mut samples = inverter.sunny_day(yesterday);
        let evening_total = last_total(&samples);
        let evening_day = samples.last().unwrap().yield_day_wh;
        // until midnight: yesterday's counters and the dusk power, unreachable
        samples.extend(inverter.night(yesterday).into_iter().take(29));
        let after = |h, m| local(tz, date, h, m);
        for i in 0..36 {
            let time = after(0, 0) + TimeDelta::minutes(5 * i);
            // "zero runtime data" and "zero yield day at midnight": zeros, still unreachable
            let zeroed = EnergySample {
                power_w: Some(0.0),
                yield_day_wh: Some(0.0),
                ..inverter.stale(time, 0.0)
            };
            // and a DTU reboot that reports everything as 0 while the inverter is "reachable"
            let rebooted = EnergySample {
                time: time + TimeDelta::minutes(1),
                power_w: Some(0.0),
                yield_day_wh: Some(0.0),
                yield_total_wh: Some(0.0),
                reachable: true,
            };
            samples.push(zeroed);
            samples.push(rebooted);
        }
        inverter.restart();
        let today = inverter.sunny_day(date);
        let expected = last_total(&today) - evening_total;
        samples.extend(today);

        let days = daily_energy(&samples, tz, &rules);
        assert_eq!(days[&date].energy_wh, expected, "{tz}");
        let night = energy_per_bucket(
            &samples,
            &period_buckets(Period::Day, date, tz)[..5],
            &rules,
        );
        assert_eq!(night, [0.0; 5]);
        assert!(evening_day.unwrap() > 0.0);
    }
}

#[test]
fn power_only_gaps_are_not_bridged() {
    for tz in [Europe::Berlin, Australia::Adelaide] {
        let date = d(2025, 6, 15);
        let minute_samples = |from: DateTime<Utc>| {
            (0..=60).map(move |m| EnergySample {
                time: from + TimeDelta::minutes(m),
                power_w: Some(600.0),
                yield_day_wh: None,
                yield_total_wh: None,
                reachable: true,
            })
        };
        let samples: Vec<EnergySample> = minute_samples(local(tz, date, 10, 0))
            .chain(minute_samples(local(tz, date, 13, 0)))
            .collect();
        let energy = daily_energy(&samples, tz, &rules())[&date].energy_wh;
        // one hour at 600 W twice; the two hours between are unknown, not 1200 Wh more
        assert!((energy - 1200.0).abs() < 1e-6, "{tz}: {energy}");
    }
}

/// A random day-and-a-half of an inverter with every kind of glitch the notes describe.
fn arbitrary_samples() -> impl Strategy<Value = Vec<EnergySample>> {
    let step = (1i64..=40, 0u8..16, 0.0f64..900.0, 0u8..20);
    prop::collection::vec(step, 1..250).prop_map(|steps| {
        let mut time: DateTime<Utc> = "2025-03-29T20:00:00Z".parse().unwrap();
        let (mut total, mut day) = (500_000.0_f64, 0.0_f64);
        let mut samples = Vec::with_capacity(steps.len());
        for (minutes, glitch, power, reach) in steps {
            let minutes = if glitch == 15 { 180 } else { minutes };
            let next = time + TimeDelta::minutes(minutes);
            if local_day(next, Europe::Berlin) != local_day(time, Europe::Berlin) {
                day = 0.0;
            }
            time = next;
            total += power * minutes as f64 / 60.0;
            day += power * minutes as f64 / 60.0;
            let mut sample = EnergySample {
                time,
                power_w: Some(power),
                yield_day_wh: Some(day.floor()),
                yield_total_wh: Some(total.floor()),
                reachable: reach > 2,
            };
            match glitch {
                0 => sample.yield_total_wh = Some(2_113_405_000.0),
                1 => sample.yield_total_wh = Some(0.0),
                2 => sample.yield_total_wh = None,
                3 => sample.yield_day_wh = None,
                4 => sample.power_w = None,
                5 => total = 17.0,
                6 => day = 0.0,
                7 => sample.power_w = Some(-5.0),
                8 => sample.yield_day_wh = Some(f64::NAN),
                _ => {}
            }
            samples.push(sample);
        }
        samples
    })
}

proptest! {
    #[test]
    fn incremental_push_equals_daily_energy_of_shuffled_input(
        (samples, shuffled) in arbitrary_samples()
            .prop_flat_map(|s| (Just(s.clone()), Just(s).prop_shuffle()))
    ) {
        let tz = Europe::Berlin;
        let mut state = AccumulatorState::default();
        let mut incremental: BTreeMap<NaiveDate, DayEnergy> = BTreeMap::new();
        for sample in &samples {
            let before = state.last_time;
            let (day, step) = state.push(sample, tz, &rules()).unwrap();
            prop_assert!(step.wh >= 0.0);
            match before {
                Some(last) => prop_assert!(step.wh <= rules().limit_wh(sample.time - last)),
                None => prop_assert_eq!(step.wh, 0.0),
            }
            incremental.entry(day).or_default().add_step(&step);
        }
        prop_assert_eq!(&daily_energy(&shuffled, tz, &rules()), &incremental);

        for (date, day) in &incremental {
            let buckets = period_buckets(Period::Day, *date, tz);
            let hourly: f64 = energy_per_bucket(&shuffled, &buckets, &rules()).iter().sum();
            prop_assert!((hourly - day.energy_wh).abs() <= 1e-6 * day.energy_wh.max(1.0));
        }
    }

    #[test]
    fn calendar_never_panics_and_buckets_tile_the_period(
        days_from_ce in -1_000_000i32..1_000_000,
        by in any::<i32>(),
        zone in 0usize..5,
    ) {
        let tz = [Europe::Berlin, America::Santiago, Australia::Lord_Howe, chrono_tz::UTC,
            chrono_tz::Pacific::Apia][zone];
        let date = NaiveDate::from_num_days_from_ce_opt(days_from_ce + 739_000).unwrap();
        for period in [Period::Day, Period::Week, Period::Month, Period::Year] {
            let _ = shift_period(period, date, by);
            let buckets = period_buckets(period, date, tz);
            let (start, end) = period_bounds(period, date, tz);
            prop_assert_eq!(buckets.first().map_or(start, |b| b.start), start);
            prop_assert_eq!(buckets.last().map_or(end, |b| b.end), end);
            for pair in buckets.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start);
            }
        }
        prop_assert_eq!(shift_period(Period::Month, shift_period(Period::Month, date, 1), -1)
            .with_day(1), date.with_day(1));
    }
}
