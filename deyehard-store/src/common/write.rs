//! The backend-independent half of `write_readings`: sorting a batch into items to insert,
//! outcomes, and the rollup deltas of the rows actually inserted.
//!
//! Each backend writes a batch of [`WriteInput`]s inside a transaction it is given
//! (`write_readings_in`), so `write_readings` (one tenant, one receive time) and the collector's
//! batches (many frames, each with its own receive time) share one code path.

use std::collections::{BTreeMap, HashMap, HashSet};

use deyehard_core::{InverterId, Reading};

use crate::model::WriteOutcome;
use crate::series::{STEP_1H_MS, STEP_5M_MS};
use crate::ts::Ts;

/// One reading to write: the inverter, the reading and when the server received it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteInput<'a> {
    /// The inverter.
    pub(crate) inverter: i64,
    /// The reading.
    pub(crate) reading: &'a Reading,
    /// When the server received it.
    pub(crate) received_at: Ts,
}

/// The inputs of a `write_readings` batch: all received at `received_at`.
pub(crate) fn inputs(batch: &[(InverterId, Reading)], received_at: Ts) -> Vec<WriteInput<'_>> {
    batch
        .iter()
        .map(|(inverter, reading)| WriteInput {
            inverter: inverter.get(),
            reading,
            received_at,
        })
        .collect()
}

/// A reading of the batch that belongs to the scope and is not repeated within the batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item<'a> {
    /// Position in the batch.
    pub(crate) index: usize,
    /// The inverter.
    pub(crate) inverter: i64,
    /// Device time, millisecond precision.
    pub(crate) time: Ts,
    /// The reading.
    pub(crate) reading: &'a Reading,
    /// When the server received it.
    pub(crate) received_at: Ts,
}

/// Sorts a batch: items of inverters outside `owned` are `NotFound`, repeats of an
/// (inverter, time) within the batch are `Duplicate`, everything else becomes an [`Item`] whose
/// outcome is `Duplicate` until the insert reports it stored (see [`mark_stored`]).
pub(crate) fn prepare<'a>(
    batch: &[WriteInput<'a>],
    owned: &HashSet<i64>,
) -> (Vec<WriteOutcome>, Vec<Item<'a>>) {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut items = Vec::with_capacity(batch.len());
    let mut seen = HashSet::with_capacity(batch.len());
    for (index, input) in batch.iter().enumerate() {
        let (inverter, reading) = (input.inverter, input.reading);
        let time = Ts::new(reading.time);
        if !owned.contains(&inverter) {
            outcomes.push(WriteOutcome::NotFound);
        } else {
            outcomes.push(WriteOutcome::Duplicate);
            if seen.insert((inverter, time)) {
                items.push(Item {
                    index,
                    inverter,
                    time,
                    reading,
                    received_at: input.received_at,
                });
            }
        }
    }
    (outcomes, items)
}

/// Marks the items whose AC row was inserted as stored and returns them.
pub(crate) fn mark_stored<'a>(
    outcomes: &mut [WriteOutcome],
    items: &[Item<'a>],
    inserted: &HashSet<(i64, Ts)>,
) -> Vec<Item<'a>> {
    let mut stored = Vec::with_capacity(inserted.len());
    for item in items {
        if inserted.contains(&(item.inverter, item.time)) {
            if let Some(outcome) = outcomes.get_mut(item.index) {
                *outcome = WriteOutcome::Stored;
            }
            stored.push(*item);
        }
    }
    stored
}

/// Distinct inverter ids of the batch, ascending (lock order).
pub(crate) fn inverter_ids(batch: &[WriteInput<'_>]) -> Vec<i64> {
    let mut ids: Vec<i64> = batch.iter().map(|input| input.inverter).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The latest receive time of each of the `owned` inverters in the batch (its new
/// `last_seen_at`), by inverter id.
pub(crate) fn seen_times(batch: &[WriteInput<'_>], owned: &HashSet<i64>) -> BTreeMap<i64, Ts> {
    let mut seen: BTreeMap<i64, Ts> = BTreeMap::new();
    for input in batch.iter().filter(|i| owned.contains(&i.inverter)) {
        let at = seen.entry(input.inverter).or_insert(input.received_at);
        *at = (*at).max(input.received_at);
    }
    seen
}

/// Replaces values that are not finite (NaN, ±∞) by absent ones: SQLite would store NaN as
/// NULL anyway, and both backends must hold the same data.
pub(crate) fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

/// What a batch adds to one rollup bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct RollupDelta {
    /// Reachable readings with a power value.
    pub(crate) samples: i64,
    /// Their power sum, W.
    pub(crate) power_sum: f64,
    /// Their lowest power, W.
    pub(crate) power_min: Option<f64>,
    /// Their highest power, W.
    pub(crate) power_max: Option<f64>,
}

impl RollupDelta {
    fn add_power(&mut self, power: f64) {
        self.samples += 1;
        self.power_sum += power;
        self.power_min = Some(self.power_min.map_or(power, |m| m.min(power)));
        self.power_max = Some(self.power_max.map_or(power, |m| m.max(power)));
    }
}

/// Rollup deltas keyed by (inverter, bucket start).
pub(crate) type Deltas = BTreeMap<(i64, Ts), RollupDelta>;

/// New energies (Wh) of 5-minute buckets, keyed by (inverter, bucket start).
pub(crate) type BucketEnergies = BTreeMap<(i64, Ts), f64>;

/// A 5-minute rollup row to write: its key and power delta.
pub(crate) type RollupRow = ((i64, Ts), RollupDelta);

/// The 5-minute rollup rows a batch writes: power deltas with a new energy (buckets whose energy
/// the in-order upkeep moved), and power deltas alone (energy unchanged). Each row is written
/// once.
pub(crate) fn rollup_rows(
    five: &Deltas,
    energies: &BucketEnergies,
) -> (Vec<(RollupRow, f64)>, Vec<RollupRow>) {
    let with_energy = energies
        .iter()
        .map(|(key, energy_wh)| {
            let delta = five.get(key).copied().unwrap_or_default();
            ((*key, delta), *energy_wh)
        })
        .collect();
    let power_only = five
        .iter()
        .filter(|(key, _)| !energies.contains_key(key))
        .map(|(key, delta)| (*key, *delta))
        .collect();
    (with_energy, power_only)
}

/// Start of the `step_ms` bucket containing `time`.
pub(crate) fn bucket_of(time: Ts, step_ms: i64) -> Ts {
    let start = time.millis().div_euclid(step_ms) * step_ms;
    Ts::from_millis(start).unwrap_or(time)
}

/// Power deltas of the stored items for the 5-minute and the hourly rollups. Only reachable
/// readings with a power value count (an unreachable inverter's power is stale).
pub(crate) fn power_deltas(stored: &[Item<'_>]) -> (Deltas, Deltas) {
    let mut five = Deltas::new();
    let mut hour = Deltas::new();
    for item in stored {
        let Some(power) = finite(item.reading.power_ac_w).filter(|_| item.reading.reachable) else {
            continue;
        };
        five.entry((item.inverter, bucket_of(item.time, STEP_5M_MS)))
            .or_default()
            .add_power(power);
        hour.entry((item.inverter, bucket_of(item.time, STEP_1H_MS)))
            .or_default()
            .add_power(power);
    }
    (five, hour)
}

/// The stored items grouped by inverter, each group in time order.
pub(crate) fn by_inverter<'a>(stored: &[Item<'a>]) -> HashMap<i64, Vec<Item<'a>>> {
    let mut groups: HashMap<i64, Vec<Item<'a>>> = HashMap::new();
    for item in stored {
        groups.entry(item.inverter).or_default().push(*item);
    }
    for group in groups.values_mut() {
        group.sort_by_key(|item| item.time);
    }
    groups
}

/// The items of `readings` in order, each of the inverter `inverter(position)` and received
/// at its own time (for tests).
#[cfg(test)]
pub(crate) fn test_items(readings: &[Reading], inverter: impl Fn(usize) -> i64) -> Vec<Item<'_>> {
    readings
        .iter()
        .enumerate()
        .map(|(index, reading)| Item {
            index,
            inverter: inverter(index),
            time: Ts::new(reading.time),
            reading,
            received_at: Ts::new(reading.time),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use deyehard_core::Source;

    use super::*;

    fn reading(ms: i64, power: Option<f64>, reachable: bool) -> Reading {
        let time: DateTime<Utc> = DateTime::from_timestamp_millis(ms).unwrap_or_default();
        let mut r = Reading::new(time, Source::Opendtu);
        r.power_ac_w = power;
        r.reachable = reachable;
        r
    }

    #[test]
    fn prepare_sorts_out_foreign_inverters_and_repeats() {
        let batch = vec![
            (InverterId::new(1), reading(60_000, Some(1.0), true)),
            (InverterId::new(2), reading(60_000, Some(1.0), true)),
            (InverterId::new(1), reading(60_000, Some(2.0), true)),
            (InverterId::new(1), reading(120_000, Some(2.0), true)),
        ];
        let owned = HashSet::from([1]);
        let received = Ts::new(batch[0].1.time);
        let inputs = inputs(&batch, received);
        let (mut outcomes, items) = prepare(&inputs, &owned);
        assert!(items.iter().all(|i| i.received_at == received));
        assert_eq!(
            seen_times(&inputs, &owned).into_iter().collect::<Vec<_>>(),
            [(1, received)]
        );
        assert_eq!(items.len(), 2);
        let inserted = HashSet::from([(1, Ts::new(batch[0].1.time))]);
        let stored = mark_stored(&mut outcomes, &items, &inserted);
        assert_eq!(stored.len(), 1);
        assert_eq!(
            outcomes,
            vec![
                WriteOutcome::Stored,
                WriteOutcome::NotFound,
                WriteOutcome::Duplicate,
                WriteOutcome::Duplicate
            ]
        );
    }

    #[test]
    fn rollup_rows_write_each_bucket_once() {
        let bucket = |ms| Ts::from_millis(ms).unwrap_or_else(Ts::now);
        let delta = RollupDelta {
            samples: 2,
            power_sum: 10.0,
            power_min: Some(4.0),
            power_max: Some(6.0),
        };
        let five = Deltas::from([((1, bucket(0)), delta), ((1, bucket(300_000)), delta)]);
        // energy moved in one bucket with power and in one without (no power sample)
        let energies = BucketEnergies::from([((1, bucket(0)), 1.5), ((2, bucket(0)), 0.5)]);
        let (with_energy, power_only) = rollup_rows(&five, &energies);
        assert_eq!(
            with_energy,
            vec![
                (((1, bucket(0)), delta), 1.5),
                (((2, bucket(0)), RollupDelta::default()), 0.5)
            ]
        );
        assert_eq!(power_only, vec![((1, bucket(300_000)), delta)]);
    }

    #[test]
    fn power_deltas_skip_unreachable_and_missing_power() {
        let readings = [
            reading(0, Some(100.0), true),
            reading(60_000, Some(300.0), true),
            reading(120_000, Some(999.0), false),
            reading(180_000, None, true),
            reading(300_000, Some(f64::NAN), true),
            reading(360_000, Some(50.0), true),
        ];
        let items = test_items(&readings, |_| 7);
        let (five, hour) = power_deltas(&items);
        assert_eq!(five.len(), 2);
        let first = five.values().next().copied().unwrap_or_default();
        assert_eq!((first.samples, first.power_sum), (2, 400.0));
        assert_eq!(
            (first.power_min, first.power_max),
            (Some(100.0), Some(300.0))
        );
        let only_hour = hour.values().next().copied().unwrap_or_default();
        assert_eq!(
            (hour.len(), only_hour.samples, only_hour.power_sum),
            (1, 3, 450.0)
        );
    }
}
