//! Daily energy and the 5-minute energy buckets, maintained in the write transaction with the
//! step function of `deyehard_core::energy` (DESIGN.md §7).
//!
//! Per inverter, `energy_state` holds the accumulator after the newest sample, and every
//! `daily_energy` row holds the accumulator as it was after that day's last sample. A batch of
//! newly inserted readings (the insert's `RETURNING` tells which) then takes one of two paths:
//!
//! - **in order** (all newer than the newest stored sample): the accumulator is advanced with
//!   `push()`, continuing the stored totals of the days and buckets it touches;
//! - **late**: the affected days are recomputed from raw rows, day by day from the earliest late
//!   sample's local day, starting from the state stored at the end of the previous day, until a
//!   recomputed day (at or after the newest late sample) ends in the state it had before —
//!   later days cannot change then. A late reading therefore costs a day or two, not a history.
//!
//! Both paths fold samples with the same function ([`Fold::run`]: `push`, then
//! `DayEnergy::add_step` in time order, continuing from the stored totals), so writing readings
//! in any order gives the same rows, to the bit. Local days use the owner's `users.time_zone`;
//! a changed zone applies to days computed afterwards.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use deyehard_core::energy::{
    self, AccumulatorState, Bucket, DayEnergy, EnergyRules, EnergySample, Period,
};

use super::write::{BucketEnergies, Item, bucket_of, finite};
use crate::StoreError;
use crate::model::EnergyBucket;
use crate::rows::DailyEnergyRow;
use crate::series::STEP_5M_MS;
use crate::ts::Ts;

/// What a write needs to know about one of the scope's inverters (selected by SQLite's
/// `WRITE_TARGETS`, and on PostgreSQL by `WRITE_START` once `lock_targets` locked them).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TargetRow {
    pub(crate) inverter_id: i64,
    time_zone: String,
    rated_power_w: Option<f64>,
    last_sample_time: Option<Ts>,
    last_time: Option<Ts>,
    last_power_w: Option<f64>,
    last_yield_day_wh: Option<f64>,
    last_yield_total_wh: Option<f64>,
    last_pending_total_wh: Option<f64>,
}

/// An inverter's energy bookkeeping during a write.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The inverter.
    pub(crate) inverter: i64,
    /// The owner's time zone.
    pub(crate) tz: Tz,
    /// Step rules with the inverter's rated power.
    pub(crate) rules: EnergyRules,
    /// The accumulator after the newest sample.
    pub(crate) state: AccumulatorState,
    /// Time of the newest stored sample, reachable or not.
    pub(crate) last_sample_time: Option<Ts>,
}

impl TryFrom<TargetRow> for Target {
    type Error = StoreError;
    fn try_from(row: TargetRow) -> Result<Self, StoreError> {
        let tz = parse_zone(&row.time_zone)?;
        Ok(Self {
            inverter: row.inverter_id,
            tz,
            rules: EnergyRules::for_rated_power(row.rated_power_w),
            state: AccumulatorState {
                last_time: row.last_time.map(Ts::get),
                last_power_w: row.last_power_w,
                last_yield_day_wh: row.last_yield_day_wh,
                last_yield_total_wh: row.last_yield_total_wh,
                pending_yield_total_wh: row.last_pending_total_wh,
            },
            last_sample_time: row.last_sample_time,
        })
    }
}

impl Target {
    /// Whether every item is newer than the newest stored sample.
    pub(crate) fn in_order(&self, items: &[Item<'_>]) -> bool {
        items
            .iter()
            .all(|item| Some(item.time) > self.last_sample_time)
    }

    /// The local day of an instant.
    pub(crate) fn day(&self, time: Ts) -> NaiveDate {
        energy::local_day(time.get(), self.tz)
    }

    /// Moves the newest-sample mark forward over `items`.
    pub(crate) fn saw(&mut self, items: &[Item<'_>]) {
        let newest = items.iter().map(|item| item.time).max();
        self.last_sample_time = self.last_sample_time.max(newest);
    }
}

/// The energy view of a reading as stored (values that are not finite count as absent).
pub(crate) fn sample(item: &Item<'_>) -> EnergySample {
    let r = item.reading;
    EnergySample {
        time: item.time.get(),
        power_w: finite(r.power_ac_w),
        yield_day_wh: finite(r.yield_day_wh),
        yield_total_wh: finite(r.yield_total_wh),
        reachable: r.reachable,
    }
}

/// A stored sample as the recomputation reads it back.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SampleRow {
    time: Ts,
    power_ac_w: Option<f64>,
    yield_day_wh: Option<f64>,
    yield_total_wh: Option<f64>,
    reachable: bool,
}

impl From<SampleRow> for EnergySample {
    fn from(r: SampleRow) -> Self {
        Self {
            time: r.time.get(),
            power_w: r.power_ac_w,
            yield_day_wh: r.yield_day_wh,
            yield_total_wh: r.yield_total_wh,
            reachable: r.reachable,
        }
    }
}

/// A stored `daily_energy` row with its end-of-day accumulator.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DayRow {
    pub(crate) day: NaiveDate,
    energy_wh: f64,
    peak_power_w: Option<f64>,
    samples: i64,
    state_last_time: Option<Ts>,
    state_power_w: Option<f64>,
    state_yield_day_wh: Option<f64>,
    state_yield_total_wh: Option<f64>,
    state_pending_total_wh: Option<f64>,
}

impl DayRow {
    /// The accumulator after the day's last sample.
    pub(crate) fn end_state(&self) -> AccumulatorState {
        AccumulatorState {
            last_time: self.state_last_time.map(Ts::get),
            last_power_w: self.state_power_w,
            last_yield_day_wh: self.state_yield_day_wh,
            last_yield_total_wh: self.state_yield_total_wh,
            pending_yield_total_wh: self.state_pending_total_wh,
        }
    }

    fn totals(&self) -> DayEnergy {
        DayEnergy {
            energy_wh: self.energy_wh,
            peak_power_w: self.peak_power_w,
            samples: u64::try_from(self.samples).unwrap_or(0),
        }
    }
}

/// A stored `daily_energy` row and its inverter (the batched reads of several inverters).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct InverterDayRow {
    pub(crate) inverter_id: i64,
    #[sqlx(flatten)]
    pub(crate) row: DayRow,
}

/// The keys `first..=last` of one inverter's rows (a batched read: local days of day rows, or
/// 5-minute buckets of bucket energies).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span<K> {
    pub(crate) inverter: i64,
    pub(crate) first: K,
    pub(crate) last: K,
}

/// A span of local days.
pub(crate) type DaySpan = Span<NaiveDate>;
/// A span of 5-minute buckets.
pub(crate) type BucketSpan = Span<Ts>;

/// The stored rows a batch's in-order folds continue: `daily_energy` rows and bucket energies
/// (inverter, 5-minute bucket, energy) of the spans of [`stored_spans`]. Each backend reads them
/// before the upkeep (PostgreSQL in the statement that inserts the AC rows).
#[derive(Debug, Default)]
pub(crate) struct StoredEnergy {
    /// Day rows of the day spans.
    pub(crate) days: Vec<InverterDayRow>,
    /// Bucket energies of the bucket spans.
    pub(crate) buckets: Vec<(i64, Ts, f64)>,
}

/// The spans of stored rows that the items may continue, per inverter: the 5-minute buckets
/// from its first item's to its last item's, and the days from the UTC day before its first item
/// to the UTC day after its last one. Local days lie within a day of UTC days (no time zone is
/// a day or more off UTC), so the day span holds every local day of the items whatever the
/// owner's zone, which the read does not need to know; a fold only uses the rows of days and
/// buckets it touches ([`Fold::continuing`]), so the others are harmless.
pub(crate) fn stored_spans(items: &[Item<'_>]) -> (Vec<DaySpan>, Vec<BucketSpan>) {
    let mut ranges: BTreeMap<i64, (Ts, Ts)> = BTreeMap::new();
    for item in items {
        let range = ranges
            .entry(item.inverter)
            .or_insert((item.time, item.time));
        range.0 = range.0.min(item.time);
        range.1 = range.1.max(item.time);
    }
    let day_before = |time: Ts| {
        let day = time.get().date_naive();
        day.pred_opt().unwrap_or(day)
    };
    let day_after = |time: Ts| {
        let day = time.get().date_naive();
        day.succ_opt().unwrap_or(day)
    };
    ranges
        .into_iter()
        .map(|(inverter, (first, last))| {
            (
                DaySpan {
                    inverter,
                    first: day_before(first),
                    last: day_after(last),
                },
                BucketSpan {
                    inverter,
                    first: bucket_of(first, STEP_5M_MS),
                    last: bucket_of(last, STEP_5M_MS),
                },
            )
        })
        .unzip()
}

/// One day of one inverter to write (a batched `daily_energy` upsert).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DayWrite<'a> {
    pub(crate) inverter: i64,
    pub(crate) day: NaiveDate,
    pub(crate) fold: &'a DayFold,
}

/// The day rows the folds touched (one fold per inverter).
pub(crate) fn day_writes(folds: &[(i64, Fold)]) -> Vec<DayWrite<'_>> {
    folds
        .iter()
        .flat_map(|(inverter, fold)| {
            fold.days.iter().map(|(day, folded)| DayWrite {
                inverter: *inverter,
                day: *day,
                fold: folded,
            })
        })
        .collect()
}

/// What the energy upkeep of a batch leaves for the caller to write, so that a backend can
/// write it together with the batch's other rows: the folds of the inverters whose items were
/// all in order (their days and bucket energies) and the new energy state of every target.
#[derive(Debug)]
pub(crate) struct Upkeep {
    /// One fold per in-order inverter.
    pub(crate) folds: Vec<(i64, Fold)>,
    /// Every target of the batch, with its state after the batch.
    pub(crate) states: Vec<Target>,
}

/// The bucket energies the folds touched, by (inverter, bucket).
pub(crate) fn bucket_energies(folds: &[(i64, Fold)]) -> BucketEnergies {
    folds
        .iter()
        .flat_map(|(inverter, fold)| {
            fold.buckets
                .iter()
                .map(move |(bucket, energy_wh)| ((*inverter, *bucket), *energy_wh))
        })
        .collect()
}

/// One day as the fold leaves it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DayFold {
    /// Totals of the day.
    pub(crate) totals: DayEnergy,
    /// Accumulator after the day's last sample.
    pub(crate) end_state: AccumulatorState,
}

impl DayFold {
    /// The sample count as stored.
    pub(crate) fn samples(&self) -> i64 {
        i64::try_from(self.totals.samples).unwrap_or(i64::MAX)
    }
}

/// Samples folded into days and 5-minute buckets, continuing from stored totals.
#[derive(Debug, Default)]
pub(crate) struct Fold {
    day_seeds: BTreeMap<NaiveDate, DayEnergy>,
    bucket_seeds: BTreeMap<Ts, f64>,
    /// The days touched, with their new totals and end states.
    pub(crate) days: BTreeMap<NaiveDate, DayFold>,
    /// The 5-minute buckets touched, with their new energy totals (Wh).
    pub(crate) buckets: BTreeMap<Ts, f64>,
}

impl Fold {
    /// A fold continuing the stored day rows and bucket energies.
    pub(crate) fn continuing(days: &[DayRow], buckets: Vec<(Ts, f64)>) -> Self {
        Self {
            day_seeds: days.iter().map(|d| (d.day, d.totals())).collect(),
            bucket_seeds: buckets.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Feeds `samples` (in time order) to `state`: each accepted step is added to its local
    /// day (`DayEnergy::add_step`) and to the 5-minute bucket of the sample that ends it.
    pub(crate) fn run(
        &mut self,
        state: &mut AccumulatorState,
        samples: impl IntoIterator<Item = EnergySample>,
        tz: Tz,
        rules: &EnergyRules,
    ) {
        for sample in samples {
            let Some((day, step)) = state.push(&sample, tz, rules) else {
                continue;
            };
            let seeds = &self.day_seeds;
            let entry = self.days.entry(day).or_insert_with(|| DayFold {
                totals: seeds.get(&day).copied().unwrap_or_default(),
                end_state: AccumulatorState::default(),
            });
            entry.totals.add_step(&step);
            entry.end_state = state.clone();
            if step.wh != 0.0 {
                let bucket = bucket_of(Ts::new(sample.time), STEP_5M_MS);
                let seed = self.bucket_seeds.get(&bucket).copied().unwrap_or(0.0);
                *self.buckets.entry(bucket).or_insert(seed) += step.wh;
            }
        }
    }
}

/// A stored time zone name (checked when it was stored).
pub(crate) fn parse_zone(name: &str) -> Result<Tz, StoreError> {
    energy::parse_tz(name).map_err(|e| StoreError::corrupt(e.to_string()))
}

/// The first and last local day of the period containing `date`.
pub(crate) fn period_days(period: Period, date: NaiveDate, tz: Tz) -> (NaiveDate, NaiveDate) {
    let (start, end) = energy::period_bounds(period, date, tz);
    let last = end - TimeDelta::milliseconds(1);
    (energy::local_day(start, tz), energy::local_day(last, tz))
}

/// The hourly bars of a day view from the 5-minute bucket energies (each bucket lies within
/// one local hour: every zone offset in use is a multiple of 15 minutes).
pub(crate) fn hour_bars(hours: &[Bucket], buckets: &[(Ts, f64)]) -> Vec<EnergyBucket> {
    let mut bars: Vec<EnergyBucket> = hours.iter().map(|h| bar(h, 0.0)).collect();
    for (bucket, energy_wh) in buckets {
        let time = bucket.get();
        let index = hours.partition_point(|h| h.start <= time);
        if let Some(bar) = index.checked_sub(1).and_then(|i| bars.get_mut(i))
            && time < bar.end
        {
            bar.energy_wh += energy_wh;
        }
    }
    bars
}

/// The bars of a week, month or year view from the daily rows.
pub(crate) fn day_bars(
    rows: Vec<DailyEnergyRow>,
    period: Period,
    date: NaiveDate,
    tz: Tz,
) -> Vec<EnergyBucket> {
    let days: BTreeMap<NaiveDate, DayEnergy> = rows
        .into_iter()
        .map(|r| {
            let samples = u64::try_from(r.samples).unwrap_or(0);
            let totals = DayEnergy {
                energy_wh: r.energy_wh,
                peak_power_w: r.peak_power_w,
                samples,
            };
            (r.day, totals)
        })
        .collect();
    energy::sum_days_into_buckets(&days, period, date, tz)
        .iter()
        .map(|(b, energy_wh)| bar(b, *energy_wh))
        .collect()
}

fn bar(bucket: &Bucket, energy_wh: f64) -> EnergyBucket {
    EnergyBucket {
        start: bucket.start,
        end: bucket.end,
        label: bucket.label,
        energy_wh,
    }
}

/// UTC bounds `[start, end)` of a local day as stored instants.
pub(crate) fn day_range(day: NaiveDate, tz: Tz) -> (Ts, Ts) {
    let (start, end): (DateTime<Utc>, DateTime<Utc>) = energy::day_bounds(day, tz);
    (Ts::new(start), Ts::new(end))
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use deyehard_core::{Reading, Source};

    use super::*;
    use crate::common::write::test_items;

    fn reading(minute: i64, total: f64) -> Reading {
        let start = DateTime::from_timestamp(1_750_000_000, 0).unwrap_or_default();
        let mut r = Reading::new(start + TimeDelta::minutes(minute), Source::Opendtu);
        r.power_ac_w = Some(600.0);
        r.yield_total_wh = Some(total);
        r
    }

    fn samples(readings: &[Reading]) -> Vec<EnergySample> {
        test_items(readings, |_| 1).iter().map(sample).collect()
    }

    #[test]
    fn continuing_a_fold_equals_one_fold_to_the_bit() {
        let tz = chrono_tz::Europe::Berlin;
        let rules = EnergyRules::for_rated_power(Some(800.0));
        let readings: Vec<Reading> = (0..40)
            .map(|m| reading(m, 1000.0 + m as f64 * 0.1 + (m as f64).sqrt()))
            .collect();

        let mut whole_state = AccumulatorState::default();
        let mut whole = Fold::default();
        whole.run(&mut whole_state, samples(&readings), tz, &rules);

        let mut state = AccumulatorState::default();
        let mut first = Fold::default();
        first.run(&mut state, samples(&readings[..17]), tz, &rules);
        let stored: Vec<DayRow> = first
            .days
            .iter()
            .map(|(day, fold)| DayRow {
                day: *day,
                energy_wh: fold.totals.energy_wh,
                peak_power_w: fold.totals.peak_power_w,
                samples: fold.samples(),
                state_last_time: None,
                state_power_w: None,
                state_yield_day_wh: None,
                state_yield_total_wh: None,
                state_pending_total_wh: None,
            })
            .collect();
        let mut second = Fold::continuing(&stored, first.buckets.clone().into_iter().collect());
        second.run(&mut state, samples(&readings[17..]), tz, &rules);

        assert_eq!(state, whole_state);
        assert_eq!(second.days, whole.days);
        for (bucket, wh) in &whole.buckets {
            let continued = second.buckets.get(bucket).or(first.buckets.get(bucket));
            assert_eq!(continued, Some(wh));
        }
        let total: f64 = whole.days.values().map(|d| d.totals.energy_wh).sum();
        assert!((total - (3.9 + 39_f64.sqrt())).abs() < 1e-9, "{total}");
    }

    #[test]
    fn stored_spans_hold_every_local_day_of_the_items() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).map(|t| t.to_utc());
        let times = [
            at("2026-03-29T00:30:00Z"),
            at("2026-03-29T11:59:00Z"),
            at("2026-03-29T23:50:00Z"),
        ];
        let readings: Vec<Reading> = times
            .iter()
            .filter_map(|t| t.as_ref().ok())
            .map(|t| Reading::new(*t, Source::Opendtu))
            .collect();
        assert_eq!(readings.len(), 3);
        let items = test_items(&readings, |index| 7 + (index as i64 % 2));
        let (days, buckets) = stored_spans(&items);
        assert_eq!(days.len(), 2);
        assert_eq!(buckets.len(), 2);
        let zones = [
            chrono_tz::Pacific::Kiritimati,
            chrono_tz::Etc::GMTPlus12,
            chrono_tz::Europe::Berlin,
            chrono_tz::America::St_Johns,
        ];
        for item in &items {
            let days = days.iter().find(|s| s.inverter == item.inverter);
            let buckets = buckets.iter().find(|s| s.inverter == item.inverter);
            let (Some(days), Some(buckets)) = (days, buckets) else {
                panic!("no spans for inverter {}", item.inverter);
            };
            for tz in zones {
                let day = energy::local_day(item.time.get(), tz);
                assert!(days.first <= day && day <= days.last, "{day} in {tz}");
            }
            let bucket = bucket_of(item.time, STEP_5M_MS);
            assert!(buckets.first <= bucket && bucket <= buckets.last);
        }
        // Inverter 7 holds the first and the last item: its span reaches a day beyond both.
        let seven = days.iter().find(|s| s.inverter == 7);
        assert_eq!(
            seven.map(|s| (s.first.to_string(), s.last.to_string())),
            Some(("2026-03-28".to_owned(), "2026-03-30".to_owned()))
        );
    }
}
