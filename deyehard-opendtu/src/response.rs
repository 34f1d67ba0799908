//! The endpoint's response bodies, shaped like the original backend's so that existing
//! clients and scripts keep working. An HTTP server documents them in its own API spec; here
//! they are plain serde types.

use chrono::{DateTime, FixedOffset};
use deyehard_core::{DeviceSerial, InverterId};
use serde::{Deserialize, Serialize};

use crate::model::Push;
use crate::victron::VictronPush;

/// Per-device status in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    /// The reading was stored (or was already stored: a repeated push is not an error).
    Ok,
    /// The reading was not stored; `error` says why.
    Error,
}

/// What the push achieved overall, which an HTTP server maps to its status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every device was stored (HTTP 201); also the outcome of a push with no devices.
    AllStored,
    /// Some were stored, some not (HTTP 207).
    SomeStored,
    /// None was stored (HTTP 404: none of the serials belongs to the caller).
    NoneStored,
}

impl Outcome {
    fn of(success_count: usize, error_count: usize) -> Self {
        match (success_count, error_count) {
            (_, 0) => Self::AllStored,
            (0, _) => Self::NoneStored,
            _ => Self::SomeStored,
        }
    }
}

/// Response to `POST /api/opendtu/measurements`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushResponse {
    /// The DTU serial from the push.
    pub dtu_serial: DeviceSerial,
    /// The push timestamp, echoed with its offset.
    pub timestamp: DateTime<FixedOffset>,
    /// Number of inverters in the push.
    pub total_inverters: usize,
    /// Number of `ok` results.
    pub success_count: usize,
    /// Number of `error` results.
    pub error_count: usize,
    /// One result per inverter, in push order.
    pub results: Vec<InverterResult>,
}

/// One inverter's result. An `ok` result carries `inverter_id` and `power_ac`, an `error`
/// result carries `error`; absent fields are left out of the JSON, as in the original.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InverterResult {
    /// The inverter serial from the push.
    pub serial: DeviceSerial,
    /// `ok` or `error`.
    pub status: ResultStatus,
    /// The stored inverter's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverter_id: Option<i64>,
    /// The AC power stored, W (the original sent it truncated to an integer; this is exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_ac: Option<f64>,
    /// Why the reading was not stored, e.g. "Inverter 1141… is not registered".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl InverterResult {
    /// A stored inverter.
    pub fn ok(serial: DeviceSerial, inverter_id: InverterId, power_ac: Option<f64>) -> Self {
        Self {
            serial,
            status: ResultStatus::Ok,
            inverter_id: Some(inverter_id.get()),
            power_ac,
            error: None,
        }
    }

    /// An inverter that was not stored.
    pub fn error(serial: DeviceSerial, error: impl Into<String>) -> Self {
        Self {
            serial,
            status: ResultStatus::Error,
            inverter_id: None,
            power_ac: None,
            error: Some(error.into()),
        }
    }
}

impl PushResponse {
    /// The response for `push` with one result per inverter; counts are derived from `results`.
    pub fn new(push: &Push, results: Vec<InverterResult>) -> Self {
        let success_count = results
            .iter()
            .filter(|r| r.status == ResultStatus::Ok)
            .count();
        Self {
            dtu_serial: push.dtu_serial.clone(),
            timestamp: push.timestamp,
            total_inverters: push.inverters.len(),
            success_count,
            error_count: results.len() - success_count,
            results,
        }
    }

    /// What the push achieved overall.
    pub fn outcome(&self) -> Outcome {
        Outcome::of(self.success_count, self.error_count)
    }
}

/// Response to `POST /api/victron/measurements`, shaped like the original's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VictronResponse {
    /// The Cerbo GX serial from the push.
    pub cerbo_serial: DeviceSerial,
    /// The push timestamp, echoed with its offset.
    pub timestamp: DateTime<FixedOffset>,
    /// Number of devices in the push.
    pub total_devices: usize,
    /// Number of `ok` results.
    pub success_count: usize,
    /// Number of `error` results.
    pub error_count: usize,
    /// One result per device, in push order.
    pub results: Vec<DeviceResult>,
}

/// One Victron device's result (`ok` with `inverter_id` and `yield_power_w`, or `error`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceResult {
    /// The device serial from the push.
    pub device_identifier: DeviceSerial,
    /// `ok` or `error`.
    pub status: ResultStatus,
    /// The stored inverter's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverter_id: Option<i64>,
    /// The output power stored, W.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yield_power_w: Option<f64>,
    /// Why the reading was not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DeviceResult {
    /// A stored device.
    pub fn ok(serial: DeviceSerial, inverter_id: InverterId, yield_power_w: Option<f64>) -> Self {
        Self {
            device_identifier: serial,
            status: ResultStatus::Ok,
            inverter_id: Some(inverter_id.get()),
            yield_power_w,
            error: None,
        }
    }

    /// A device that was not stored.
    pub fn error(serial: DeviceSerial, error: impl Into<String>) -> Self {
        Self {
            device_identifier: serial,
            status: ResultStatus::Error,
            inverter_id: None,
            yield_power_w: None,
            error: Some(error.into()),
        }
    }
}

impl VictronResponse {
    /// The response for `push` with one result per device; counts are derived from `results`.
    pub fn new(push: &VictronPush, results: Vec<DeviceResult>) -> Self {
        let success_count = results
            .iter()
            .filter(|r| r.status == ResultStatus::Ok)
            .count();
        Self {
            cerbo_serial: push.cerbo_serial.clone(),
            timestamp: push.timestamp,
            total_devices: push.devices.len(),
            success_count,
            error_count: results.len() - success_count,
            results,
        }
    }

    /// What the push achieved overall.
    pub fn outcome(&self) -> Outcome {
        Outcome::of(self.success_count, self.error_count)
    }
}
