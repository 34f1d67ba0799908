//! Readings: what an inverter reported at one instant, with units in the field names.
//!
//! Energy is always Wh at full precision (never truncated), power W, voltage V, current A,
//! frequency Hz, temperature °C. A value the device did not report is `None`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// OpenDTU HTTP push.
    Opendtu,
    /// Solarman V5 live data frame (0x4210, frame type 0x01).
    Solarman,
    /// Solarman V5 buffered data frame (0x4210, frame type 0x81), sent after a reconnect.
    SolarmanBuffered,
    /// Victron (Cerbo GX) HTTP push.
    Victron,
    /// Imported from another system.
    Import,
}

impl Source {
    /// The name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Opendtu => "opendtu",
            Self::Solarman => "solarman",
            Self::SolarmanBuffered => "solarman_buffered",
            Self::Victron => "victron",
            Self::Import => "import",
        }
    }

    /// Reads a stored name back.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "opendtu" => Self::Opendtu,
            "solarman" => Self::Solarman,
            "solarman_buffered" => Self::SolarmanBuffered,
            "victron" => Self::Victron,
            "import" => Self::Import,
            _ => return None,
        })
    }
}

/// One reading of one inverter: the AC block and its DC channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Device time of the reading (UTC).
    pub time: DateTime<Utc>,
    /// Where it came from.
    pub source: Source,
    /// AC active power, W.
    pub power_ac_w: Option<f64>,
    /// AC voltage, V.
    pub voltage_ac_v: Option<f64>,
    /// AC current, A.
    pub current_ac_a: Option<f64>,
    /// Grid frequency, Hz.
    pub frequency_hz: Option<f64>,
    /// Power factor, 0…1.
    pub power_factor: Option<f64>,
    /// Total DC power, W.
    pub power_dc_w: Option<f64>,
    /// Inverter temperature, °C.
    pub temperature_c: Option<f64>,
    /// The device's own day counter, Wh.
    pub yield_day_wh: Option<f64>,
    /// The device's lifetime counter, Wh.
    pub yield_total_wh: Option<f64>,
    /// Whether the device was reachable (an unreachable inverter's values are stale).
    pub reachable: bool,
    /// Whether the device said it was producing.
    pub producing: bool,
    /// DC channels (strings / MPPT inputs), 1-based.
    pub dc: Vec<DcReading>,
}

impl Reading {
    /// An empty reading at `time` from `source`: reachable, not producing, no values.
    pub fn new(time: DateTime<Utc>, source: Source) -> Self {
        Self {
            time,
            source,
            power_ac_w: None,
            voltage_ac_v: None,
            current_ac_a: None,
            frequency_hz: None,
            power_factor: None,
            power_dc_w: None,
            temperature_c: None,
            yield_day_wh: None,
            yield_total_wh: None,
            reachable: true,
            producing: false,
            dc: Vec::new(),
        }
    }
}

/// One DC channel (string / MPPT input) of a reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DcReading {
    /// 1-based channel number.
    pub channel: u8,
    /// Name given on the device (may be empty or absent).
    pub name: Option<String>,
    /// DC power, W.
    pub power_w: Option<f64>,
    /// DC voltage, V.
    pub voltage_v: Option<f64>,
    /// DC current, A.
    pub current_a: Option<f64>,
    /// Day counter of this channel, Wh.
    pub yield_day_wh: Option<f64>,
    /// Lifetime counter of this channel, Wh.
    pub yield_total_wh: Option<f64>,
    /// Irradiation as % of the configured maximum power of the input.
    pub irradiation_pct: Option<f64>,
}

impl DcReading {
    /// An empty channel reading.
    pub fn new(channel: u8) -> Self {
        Self {
            channel,
            name: None,
            power_w: None,
            voltage_v: None,
            current_a: None,
            yield_day_wh: None,
            yield_total_wh: None,
            irradiation_pct: None,
        }
    }
}

/// What a device says about itself (filled into the inverter's record).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Firmware version(s), as the device prints them.
    pub firmware_version: Option<String>,
    /// Rated AC power, W.
    pub rated_power_w: Option<f64>,
    /// Number of MPPT inputs.
    pub mppt_count: Option<u8>,
}
