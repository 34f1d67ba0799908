//! Plausibility checks on a parsed push, with messages that name the inverter.
//!
//! Parsing guarantees the shape and valid serials; validation adds the rules an HTTP endpoint
//! answers with 422: the timestamp (clock not set, clock far ahead), sizes, channel numbers,
//! duplicate serials and channels, and numeric values (finite; not below `-1`; power factor
//! within -1…1). All problems are collected, not only the first.
//!
//! Negative values: at night Hoymiles inverters report noise such as `-0.1 W`. Values in
//! `[-negative_tolerance, 0)` are accepted (conversion turns them into 0); anything lower is not
//! a measurement and is rejected.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeDelta, TimeZone, Utc};
use deyehard_core::DeviceSerial;

use crate::model::{Inverter, Push};

/// 2020-01-01T00:00:00Z: a device time before this means the DTU clock is not set.
pub const EARLIEST_TIMESTAMP: DateTime<Utc> = match DateTime::from_timestamp_secs(1_577_836_800) {
    Some(t) => t,
    None => DateTime::UNIX_EPOCH,
};

/// The limits [`validate`] applies; [`Limits::default`] holds the documented values.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Earliest accepted timestamp (default [`EARLIEST_TIMESTAMP`]).
    pub earliest: DateTime<Utc>,
    /// How far a timestamp may be ahead of the server clock (default 10 minutes).
    pub max_ahead: TimeDelta,
    /// Most inverters (or Victron devices) in one push (default 64; OpenDTU supports 10).
    pub max_devices: usize,
    /// Most DC channels per inverter (default 16; Hoymiles has at most 6).
    pub max_channels: usize,
    /// How far below zero a value may be as night-time noise (default 1.0, in the field's unit).
    pub negative_tolerance: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            earliest: EARLIEST_TIMESTAMP,
            max_ahead: TimeDelta::minutes(10),
            max_devices: 64,
            max_channels: 16,
            negative_tolerance: 1.0,
        }
    }
}

/// A push that failed validation: every problem found, in payload order.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", join(.issues))]
pub struct ValidationError {
    issues: Vec<ValidationIssue>,
}

impl ValidationError {
    /// The problems (never empty).
    pub fn issues(&self) -> &[ValidationIssue] {
        &self.issues
    }
}

fn join(issues: &[ValidationIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One device of a push, as a message names it: `inverters[0] (serial 114172220003)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRef {
    /// The list in the payload: `inverters` or `devices`.
    pub list: &'static str,
    /// 0-based position in that list.
    pub index: usize,
    /// The device serial.
    pub serial: DeviceSerial,
}

impl fmt::Display for DeviceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}] (serial {})", self.list, self.index, self.serial)
    }
}

/// One validation problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValidationIssue {
    /// The timestamp is before [`Limits::earliest`] (the DTU clock is probably not set).
    #[error(
        "timestamp: {} is {} before the earliest accepted time {} (is the device clock set?)",
        rfc3339(.timestamp),
        human(*.earliest - .timestamp.to_utc()),
        rfc3339(.earliest)
    )]
    TimestampTooEarly {
        /// The timestamp sent.
        timestamp: DateTime<FixedOffset>,
        /// The earliest accepted time.
        earliest: DateTime<Utc>,
    },
    /// The timestamp is more than [`Limits::max_ahead`] after the server clock.
    #[error(
        "timestamp: {} is {} ahead of the server clock ({}); at most {} is accepted",
        rfc3339(.timestamp),
        human(.timestamp.to_utc() - *.now),
        rfc3339(.now),
        human(*.max_ahead)
    )]
    TimestampInFuture {
        /// The timestamp sent.
        timestamp: DateTime<FixedOffset>,
        /// The server time used for the check.
        now: DateTime<Utc>,
        /// The accepted lead.
        max_ahead: TimeDelta,
    },
    /// The push lists more devices than [`Limits::max_devices`].
    #[error("{list}: {count} entries, at most {max} are accepted")]
    TooManyDevices {
        /// `inverters` or `devices`.
        list: &'static str,
        /// How many were sent.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The same serial appears twice.
    #[error("{device}: the serial also appears at {}[{first}]", .device.list)]
    DuplicateSerial {
        /// The later occurrence.
        device: DeviceRef,
        /// Index of the first occurrence.
        first: usize,
    },
    /// A device has more DC channels than [`Limits::max_channels`].
    #[error("{device}: {list} has {count} entries, at most {max} are accepted")]
    TooManyChannels {
        /// The device.
        device: DeviceRef,
        /// `dc_channels` or `trackers`.
        list: &'static str,
        /// How many were sent.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A channel (or tracker) number is outside its range.
    #[error("{device}: {field} is {value}, expected {min} to {max}")]
    ChannelOutOfRange {
        /// The device.
        device: DeviceRef,
        /// The field, e.g. `dc_channels[2].channel`.
        field: String,
        /// The number sent.
        value: u8,
        /// Smallest allowed number.
        min: u8,
        /// Largest allowed number.
        max: u8,
    },
    /// A channel (or tracker) number appears twice in one device.
    #[error("{device}: {field} is {value}, which {list}[{first}] already uses")]
    DuplicateChannel {
        /// The device.
        device: DeviceRef,
        /// The later field, e.g. `dc_channels[1].channel`.
        field: String,
        /// `dc_channels` or `trackers`.
        list: &'static str,
        /// The repeated number.
        value: u8,
        /// Index of the first entry with that number.
        first: usize,
    },
    /// A numeric value is not finite or out of its range.
    #[error("{device}: {field} is {value}, expected {expected}")]
    BadValue {
        /// The device.
        device: DeviceRef,
        /// The field, e.g. `measurements.power_ac` or `dc_channels[0].yield_total`.
        field: String,
        /// The value sent.
        value: f64,
        /// What is accepted, e.g. "a finite number of at least -1".
        expected: String,
    },
}

/// `2025-10-19T17:54:43+02:00`, or `…Z` for UTC.
fn rfc3339<Tz: TimeZone>(t: &DateTime<Tz>) -> String
where
    Tz::Offset: fmt::Display,
{
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Formats a duration with its two largest units: `2 h 5 min`, `18262 days 0 h`, `42 s`.
fn human(d: TimeDelta) -> String {
    let s = d.num_seconds().unsigned_abs();
    let (days, hours, mins, secs) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, _) => format!("{mins} min {secs} s"),
        (0, _, _) => format!("{hours} h {mins} min"),
        _ => format!("{days} days {hours} h"),
    }
}

/// Validates an OpenDTU push against [`Limits::default`] at server time `now`.
pub fn validate(push: &Push, now: DateTime<Utc>) -> Result<(), ValidationError> {
    validate_with(push, now, &Limits::default())
}

/// Validates an OpenDTU push against `limits` at server time `now`.
pub fn validate_with(
    push: &Push,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<(), ValidationError> {
    let mut check = Checker::new(limits);
    check.timestamp(push.timestamp, now);
    check.devices("inverters", push.inverters.iter().map(|inv| &inv.serial));
    for (index, inv) in push.inverters.iter().enumerate() {
        let device = DeviceRef {
            list: "inverters",
            index,
            serial: inv.serial.clone(),
        };
        check_inverter(&mut check, &device, inv);
    }
    check.finish()
}

fn check_inverter(check: &mut Checker<'_>, device: &DeviceRef, inv: &Inverter) {
    let m = &inv.measurements;
    for (name, value) in [
        ("power_ac", m.power_ac),
        ("voltage_ac", m.voltage_ac),
        ("current_ac", m.current_ac),
        ("frequency", m.frequency),
        ("power_dc", m.power_dc),
    ] {
        check.non_negative(device, value, || format!("measurements.{name}"));
    }
    check.power_factor(device, m.power_factor, || {
        "measurements.power_factor".to_owned()
    });
    let numbers: Vec<u8> = inv.dc_channels.iter().map(|ch| ch.channel).collect();
    check.channels(device, ("dc_channels", "channel"), &numbers, 1);
    for (i, ch) in inv.dc_channels.iter().enumerate() {
        for (name, value) in [
            ("power", ch.power),
            ("voltage", ch.voltage),
            ("current", ch.current),
            ("yield_day", ch.yield_day),
            ("yield_total", ch.yield_total),
            ("irradiation", ch.irradiation),
        ] {
            check.non_negative(device, value, || format!("dc_channels[{i}].{name}"));
        }
    }
}

/// Collects issues; shared by the OpenDTU and Victron validations.
pub(crate) struct Checker<'a> {
    limits: &'a Limits,
    issues: Vec<ValidationIssue>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(limits: &'a Limits) -> Self {
        Self {
            limits,
            issues: Vec::new(),
        }
    }

    pub(crate) fn finish(self) -> Result<(), ValidationError> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(ValidationError {
                issues: self.issues,
            })
        }
    }

    pub(crate) fn timestamp(&mut self, timestamp: DateTime<FixedOffset>, now: DateTime<Utc>) {
        let utc = timestamp.to_utc();
        if utc < self.limits.earliest {
            self.issues.push(ValidationIssue::TimestampTooEarly {
                timestamp,
                earliest: self.limits.earliest,
            });
        } else if utc - now > self.limits.max_ahead {
            self.issues.push(ValidationIssue::TimestampInFuture {
                timestamp,
                now,
                max_ahead: self.limits.max_ahead,
            });
        }
    }

    /// The device count and duplicate serials.
    pub(crate) fn devices<'s>(
        &mut self,
        list: &'static str,
        serials: impl ExactSizeIterator<Item = &'s DeviceSerial>,
    ) {
        let count = serials.len();
        if count > self.limits.max_devices {
            self.issues.push(ValidationIssue::TooManyDevices {
                list,
                count,
                max: self.limits.max_devices,
            });
        }
        let mut seen: HashMap<&DeviceSerial, usize> = HashMap::with_capacity(count);
        for (index, serial) in serials.enumerate() {
            if let Some(&first) = seen.get(serial) {
                let device = DeviceRef {
                    list,
                    index,
                    serial: serial.clone(),
                };
                self.issues
                    .push(ValidationIssue::DuplicateSerial { device, first });
            } else {
                seen.insert(serial, index);
            }
        }
    }

    /// Channel count, range `base..=base + max_channels - 1` and uniqueness. `names` is the
    /// list and the number field (`("dc_channels", "channel")`); `base` is 1 for 1-based
    /// channels, 0 for Victron's 0-based trackers.
    pub(crate) fn channels(
        &mut self,
        device: &DeviceRef,
        names: (&'static str, &'static str),
        numbers: &[u8],
        base: u8,
    ) {
        let (list, key) = names;
        let limit = self.limits.max_channels;
        if numbers.len() > limit {
            let device = device.clone();
            self.issues.push(ValidationIssue::TooManyChannels {
                device,
                list,
                count: numbers.len(),
                max: limit,
            });
        }
        let max = u8::try_from(limit.saturating_sub(1))
            .unwrap_or(u8::MAX)
            .saturating_add(base);
        let mut first_at: HashMap<u8, usize> = HashMap::with_capacity(numbers.len());
        for (i, &value) in numbers.iter().enumerate() {
            let field = || format!("{list}[{i}].{key}");
            if !(base..=max).contains(&value) {
                let (device, field) = (device.clone(), field());
                self.issues.push(ValidationIssue::ChannelOutOfRange {
                    device,
                    field,
                    value,
                    min: base,
                    max,
                });
            } else if let Some(&first) = first_at.get(&value) {
                let (device, field) = (device.clone(), field());
                self.issues.push(ValidationIssue::DuplicateChannel {
                    device,
                    field,
                    list,
                    value,
                    first,
                });
            } else {
                first_at.insert(value, i);
            }
        }
    }

    /// A finite value, not below `-negative_tolerance`.
    pub(crate) fn non_negative(
        &mut self,
        device: &DeviceRef,
        value: Option<f64>,
        field: impl FnOnce() -> String,
    ) {
        let floor = -self.limits.negative_tolerance;
        if let Some(v) = value.filter(|v| !(v.is_finite() && *v >= floor)) {
            let expected = format!("a finite number of at least {floor}");
            self.issues.push(ValidationIssue::BadValue {
                device: device.clone(),
                field: field(),
                value: v,
                expected,
            });
        }
    }

    /// A finite value within -1…1.
    pub(crate) fn power_factor(
        &mut self,
        device: &DeviceRef,
        value: Option<f64>,
        field: impl FnOnce() -> String,
    ) {
        if let Some(v) = value.filter(|v| !(-1.0..=1.0).contains(v)) {
            let expected = "a number from -1 to 1".to_owned();
            self.issues.push(ValidationIssue::BadValue {
                device: device.clone(),
                field: field(),
                value: v,
                expected,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human(TimeDelta::seconds(42)), "42 s");
        assert_eq!(human(TimeDelta::seconds(750)), "12 min 30 s");
        assert_eq!(human(TimeDelta::seconds(7500)), "2 h 5 min");
        assert_eq!(
            human(TimeDelta::seconds(18_262 * 86_400 + 10)),
            "18262 days 0 h"
        );
        assert_eq!(human(TimeDelta::seconds(-90)), "1 min 30 s");
    }

    #[test]
    fn earliest_is_2020() {
        assert_eq!(EARLIEST_TIMESTAMP.to_rfc3339(), "2020-01-01T00:00:00+00:00");
    }
}
