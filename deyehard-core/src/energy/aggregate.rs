//! Energy over many samples: per local day, per chart bucket, and daily energies summed into
//! weeks, months and years. Everything here runs the accumulator's step over sorted samples.

use std::collections::BTreeMap;
use std::ops::Bound;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::calendar::{date_bucket, date_ranges};
use super::{AccumulatorState, Bucket, DayEnergy, EnergyRules, EnergySample, Period};

/// The samples by time (stable, so the first of several with the same time is kept), without
/// duplicates by time.
fn sorted_unique(samples: &[EnergySample]) -> Vec<&EnergySample> {
    let mut sorted: Vec<&EnergySample> = samples.iter().collect();
    sorted.sort_by_key(|sample| sample.time);
    sorted.dedup_by_key(|sample| sample.time);
    sorted
}

/// Runs `state` over `samples` (sorted first; duplicates by time and samples not after the
/// state's `last_time` are skipped) and returns the energy per local day of the steps it
/// accepted. `state` ends as a store should persist it.
pub fn replay(
    state: &mut AccumulatorState,
    samples: &[EnergySample],
    tz: Tz,
    rules: &EnergyRules,
) -> BTreeMap<NaiveDate, DayEnergy> {
    let mut days = BTreeMap::new();
    for sample in sorted_unique(samples) {
        if let Some((day, step)) = state.push(sample, tz, rules) {
            days.entry(day)
                .or_insert_with(DayEnergy::default)
                .add_step(&step);
        }
    }
    days
}

/// Per local day: energy (Wh) and peak power (W) — computed by running [`AccumulatorState`] over
/// the sorted samples (unsorted input is sorted; duplicates by time ignored). Days with samples
/// but no energy appear with 0.
pub fn daily_energy(
    samples: &[EnergySample],
    tz: Tz,
    rules: &EnergyRules,
) -> BTreeMap<NaiveDate, DayEnergy> {
    replay(&mut AccumulatorState::default(), samples, tz, rules)
}

/// The index of the bucket containing `time` in buckets sorted by start.
fn bucket_index(buckets: &[Bucket], time: DateTime<Utc>) -> Option<usize> {
    let index = buckets
        .partition_point(|bucket| bucket.start <= time)
        .checked_sub(1)?;
    buckets
        .get(index)
        .filter(|bucket| time < bucket.end)
        .map(|_| index)
}

/// Energy per bucket from raw samples (used for the Day view's hourly bars): steps attributed to
/// the bucket containing the step's end time. `buckets` are sorted by start, as
/// [`period_buckets`](super::period_buckets) returns them. Pass the samples from the last
/// reachable one before the first bucket on, so that the first step has a baseline.
pub fn energy_per_bucket(
    samples: &[EnergySample],
    buckets: &[Bucket],
    rules: &EnergyRules,
) -> Vec<f64> {
    let mut energy = vec![0.0; buckets.len()];
    let mut state = AccumulatorState::default();
    for sample in sorted_unique(samples) {
        let Some(step) = state.step(sample, rules) else {
            continue;
        };
        if let Some(slot) = bucket_index(buckets, sample.time).and_then(|i| energy.get_mut(i)) {
            *slot += step.wh;
        }
    }
    energy
}

/// Sums daily energies into buckets of `period`: each day for `Week` and `Month`, each month for
/// `Year`. For `Day` (whose hourly bars come from [`energy_per_bucket`]) it returns one bucket,
/// the whole day. Days without an entry count 0.
pub fn sum_days_into_buckets(
    days: &BTreeMap<NaiveDate, DayEnergy>,
    period: Period,
    date: NaiveDate,
    tz: Tz,
) -> Vec<(Bucket, f64)> {
    date_ranges(period, date)
        .into_iter()
        .map(|(first, end)| {
            let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
            let sum = days
                .range((Bound::Included(first), upper))
                .map(|(_, day)| day.energy_wh)
                .sum();
            (date_bucket(first, end, tz), sum)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::{day_bounds, period_buckets};
    use chrono::TimeDelta;
    use chrono_tz::Europe::Berlin;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn counter_sample(time: DateTime<Utc>, total: f64) -> EnergySample {
        EnergySample {
            time,
            power_w: Some(100.0),
            yield_day_wh: None,
            yield_total_wh: Some(total),
            reachable: true,
        }
    }

    #[test]
    fn unsorted_input_and_duplicates_give_the_sorted_result() {
        let start = day_bounds(d(2025, 6, 15), Berlin).0;
        let samples: Vec<EnergySample> = (0..10)
            .map(|i| counter_sample(start + TimeDelta::minutes(i), 1000.0 + 5.0 * i as f64))
            .collect();
        let sorted = daily_energy(&samples, Berlin, &EnergyRules::default());
        let mut messy: Vec<EnergySample> = samples.iter().rev().copied().collect();
        // a duplicate with a different value: the first one given wins, the rest is ignored
        messy.insert(
            0,
            counter_sample(samples[3].time, samples[3].yield_total_wh.unwrap()),
        );
        messy.push(counter_sample(samples[3].time, 9e9));
        assert_eq!(
            daily_energy(&messy, Berlin, &EnergyRules::default()),
            sorted
        );
        assert_eq!(sorted[&d(2025, 6, 15)].energy_wh, 45.0);
        assert_eq!(sorted[&d(2025, 6, 15)].samples, 10);
    }

    #[test]
    fn of_samples_with_the_same_time_the_first_given_counts() {
        // as in a store, where the first row stored for a time wins
        let start = day_bounds(d(2025, 6, 15), Berlin).0;
        let at = |minutes| start + TimeDelta::minutes(minutes);
        let stale = EnergySample {
            reachable: false,
            ..counter_sample(at(1), 1000.0)
        };
        let late_duplicate = EnergySample {
            power_w: Some(700.0),
            ..counter_sample(at(1), 1010.0)
        };
        let samples = [
            counter_sample(at(0), 1000.0),
            stale,
            late_duplicate,
            counter_sample(at(2), 1020.0),
        ];
        let expected = DayEnergy {
            energy_wh: 20.0,
            peak_power_w: Some(100.0),
            samples: 3,
        };
        let days = daily_energy(&samples, Berlin, &EnergyRules::default());
        assert_eq!(days[&d(2025, 6, 15)], expected);
    }

    #[test]
    fn days_with_samples_but_no_energy_appear_with_zero() {
        let start = day_bounds(d(2025, 6, 15), Berlin).0;
        let unreachable = EnergySample {
            reachable: false,
            ..counter_sample(start + TimeDelta::hours(2), 5.0)
        };
        let days = daily_energy(&[unreachable], Berlin, &EnergyRules::default());
        assert_eq!(
            days[&d(2025, 6, 15)],
            DayEnergy {
                energy_wh: 0.0,
                peak_power_w: None,
                samples: 1
            }
        );
        assert!(daily_energy(&[], Berlin, &EnergyRules::default()).is_empty());
    }

    #[test]
    fn replay_continues_from_a_state() {
        let start = day_bounds(d(2025, 6, 15), Berlin).0;
        let samples: Vec<EnergySample> = (0..6)
            .map(|i| counter_sample(start + TimeDelta::hours(i), 100.0 * i as f64))
            .collect();
        let mut state = AccumulatorState::default();
        replay(&mut state, &samples[..3], Berlin, &EnergyRules::default());
        let rest = replay(&mut state, &samples, Berlin, &EnergyRules::default());
        // the first three were before the state's last_time: skipped
        assert_eq!(rest[&d(2025, 6, 15)].energy_wh, 300.0);
        assert_eq!(rest[&d(2025, 6, 15)].samples, 3);
        assert_eq!(state.last_time, Some(samples[5].time));
    }

    #[test]
    fn steps_go_to_the_bucket_of_their_end() {
        let buckets = period_buckets(Period::Day, d(2025, 6, 15), Berlin);
        let start = buckets[0].start;
        let samples = [
            // the previous day: a baseline, no bucket
            counter_sample(start - TimeDelta::minutes(10), 1000.0),
            counter_sample(start, 1004.0),
            counter_sample(start + TimeDelta::minutes(59), 1010.0),
            counter_sample(start + TimeDelta::minutes(60), 1017.0),
            counter_sample(buckets[23].end, 1020.0),
        ];
        let energy = energy_per_bucket(&samples, &buckets, &EnergyRules::default());
        assert_eq!(energy.len(), 24);
        assert_eq!(energy[0], 10.0);
        assert_eq!(energy[1], 7.0);
        assert_eq!(energy.iter().sum::<f64>(), 17.0);
        assert!(energy_per_bucket(&samples, &[], &EnergyRules::default()).is_empty());
    }

    #[test]
    fn days_sum_into_months_and_years() {
        let mut days = BTreeMap::new();
        for (day, wh) in [
            (d(2023, 12, 31), 999.0),
            (d(2024, 1, 1), 1.0),
            (d(2024, 1, 31), 2.0),
            (d(2024, 2, 29), 4.0),
            (d(2024, 12, 31), 8.0),
            (d(2025, 1, 1), 999.0),
        ] {
            let energy = DayEnergy {
                energy_wh: wh,
                ..DayEnergy::default()
            };
            days.insert(day, energy);
        }
        let year = sum_days_into_buckets(&days, Period::Year, d(2024, 6, 1), Berlin);
        let sums: Vec<f64> = year.iter().map(|(_, wh)| *wh).collect();
        assert_eq!(
            sums,
            [3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 8.0]
        );
        let buckets: Vec<Bucket> = year.iter().map(|(bucket, _)| *bucket).collect();
        assert_eq!(buckets, period_buckets(Period::Year, d(2024, 6, 1), Berlin));

        let february = sum_days_into_buckets(&days, Period::Month, d(2024, 2, 1), Berlin);
        assert_eq!(february.len(), 29);
        assert_eq!(february[28].1, 4.0);
        assert_eq!(february.iter().map(|(_, wh)| wh).sum::<f64>(), 4.0);

        // the ISO week 2025-W01 starts on Monday 2024-12-30
        let week = sum_days_into_buckets(&days, Period::Week, d(2025, 1, 1), Berlin);
        let sums: Vec<f64> = week.iter().map(|(_, wh)| *wh).collect();
        assert_eq!(sums, [0.0, 8.0, 999.0, 0.0, 0.0, 0.0, 0.0]);

        let day = sum_days_into_buckets(&days, Period::Day, d(2024, 2, 29), Berlin);
        assert_eq!(day.len(), 1);
        assert_eq!(day[0].1, 4.0);
        assert_eq!(
            (day[0].0.start, day[0].0.end),
            day_bounds(d(2024, 2, 29), Berlin)
        );
    }
}
