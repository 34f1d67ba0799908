//! The OpenAPI schemas of the push endpoints.
//!
//! `deyehard-opendtu` owns the wire types (plain serde, no web framework); these mirrors only
//! describe them in the OpenAPI document. Request bodies are parsed by `deyehard-opendtu` itself
//! (lenient, with field paths in errors), so the request schemas here are documentation; the
//! response schemas are what the endpoints serialise, converted from the library's response
//! types.

use chrono::{DateTime, FixedOffset};
use deyehard_opendtu::{DeviceResult, InverterResult, PushResponse, ResultStatus, VictronResponse};
use poem_openapi::types::Example;
use poem_openapi::{Enum, Object};

/// One OpenDTU push: all inverters of one DTU at one instant. Unknown fields are ignored; every
/// number may be a JSON integer, a float or a string holding a number.
#[derive(Debug, Object)]
#[oai(rename = "OpenDtuPush", example)]
pub struct OpenDtuPushDoc {
    /// Device time of the push, ISO 8601 with an offset (`Z`, `+HH:MM` or `+HHMM`). Rejected
    /// (422) before 2020 (clock not set) or more than 10 minutes ahead of the server clock.
    pub timestamp: String,
    /// Serial of the DTU (opaque text).
    pub dtu_serial: String,
    /// One entry per inverter of the DTU (at most 64, serials unique).
    pub inverters: Vec<OpenDtuInverterDoc>,
}

/// One inverter of an OpenDTU push.
#[derive(Debug, Object)]
#[oai(rename = "OpenDtuInverter")]
pub struct OpenDtuInverterDoc {
    /// Inverter serial (12 hex digits for Hoymiles); looked up among the key owner's inverters.
    pub serial: String,
    /// Name given in OpenDTU (may be empty or absent).
    pub name: Option<String>,
    /// The DTU reaches the inverter. `false` marks the reading offline.
    pub reachable: bool,
    /// The DTU's cached AC power is above 0 (ignored for offline readings).
    pub producing: bool,
    /// Unix seconds of the inverter's last frame; 0 = none since the DTU booted (offline).
    /// Older than 180 s before `timestamp` marks the reading offline (stale values).
    pub last_update: u64,
    /// AC side and totals.
    pub measurements: OpenDtuMeasurementsDoc,
    /// One entry per DC input (may be empty or absent).
    pub dc_channels: Option<Vec<OpenDtuDcChannelDoc>>,
}

/// The AC side of an inverter; a value that is `null` or absent is "not reported".
#[derive(Debug, Object)]
#[oai(rename = "OpenDtuMeasurements")]
pub struct OpenDtuMeasurementsDoc {
    /// AC power, W.
    pub power_ac: Option<f64>,
    /// AC voltage, V (three-phase HMT: the L1–L2 voltage).
    pub voltage_ac: Option<f64>,
    /// AC current, A.
    pub current_ac: Option<f64>,
    /// Grid frequency, Hz.
    pub frequency: Option<f64>,
    /// Power factor, -1 … 1.
    pub power_factor: Option<f64>,
    /// Sum of the DC input powers, W.
    pub power_dc: Option<f64>,
}

/// One DC input of an inverter.
#[derive(Debug, Object)]
#[oai(rename = "OpenDtuDcChannel")]
pub struct OpenDtuDcChannelDoc {
    /// 1-based input number (1 … 16, unique per inverter).
    pub channel: u8,
    /// Name given in OpenDTU (empty by default).
    pub name: Option<String>,
    /// DC power, W.
    pub power: Option<f64>,
    /// DC voltage, V.
    pub voltage: Option<f64>,
    /// DC current, A.
    pub current: Option<f64>,
    /// Day counter of this input, **Wh**.
    pub yield_day: Option<f64>,
    /// Lifetime counter of this input, **kWh** (stored as Wh, nothing truncated).
    pub yield_total: Option<f64>,
    /// Power as % of the input's configured maximum power.
    pub irradiation: Option<f64>,
}

impl Example for OpenDtuPushDoc {
    fn example() -> Self {
        Self {
            timestamp: "2025-10-19T17:54:43+02:00".to_owned(),
            dtu_serial: "199980140256".to_owned(),
            inverters: vec![OpenDtuInverterDoc {
                serial: "116166771004".to_owned(),
                name: Some("Inverter 1".to_owned()),
                reachable: true,
                producing: true,
                last_update: 1_760_889_277,
                measurements: OpenDtuMeasurementsDoc {
                    power_ac: Some(16.1),
                    voltage_ac: Some(229.8),
                    current_ac: Some(0.07),
                    frequency: Some(49.99),
                    power_factor: Some(0.617),
                    power_dc: Some(17.0),
                },
                dc_channels: Some(vec![OpenDtuDcChannelDoc {
                    channel: 1,
                    name: Some("Panel 1".to_owned()),
                    power: Some(3.4),
                    voltage: Some(30.4),
                    current: Some(0.11),
                    yield_day: Some(337.0),
                    yield_total: Some(444.671),
                    irradiation: Some(1.545455),
                }]),
            }],
        }
    }
}

/// One Victron push: the solar chargers behind one Cerbo GX. Unknown fields are ignored.
#[derive(Debug, Object)]
#[oai(rename = "VictronPush", example)]
pub struct VictronPushDoc {
    /// Device time of the push, ISO 8601 with an offset; same limits as OpenDTU.
    pub timestamp: String,
    /// Serial of the Cerbo GX.
    pub cerbo_serial: String,
    /// One entry per solar charger (at most 64, serials unique).
    pub devices: Vec<VictronDeviceDoc>,
}

/// One device of a Victron push.
#[derive(Debug, Object)]
#[oai(rename = "VictronDevice")]
pub struct VictronDeviceDoc {
    /// Device serial; looked up among the key owner's inverters.
    pub serial: String,
    /// Custom or product name.
    pub name: Option<String>,
    /// The device answers (absent: assumed reachable).
    pub reachable: Option<bool>,
    /// The device produces (absent: output power above 0).
    pub producing: Option<bool>,
    /// Unix seconds of the last update; same staleness rule as OpenDTU (absent: not checked).
    pub last_update: Option<u64>,
    /// Output power, W.
    pub yield_power_w: Option<f64>,
    /// Lifetime counter, **kWh** (stored as Wh).
    pub yield_total_kwh: Option<f64>,
    /// Per-MPPT values; tracker `n` (0-based) becomes DC channel `n + 1`.
    pub trackers: Option<Vec<VictronTrackerDoc>>,
}

/// One MPPT tracker of a Victron device.
#[derive(Debug, Object)]
#[oai(rename = "VictronTracker")]
pub struct VictronTrackerDoc {
    /// 0-based tracker number (0 … 15, unique per device).
    pub tracker: u8,
    /// Tracker name.
    pub name: Option<String>,
    /// PV voltage, V.
    pub voltage: Option<f64>,
    /// PV power, W.
    pub power: Option<f64>,
}

impl Example for VictronPushDoc {
    fn example() -> Self {
        Self {
            timestamp: "2025-07-02T10:15:00+02:00".to_owned(),
            cerbo_serial: "HQ2212XYZ01".to_owned(),
            devices: vec![VictronDeviceDoc {
                serial: "HQ2208AXN7V".to_owned(),
                name: Some("MPPT 150/35".to_owned()),
                reachable: None,
                producing: None,
                last_update: None,
                yield_power_w: Some(512.0),
                yield_total_kwh: Some(1234.567),
                trackers: Some(vec![VictronTrackerDoc {
                    tracker: 0,
                    name: Some("East".to_owned()),
                    voltage: Some(78.4),
                    power: Some(512.0),
                }]),
            }],
        }
    }
}

/// Per-device status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "ResultStatus", rename_all = "lowercase")]
pub enum ItemStatus {
    /// Stored, or stored before (a repeated push is not an error).
    Ok,
    /// Not stored; `error` says why.
    Error,
}

impl From<ResultStatus> for ItemStatus {
    fn from(status: ResultStatus) -> Self {
        match status {
            ResultStatus::Ok => Self::Ok,
            ResultStatus::Error => Self::Error,
        }
    }
}

/// The answer to an OpenDTU push (the original service's shape).
#[derive(Debug, Object)]
#[oai(rename = "OpenDtuPushResult")]
pub struct OpenDtuResult {
    /// The DTU serial from the push.
    pub dtu_serial: String,
    /// The push timestamp, echoed with its offset.
    pub timestamp: DateTime<FixedOffset>,
    /// Inverters in the push.
    pub total_inverters: usize,
    /// `ok` results.
    pub success_count: usize,
    /// `error` results.
    pub error_count: usize,
    /// One result per inverter, in push order.
    pub results: Vec<InverterOutcome>,
}

/// One inverter's result: `ok` with `inverter_id` and `power_ac`, or `error` with `error`.
#[derive(Debug, Object)]
#[oai(rename = "InverterResult")]
pub struct InverterOutcome {
    /// The inverter serial from the push.
    pub serial: String,
    /// `ok` or `error`.
    pub status: ItemStatus,
    /// The stored inverter's id.
    #[oai(skip_serializing_if_is_none)]
    pub inverter_id: Option<i64>,
    /// The AC power stored, W (full precision; the original sent an integer).
    #[oai(skip_serializing_if_is_none)]
    pub power_ac: Option<f64>,
    /// Why the reading was not stored.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
}

impl From<PushResponse> for OpenDtuResult {
    fn from(r: PushResponse) -> Self {
        Self {
            dtu_serial: r.dtu_serial.as_str().to_owned(),
            timestamp: r.timestamp,
            total_inverters: r.total_inverters,
            success_count: r.success_count,
            error_count: r.error_count,
            results: r.results.into_iter().map(InverterOutcome::from).collect(),
        }
    }
}

impl From<InverterResult> for InverterOutcome {
    fn from(r: InverterResult) -> Self {
        Self {
            serial: r.serial.as_str().to_owned(),
            status: r.status.into(),
            inverter_id: r.inverter_id,
            power_ac: r.power_ac,
            error: r.error,
        }
    }
}

/// The answer to a Victron push (the original service's shape).
#[derive(Debug, Object)]
#[oai(rename = "VictronPushResult")]
pub struct VictronResult {
    /// The Cerbo GX serial from the push.
    pub cerbo_serial: String,
    /// The push timestamp, echoed with its offset.
    pub timestamp: DateTime<FixedOffset>,
    /// Devices in the push.
    pub total_devices: usize,
    /// `ok` results.
    pub success_count: usize,
    /// `error` results.
    pub error_count: usize,
    /// One result per device, in push order.
    pub results: Vec<DeviceOutcome>,
}

/// One Victron device's result: `ok` with `inverter_id` and `yield_power_w`, or `error`.
#[derive(Debug, Object)]
#[oai(rename = "DeviceResult")]
pub struct DeviceOutcome {
    /// The device serial from the push.
    pub device_identifier: String,
    /// `ok` or `error`.
    pub status: ItemStatus,
    /// The stored inverter's id.
    #[oai(skip_serializing_if_is_none)]
    pub inverter_id: Option<i64>,
    /// The output power stored, W.
    #[oai(skip_serializing_if_is_none)]
    pub yield_power_w: Option<f64>,
    /// Why the reading was not stored.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
}

impl From<VictronResponse> for VictronResult {
    fn from(r: VictronResponse) -> Self {
        Self {
            cerbo_serial: r.cerbo_serial.as_str().to_owned(),
            timestamp: r.timestamp,
            total_devices: r.total_devices,
            success_count: r.success_count,
            error_count: r.error_count,
            results: r.results.into_iter().map(DeviceOutcome::from).collect(),
        }
    }
}

impl From<DeviceResult> for DeviceOutcome {
    fn from(r: DeviceResult) -> Self {
        Self {
            device_identifier: r.device_identifier.as_str().to_owned(),
            status: r.status.into(),
            inverter_id: r.inverter_id,
            yield_power_w: r.yield_power_w,
            error: r.error,
        }
    }
}
