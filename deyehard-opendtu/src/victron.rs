//! The Victron push (`POST /api/victron/measurements`): a bridge script on a Cerbo GX (Venus
//! OS) posts its solar chargers' values in the original backend's format. Same lenient rules as
//! the OpenDTU payload; unknown fields (`device_instance`, `product_name`, …) are ignored.
//!
//! Conversion: AC power = `yield_power_w`; `yield_total_wh` = `yield_total_kwh` × 1000;
//! DC power = the sum of the tracker powers; each tracker (0-based) becomes DC channel
//! `tracker + 1` with current = power / voltage when the voltage is above 0. Victron reports no
//! day counter. `reachable`, `producing` and `last_update` are optional here: when present they
//! follow the OpenDTU staleness rule; `producing` defaults to "AC power above 0".

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use deyehard_core::{DcReading, DeviceSerial, Reading, Source};
use serde::{Deserialize, Serialize};

use crate::convert::{
    DEFAULT_STALE_AFTER, InverterReading, Status, kwh_to_wh, non_empty, non_negative, sum_all,
};
use crate::de;
use crate::error::{ParseError, parse_json};
use crate::validate::{Checker, DeviceRef, Limits, ValidationError};

/// One Victron push: the solar chargers behind one Cerbo GX.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VictronPush {
    /// Device time of the push, with its UTC offset.
    #[serde(deserialize_with = "de::timestamp")]
    pub timestamp: DateTime<FixedOffset>,
    /// Serial of the Cerbo GX.
    pub cerbo_serial: DeviceSerial,
    /// One entry per solar charger / inverter.
    pub devices: Vec<VictronDevice>,
}

/// One device of a Victron push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VictronDevice {
    /// The device's own serial (e.g. `HQ2208AXN7V`).
    pub serial: DeviceSerial,
    /// Custom or product name (may be empty).
    #[serde(default, deserialize_with = "de::null_as_default")]
    pub name: String,
    /// The device answers on D-Bus (absent: assumed reachable).
    #[serde(default)]
    pub reachable: Option<bool>,
    /// The device says it produces (absent: AC power above 0).
    #[serde(default)]
    pub producing: Option<bool>,
    /// Unix seconds of the device's last D-Bus update; 0 = none (absent: not checked).
    #[serde(default, deserialize_with = "de::opt_whole")]
    pub last_update: Option<u64>,
    /// Output power, W.
    #[serde(default, deserialize_with = "de::number")]
    pub yield_power_w: Option<f64>,
    /// Lifetime counter, **kWh**.
    #[serde(default, deserialize_with = "de::number")]
    pub yield_total_kwh: Option<f64>,
    /// Per-MPPT values (may be empty).
    #[serde(default, deserialize_with = "de::null_as_default")]
    pub trackers: Vec<Tracker>,
}

/// One MPPT tracker of a Victron device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracker {
    /// **0-based** tracker number (validation accepts 0 to 15).
    #[serde(deserialize_with = "de::small_whole")]
    pub tracker: u8,
    /// Tracker name (may be empty).
    #[serde(default, deserialize_with = "de::null_as_default")]
    pub name: String,
    /// PV voltage, V.
    #[serde(default, deserialize_with = "de::number")]
    pub voltage: Option<f64>,
    /// PV power, W.
    #[serde(default, deserialize_with = "de::number")]
    pub power: Option<f64>,
}

/// Parses a Victron push body (UTF-8 JSON); errors name the field like [`crate::parse`].
pub fn parse(body: &[u8]) -> Result<VictronPush, ParseError> {
    parse_json(
        body,
        "a Victron push (a JSON object with timestamp, cerbo_serial and devices)",
    )
}

/// Validates a Victron push against [`Limits::default`] at server time `now`.
pub fn validate(push: &VictronPush, now: DateTime<Utc>) -> Result<(), ValidationError> {
    validate_with(push, now, &Limits::default())
}

/// Validates a Victron push against `limits` at server time `now`: the timestamp, sizes,
/// duplicate serials, tracker numbers (0-based, unique) and numeric values.
pub fn validate_with(
    push: &VictronPush,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<(), ValidationError> {
    let mut check = Checker::new(limits);
    check.timestamp(push.timestamp, now);
    check.devices("devices", push.devices.iter().map(|d| &d.serial));
    for (index, dev) in push.devices.iter().enumerate() {
        let device = DeviceRef {
            list: "devices",
            index,
            serial: dev.serial.clone(),
        };
        check.non_negative(&device, dev.yield_power_w, || "yield_power_w".to_owned());
        check.non_negative(&device, dev.yield_total_kwh, || {
            "yield_total_kwh".to_owned()
        });
        let numbers: Vec<u8> = dev.trackers.iter().map(|t| t.tracker).collect();
        check.channels(&device, ("trackers", "tracker"), &numbers, 0);
        for (i, t) in dev.trackers.iter().enumerate() {
            check.non_negative(&device, t.voltage, || format!("trackers[{i}].voltage"));
            check.non_negative(&device, t.power, || format!("trackers[{i}].power"));
        }
    }
    check.finish()
}

impl VictronPush {
    /// The readings of all devices, in push order, with the default staleness threshold.
    /// Call [`validate`] first.
    pub fn readings(&self) -> Vec<InverterReading> {
        self.readings_with(DEFAULT_STALE_AFTER)
    }

    /// The readings of all devices, in push order, with a staleness threshold.
    pub fn readings_with(&self, stale_after: TimeDelta) -> Vec<InverterReading> {
        let time = self.timestamp.to_utc();
        self.devices
            .iter()
            .map(|dev| device_reading(dev, time, stale_after))
            .collect()
    }
}

fn device_reading(
    dev: &VictronDevice,
    time: DateTime<Utc>,
    stale_after: TimeDelta,
) -> InverterReading {
    let status = Status::classify(
        time,
        dev.reachable.unwrap_or(true),
        dev.last_update,
        stale_after,
    );
    let mut reading = Reading::new(time, Source::Victron);
    reading.power_ac_w = non_negative(dev.yield_power_w);
    reading.yield_total_wh = non_negative(dev.yield_total_kwh).map(kwh_to_wh);
    reading.dc = dev.trackers.iter().map(tracker_reading).collect();
    reading.dc.sort_by_key(|dc| dc.channel);
    reading.power_dc_w = sum_all(reading.dc.iter().map(|dc| dc.power_w));
    reading.reachable = status.offline.is_none();
    let producing = dev
        .producing
        .unwrap_or(reading.power_ac_w.is_some_and(|p| p > 0.0));
    reading.producing = reading.reachable && producing;
    InverterReading {
        serial: dev.serial.clone(),
        name: dev.name.clone(),
        reading,
        last_update: status.last_update,
        offline: status.offline,
    }
}

fn tracker_reading(t: &Tracker) -> DcReading {
    let mut dc = DcReading::new(t.tracker.saturating_add(1));
    dc.name = non_empty(&t.name);
    dc.power_w = non_negative(t.power);
    dc.voltage_v = non_negative(t.voltage);
    dc.current_a = match (dc.power_w, dc.voltage_v) {
        (Some(p), Some(v)) if v > 0.0 => Some(p / v),
        _ => None,
    };
    dc
}
