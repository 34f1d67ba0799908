//! Conversion of a push into core [`Reading`]s: units, full precision, and the staleness rule.
//!
//! # Staleness and night (DESIGN.md §7, `protocol/opendtu-push.md` §1.4)
//!
//! A DTU keeps pushing its cached values when an inverter stops answering (at dusk, or when it
//! is switched off), so a reading is marked **offline** — `reachable = false` and
//! `producing = false` — when any of these holds:
//!
//! 1. the device says `reachable: false` ([`Offline::Unreachable`]);
//! 2. `last_update` is 0: no frame since the DTU booted ([`Offline::NoData`]);
//! 3. `timestamp − last_update` exceeds the staleness threshold, by default
//!    [`DEFAULT_STALE_AFTER`] (3 × the usual 60 s push interval) ([`Offline::Stale`]).
//!
//! The values themselves are kept as sent (the counters are still useful); the store and the
//! energy maths ignore offline samples for production.
//!
//! # Units
//!
//! Energies become Wh: a DC `yield_day` is already Wh, a `yield_total` is kWh × 1000, rounded
//! to the nearest mWh only to remove the binary noise of the decimal kWh text (`444.671` →
//! `444671.0`, not `444670.99999999994`; the device resolution is 1 Wh). Nothing is truncated.
//! Values in `[-1, 0)` (measurement noise at night, see [`crate::Limits`]) become `0.0`, except
//! the power factor.

use chrono::{DateTime, TimeDelta, Utc};
use deyehard_core::{DcReading, DeviceSerial, Reading, Source};

use crate::model::{DcChannel, Inverter, Push};

/// The default staleness threshold: 3 push intervals of 60 s.
pub const DEFAULT_STALE_AFTER: TimeDelta = TimeDelta::seconds(180);

/// One inverter's reading from a push, with what the reading alone cannot hold.
#[derive(Debug, Clone, PartialEq)]
pub struct InverterReading {
    /// The inverter serial from the push.
    pub serial: DeviceSerial,
    /// The inverter name from the push (may be empty).
    pub name: String,
    /// The reading at the push timestamp (UTC), in core units.
    pub reading: Reading,
    /// When the inverter last answered the DTU (`None` for `last_update` 0, or a value that is
    /// no valid time, or when the payload has no such field).
    pub last_update: Option<DateTime<Utc>>,
    /// Why the reading counts as offline (`None` when it is live).
    pub offline: Option<Offline>,
}

/// Why a reading is marked offline (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offline {
    /// The device reported the inverter unreachable.
    Unreachable,
    /// `last_update` is 0: the DTU has had no frame from the inverter since it booted.
    NoData,
    /// The last frame is older than the staleness threshold.
    Stale {
        /// `timestamp − last_update`.
        age: TimeDelta,
    },
}

impl Push {
    /// The readings of all inverters, in push order, with the [`DEFAULT_STALE_AFTER`]
    /// threshold. Call [`crate::validate`] first: conversion does not check plausibility.
    pub fn readings(&self) -> Vec<InverterReading> {
        self.readings_with(DEFAULT_STALE_AFTER)
    }

    /// The readings of all inverters, in push order, marking a reading offline when its last
    /// frame is older than `stale_after` (see the module docs).
    pub fn readings_with(&self, stale_after: TimeDelta) -> Vec<InverterReading> {
        let time = self.timestamp.to_utc();
        self.inverters
            .iter()
            .map(|inv| inverter_reading(inv, time, stale_after))
            .collect()
    }
}

fn inverter_reading(
    inv: &Inverter,
    time: DateTime<Utc>,
    stale_after: TimeDelta,
) -> InverterReading {
    let status = Status::classify(time, inv.reachable, Some(inv.last_update), stale_after);
    let m = &inv.measurements;
    let mut reading = Reading::new(time, Source::Opendtu);
    reading.power_ac_w = non_negative(m.power_ac);
    reading.voltage_ac_v = non_negative(m.voltage_ac);
    reading.current_ac_a = non_negative(m.current_ac);
    reading.frequency_hz = non_negative(m.frequency);
    reading.power_factor = m.power_factor;
    reading.power_dc_w = non_negative(m.power_dc);
    reading.dc = inv.dc_channels.iter().map(dc_reading).collect();
    reading.dc.sort_by_key(|dc| dc.channel);
    reading.yield_day_wh = sum_all(reading.dc.iter().map(|dc| dc.yield_day_wh));
    reading.yield_total_wh = sum_all(reading.dc.iter().map(|dc| dc.yield_total_wh));
    reading.reachable = status.offline.is_none();
    reading.producing = reading.reachable && inv.producing;
    InverterReading {
        serial: inv.serial.clone(),
        name: inv.name.clone(),
        reading,
        last_update: status.last_update,
        offline: status.offline,
    }
}

fn dc_reading(ch: &DcChannel) -> DcReading {
    let mut dc = DcReading::new(ch.channel);
    dc.name = non_empty(&ch.name);
    dc.power_w = non_negative(ch.power);
    dc.voltage_v = non_negative(ch.voltage);
    dc.current_a = non_negative(ch.current);
    dc.yield_day_wh = non_negative(ch.yield_day);
    dc.yield_total_wh = non_negative(ch.yield_total).map(kwh_to_wh);
    dc.irradiation_pct = non_negative(ch.irradiation);
    dc
}

/// The live/offline verdict for one device at one push.
pub(crate) struct Status {
    pub(crate) last_update: Option<DateTime<Utc>>,
    pub(crate) offline: Option<Offline>,
}

impl Status {
    /// Applies the staleness rule. `last_update` is `None` when the payload has no such field
    /// (then only `reachable` counts); `Some(0)` means "no frame since boot".
    pub(crate) fn classify(
        time: DateTime<Utc>,
        reachable: bool,
        last_update: Option<u64>,
        stale_after: TimeDelta,
    ) -> Self {
        let last = last_update.and_then(epoch);
        let offline = if !reachable {
            Some(Offline::Unreachable)
        } else {
            match (last_update, last) {
                (None, _) => None,
                (Some(_), None) => Some(Offline::NoData),
                (Some(_), Some(last)) => {
                    let age = time - last;
                    (age > stale_after).then_some(Offline::Stale { age })
                }
            }
        };
        Self {
            last_update: last,
            offline,
        }
    }
}

/// Unix seconds to a time; 0 and values beyond chrono's range give `None`.
fn epoch(secs: u64) -> Option<DateTime<Utc>> {
    if secs == 0 {
        return None;
    }
    i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
}

/// kWh → Wh, rounded to the nearest mWh (see the module docs).
pub(crate) fn kwh_to_wh(kwh: f64) -> f64 {
    (kwh * 1_000_000.0).round() / 1000.0
}

/// Clamps night-time noise below zero to 0 (validation has rejected anything below -1).
pub(crate) fn non_negative(v: Option<f64>) -> Option<f64> {
    v.map(|v| if v < 0.0 { 0.0 } else { v })
}

/// `None` for an empty (or blank) name.
pub(crate) fn non_empty(name: &str) -> Option<String> {
    (!name.trim().is_empty()).then(|| name.to_owned())
}

/// The sum when every item has a value; `None` when any is missing or there are none.
pub(crate) fn sum_all(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut total = None;
    for v in values {
        total = Some(total.unwrap_or(0.0) + v?);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn kwh_become_wh_without_binary_noise_or_truncation() {
        assert_eq!(kwh_to_wh(500.5), 500_500.0);
        assert_eq!(kwh_to_wh(444.671), 444_671.0);
        assert_eq!(kwh_to_wh(5120.004), 5_120_004.0);
        assert_eq!(kwh_to_wh(0.0005), 0.5);
        assert_eq!(kwh_to_wh(2_113_405.0), 2_113_405_000.0);
    }

    #[test]
    fn sums_need_every_value() {
        assert_eq!(sum_all([Some(1.5), Some(2.0)].into_iter()), Some(3.5));
        assert_eq!(sum_all([Some(1.5), None].into_iter()), None);
        assert_eq!(sum_all(std::iter::empty()), None);
    }

    #[test]
    fn staleness_rule() {
        let t = 1_760_889_283;
        let live = Status::classify(at(t), true, Some(1_760_889_277), DEFAULT_STALE_AFTER);
        assert_eq!(
            (live.offline, live.last_update),
            (None, Some(at(1_760_889_277)))
        );
        let edge = Status::classify(at(t), true, Some((t - 180) as u64), DEFAULT_STALE_AFTER);
        assert_eq!(edge.offline, None, "exactly the threshold is still live");
        let stale = Status::classify(at(t), true, Some((t - 181) as u64), DEFAULT_STALE_AFTER);
        assert_eq!(
            stale.offline,
            Some(Offline::Stale {
                age: TimeDelta::seconds(181)
            })
        );
        let custom = Status::classify(at(t), true, Some((t - 181) as u64), TimeDelta::seconds(600));
        assert_eq!(custom.offline, None);
        let none = Status::classify(at(t), true, Some(0), DEFAULT_STALE_AFTER);
        assert_eq!(
            (none.offline, none.last_update),
            (Some(Offline::NoData), None)
        );
        let absurd = Status::classify(at(t), true, Some(u64::MAX), DEFAULT_STALE_AFTER);
        assert_eq!(absurd.offline, Some(Offline::NoData));
        let ahead = Status::classify(at(t), true, Some((t + 30) as u64), DEFAULT_STALE_AFTER);
        assert_eq!(
            ahead.offline, None,
            "a frame time after the push time is not stale"
        );
        let down = Status::classify(at(t), false, Some(t as u64), DEFAULT_STALE_AFTER);
        assert_eq!(down.offline, Some(Offline::Unreachable));
        let no_field = Status::classify(at(t), true, None, DEFAULT_STALE_AFTER);
        assert_eq!((no_field.offline, no_field.last_update), (None, None));
    }

    #[test]
    fn small_helpers() {
        assert_eq!(non_negative(Some(-0.1)), Some(0.0));
        assert_eq!(non_negative(Some(3.0)), Some(3.0));
        assert_eq!(non_negative(None), None);
        assert_eq!(non_empty(""), None);
        assert_eq!(non_empty("  "), None);
        assert_eq!(non_empty("Panel 1"), Some("Panel 1".to_owned()));
    }
}
