//! The OpenDTU push payload (`POST /api/opendtu/measurements`) as the device sends it, with
//! the units of `protocol/opendtu-push.md` §1.2, and [`parse`].

use chrono::{DateTime, FixedOffset};
use deyehard_core::DeviceSerial;
use serde::{Deserialize, Serialize};

use crate::de;
use crate::error::{ParseError, parse_json};

/// One push: all inverters of one DTU at one instant.
///
/// Field names and units are the device's. Convert with [`Push::readings`] to get core
/// readings in Wh / W / V / A.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Push {
    /// Device time of the push, with the offset the DTU sent (local time, e.g. `+02:00`).
    #[serde(deserialize_with = "de::timestamp")]
    pub timestamp: DateTime<FixedOffset>,
    /// Serial of the DTU itself (opaque text).
    pub dtu_serial: DeviceSerial,
    /// One entry per inverter configured on the DTU.
    pub inverters: Vec<Inverter>,
}

/// One inverter of a push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inverter {
    /// Inverter serial (12 hex digits for Hoymiles).
    pub serial: DeviceSerial,
    /// Name given in OpenDTU (may be empty; `null` or absent reads as empty).
    #[serde(default, deserialize_with = "de::null_as_default")]
    pub name: String,
    /// The DTU's radio link to the inverter works (recent polls answered).
    pub reachable: bool,
    /// The DTU's cached AC power is above 0 (may be stale, see [`Push::readings`]).
    pub producing: bool,
    /// Unix seconds (UTC) of the last statistics frame from the inverter; 0 = none since the
    /// DTU booted.
    #[serde(deserialize_with = "de::whole")]
    pub last_update: u64,
    /// The AC side and inverter totals.
    pub measurements: Measurements,
    /// One entry per DC input (may be empty; `null` or absent reads as empty).
    #[serde(default, deserialize_with = "de::null_as_default")]
    pub dc_channels: Vec<DcChannel>,
}

/// The `measurements` object of an inverter. A value that is absent or `null` is `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurements {
    /// AC active power, W.
    #[serde(default, deserialize_with = "de::number")]
    pub power_ac: Option<f64>,
    /// AC voltage, V (on a three-phase HMT: the L1–L2 voltage, about 400 V).
    #[serde(default, deserialize_with = "de::number")]
    pub voltage_ac: Option<f64>,
    /// AC current, A.
    #[serde(default, deserialize_with = "de::number")]
    pub current_ac: Option<f64>,
    /// Grid frequency, Hz.
    #[serde(default, deserialize_with = "de::number")]
    pub frequency: Option<f64>,
    /// Power factor.
    #[serde(default, deserialize_with = "de::number")]
    pub power_factor: Option<f64>,
    /// Sum of the DC input powers, W.
    #[serde(default, deserialize_with = "de::number")]
    pub power_dc: Option<f64>,
}

/// One DC input (`dc_channels[]`). A value that is absent or `null` is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DcChannel {
    /// 1-based input number (validation accepts 1 to 16).
    #[serde(deserialize_with = "de::small_whole")]
    pub channel: u8,
    /// Name given in OpenDTU (empty by default).
    #[serde(default, deserialize_with = "de::null_as_default")]
    pub name: String,
    /// DC power, W.
    #[serde(default, deserialize_with = "de::number")]
    pub power: Option<f64>,
    /// DC voltage, V.
    #[serde(default, deserialize_with = "de::number")]
    pub voltage: Option<f64>,
    /// DC current, A.
    #[serde(default, deserialize_with = "de::number")]
    pub current: Option<f64>,
    /// Day counter of this input, **Wh**.
    #[serde(default, deserialize_with = "de::number")]
    pub yield_day: Option<f64>,
    /// Lifetime counter of this input, **kWh**.
    #[serde(default, deserialize_with = "de::number")]
    pub yield_total: Option<f64>,
    /// Power as % of the input's configured maximum power (0 when none is configured).
    #[serde(default, deserialize_with = "de::number")]
    pub irradiation: Option<f64>,
}

/// Parses an OpenDTU push body (UTF-8 JSON).
///
/// Lenient where devices differ (see the crate docs), precise where they fail: the error names
/// the field (`inverters[1].measurements.power_ac: …`) or the line and column of a syntax
/// error. Parsing does not check plausibility; call [`crate::validate`] next.
pub fn parse(body: &[u8]) -> Result<Push, ParseError> {
    parse_json(
        body,
        "an OpenDTU push (a JSON object with timestamp, dtu_serial and inverters)",
    )
}
