//! Deye micro-inverter body of `0x4210` data frames (sensor type low byte `0x08`: SUN300/600/800
//! G3, SUN-M80G3/G4), layout table in protocol notes §3.3.1, into core readings.
//!
//! Units: energy in Wh (kWh × 1000, computed from the integer raw value so 3.40 kWh is exactly
//! 3400 Wh), power W, voltage V, current A, frequency Hz, temperature °C. DC power per input is
//! not transmitted; it is V × I.

use chrono::{DateTime, Utc};
use deyehard_core::{DcReading, DeviceInfo, DeviceSerial, Reading, Source};
use serde::{Deserialize, Serialize};

use super::fields::{Fields, PayloadError};

/// Low byte of the sensor type of Deye micro-inverters.
pub const SENSOR_LOW_BYTE: u8 = 0x08;
/// The number of PV inputs the body has room for.
pub const PV_INPUTS: usize = 4;

// Payload offsets, protocol notes §3.3.1.
const INVERTER_SERIAL: (usize, usize) = (21, 10);
const YIELD_DAY: usize = 33; // u32 LE, 0.01 kWh
const YIELD_TOTAL: usize = 37; // u32 LE, 0.1 kWh
const GRID_VOLTAGE: usize = 45; // u16 LE, 0.1 V
const GRID_CURRENT: usize = 51; // u16 LE, 0.1 A
const GRID_FREQUENCY: usize = 57; // u16 LE, 0.01 Hz
const AC_POWER: usize = 59; // u32 LE, W
const TEMPERATURE: usize = 63; // i16 LE, 0.01 °C
const PV_VOLTAGE: usize = 85; // + 4k, u16 LE, 0.1 V
const PV_CURRENT: usize = 87; // + 4k, u16 LE, 0.1 A
const PV_STRIDE: usize = 4;
const PROTOCOL_VERSION: (usize, usize) = (101, 8);
const DC_FIRMWARE: (usize, usize) = (109, 8);
const AC_FIRMWARE: (usize, usize) = (117, 8);
const RATED_POWER: usize = 129; // u16 BE, 0.1 W
const MPPT_COUNT: usize = 131;
const PHASE_COUNT: usize = 132;
const PV_YIELD_DAY: usize = 136; // + 2k, u16 LE, 0.1 kWh
const PV_YIELD_DAY_STRIDE: usize = 2;
const PV_YIELD_TOTAL: usize = 145; // + 4k, u16 BE, 0.1 kWh (low 16 bits, §3.3.1)
const PV_YIELD_TOTAL_STRIDE: usize = 4;

/// Whether a data frame's sensor type selects this body.
pub fn is_deye_micro(sensor_type: u16) -> bool {
    sensor_type.to_le_bytes()[0] == SENSOR_LOW_BYTE
}

/// One PV input as transmitted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PvInput {
    /// Voltage, V.
    pub voltage_v: f64,
    /// Current, A.
    pub current_a: f64,
    /// V × I, W.
    pub power_w: f64,
    /// Day counter, Wh.
    pub yield_day_wh: f64,
    /// Lifetime counter (low 16 bits of the raw value), Wh.
    pub yield_total_wh: f64,
}

/// The decoded body, every field of §3.3.1 the collector uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeyeMicroBody {
    /// Inverter serial (10 ASCII digits).
    pub inverter_serial: DeviceSerial,
    /// AC energy today, Wh.
    pub yield_day_wh: f64,
    /// AC energy total, Wh.
    pub yield_total_wh: f64,
    /// Grid voltage L1, V.
    pub voltage_ac_v: f64,
    /// Grid current L1, A.
    pub current_ac_a: f64,
    /// Grid frequency, Hz.
    pub frequency_hz: f64,
    /// AC active power, W.
    pub power_ac_w: f64,
    /// Radiator temperature, °C.
    pub temperature_c: f64,
    /// All four PV inputs (only the first `mppt_count` are connected).
    pub pv: [PvInput; PV_INPUTS],
    /// The version strings present, as `ac=V1.2.1.8 dc=V0.1.1.7 protocol=V0.2.0.1` (AC firmware,
    /// DC master firmware, protocol version).
    pub firmware_version: Option<String>,
    /// Rated power, W.
    pub rated_power_w: f64,
    /// Number of MPPT inputs.
    pub mppt_count: u8,
    /// Number of grid phases.
    pub phase_count: u8,
}

/// What a decoded data frame yields for the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodedData {
    /// The inverter behind the logger.
    pub inverter_serial: DeviceSerial,
    /// The reading.
    pub reading: Reading,
    /// What the inverter says about itself.
    pub device_info: DeviceInfo,
}

impl DeyeMicroBody {
    /// Decodes the body from a whole data payload (header included).
    pub fn decode(payload: &[u8]) -> Result<Self, PayloadError> {
        let f = Fields::new(payload, "deye micro data");
        let serial_text = f
            .text_ref(INVERTER_SERIAL.0, INVERTER_SERIAL.1)
            .unwrap_or_default();
        let inverter_serial =
            DeviceSerial::parse(&serial_text).map_err(|source| PayloadError::BadSerial {
                message: f.message(),
                source,
            })?;
        let mut pv = [PvInput {
            voltage_v: 0.0,
            current_a: 0.0,
            power_w: 0.0,
            yield_day_wh: 0.0,
            yield_total_wh: 0.0,
        }; PV_INPUTS];
        for (k, input) in pv.iter_mut().enumerate() {
            *input = pv_input(&f, k)?;
        }
        Ok(Self {
            inverter_serial,
            yield_day_wh: f64::from(f.u32_le(YIELD_DAY, "energy today")?) * 10.0,
            yield_total_wh: f64::from(f.u32_le(YIELD_TOTAL, "energy total")?) * 100.0,
            voltage_ac_v: tenths(f.u16_le(GRID_VOLTAGE, "grid voltage")?),
            current_ac_a: tenths(f.u16_le(GRID_CURRENT, "grid current")?),
            frequency_hz: f64::from(f.u16_le(GRID_FREQUENCY, "grid frequency")?) / 100.0,
            power_ac_w: f64::from(f.u32_le(AC_POWER, "AC power")?),
            temperature_c: f64::from(f.i16_le(TEMPERATURE, "temperature")?) / 100.0,
            pv,
            firmware_version: firmware_version(&f),
            rated_power_w: tenths(f.u16_be(RATED_POWER, "rated power")?),
            mppt_count: f.u8(MPPT_COUNT, "MPPT count")?,
            phase_count: f.u8(PHASE_COUNT, "phase count")?,
        })
    }

    /// The reading at `time` from `source` (live or buffered), the inverter serial and the
    /// device info. Only the first `mppt_count` PV inputs (at most four) become DC channels.
    pub fn into_decoded(self, time: DateTime<Utc>, source: Source) -> DecodedData {
        let channels = usize::from(self.mppt_count).min(PV_INPUTS);
        let dc: Vec<DcReading> = self.pv[..channels]
            .iter()
            .zip(1u8..)
            .map(|(pv, channel)| DcReading {
                power_w: Some(pv.power_w),
                voltage_v: Some(pv.voltage_v),
                current_a: Some(pv.current_a),
                yield_day_wh: Some(pv.yield_day_wh),
                yield_total_wh: Some(pv.yield_total_wh),
                ..DcReading::new(channel)
            })
            .collect();
        let reading = Reading {
            power_ac_w: Some(self.power_ac_w),
            voltage_ac_v: Some(self.voltage_ac_v),
            current_ac_a: Some(self.current_ac_a),
            frequency_hz: Some(self.frequency_hz),
            power_dc_w: Some(dc.iter().filter_map(|c| c.power_w).sum()),
            temperature_c: Some(self.temperature_c),
            yield_day_wh: Some(self.yield_day_wh),
            yield_total_wh: Some(self.yield_total_wh),
            producing: self.power_ac_w > 0.0,
            dc,
            ..Reading::new(time, source)
        };
        let device_info = DeviceInfo {
            firmware_version: self.firmware_version,
            rated_power_w: Some(self.rated_power_w),
            mppt_count: Some(self.mppt_count),
        };
        DecodedData {
            inverter_serial: self.inverter_serial,
            reading,
            device_info,
        }
    }
}

/// `ac=… dc=… protocol=…` from the version strings present, in one allocation of the right size.
fn firmware_version(f: &Fields<'_>) -> Option<String> {
    let parts = [
        ("ac=", f.text_bytes(AC_FIRMWARE.0, AC_FIRMWARE.1)),
        ("dc=", f.text_bytes(DC_FIRMWARE.0, DC_FIRMWARE.1)),
        (
            "protocol=",
            f.text_bytes(PROTOCOL_VERSION.0, PROTOCOL_VERSION.1),
        ),
    ];
    let len: usize = parts
        .iter()
        .filter_map(|(name, value)| value.map(|v| name.len() + v.max_len() + 1))
        .sum();
    if len == 0 {
        return None;
    }
    let mut out = Vec::with_capacity(len);
    for (name, value) in parts {
        if let Some(value) = value {
            if !out.is_empty() {
                out.push(b' ');
            }
            out.extend_from_slice(name.as_bytes());
            value.push_to(&mut out);
        }
    }
    // Printable ASCII and U+FFFD only: always valid (validating ASCII once is cheaper than
    // building the string char by char).
    String::from_utf8(out).ok()
}

fn tenths(raw: u16) -> f64 {
    f64::from(raw) / 10.0
}

fn pv_input(f: &Fields<'_>, k: usize) -> Result<PvInput, PayloadError> {
    let volts = f.u16_le(PV_VOLTAGE + PV_STRIDE * k, "PV voltage")?;
    let amps = f.u16_le(PV_CURRENT + PV_STRIDE * k, "PV current")?;
    let day = f.u16_le(PV_YIELD_DAY + PV_YIELD_DAY_STRIDE * k, "PV energy today")?;
    let total = f.u16_be(
        PV_YIELD_TOTAL + PV_YIELD_TOTAL_STRIDE * k,
        "PV energy total",
    )?;
    Ok(PvInput {
        voltage_v: tenths(volts),
        current_a: tenths(amps),
        // (V × 10) × (A × 10) / 100 in integers first: 33.3 V × 2.6 A = 86.58 W, not 86.58000000000001
        power_w: f64::from(u32::from(volts) * u32::from(amps)) / 100.0,
        yield_day_wh: f64::from(day) * 100.0,
        yield_total_wh: f64::from(total) * 100.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_with(serial: &[u8], mppt: u8) -> Vec<u8> {
        let mut p = vec![0u8; 160];
        p[21..21 + serial.len()].copy_from_slice(serial);
        p[59..63].copy_from_slice(&185u32.to_le_bytes()); // 185 W
        p[85..87].copy_from_slice(&333u16.to_le_bytes()); // PV1 33.3 V
        p[87..89].copy_from_slice(&26u16.to_le_bytes()); // PV1 2.6 A
        p[145..147].copy_from_slice(&818u16.to_be_bytes()); // PV1 81.8 kWh
        p[MPPT_COUNT] = mppt;
        p
    }

    #[test]
    fn firmware_version_lists_the_strings_present_with_unprintable_bytes_replaced() {
        let mut p = body_with(b"2305107146", 1);
        p[AC_FIRMWARE.0..AC_FIRMWARE.0 + 8].copy_from_slice(b"V1.2.1.8");
        p[PROTOCOL_VERSION.0..PROTOCOL_VERSION.0 + 4].copy_from_slice(b" V\x01 ");
        let body = DeyeMicroBody::decode(&p).unwrap();
        assert_eq!(
            body.firmware_version.as_deref(),
            Some("ac=V1.2.1.8 protocol=V\u{FFFD}")
        );
    }

    #[test]
    fn only_mppt_count_channels_become_dc_readings() {
        let body = DeyeMicroBody::decode(&body_with(b"2305107146", 1)).unwrap();
        let time = DateTime::from_timestamp(1_712_596_443, 0).unwrap();
        let decoded = body.into_decoded(time, Source::Solarman);
        assert_eq!(decoded.reading.dc.len(), 1);
        let ch = &decoded.reading.dc[0];
        assert_eq!(
            (ch.channel, ch.power_w, ch.yield_total_wh),
            (1, Some(86.58), Some(81_800.0))
        );
        assert_eq!(decoded.reading.power_dc_w, Some(86.58));
        assert!(decoded.reading.producing && decoded.reading.reachable);
        assert_eq!(decoded.device_info.firmware_version, None);
    }

    #[test]
    fn more_than_four_mppt_is_clamped() {
        let body = DeyeMicroBody::decode(&body_with(b"2305107146", 9)).unwrap();
        assert_eq!(
            body.into_decoded(DateTime::UNIX_EPOCH, Source::Solarman)
                .reading
                .dc
                .len(),
            4
        );
    }

    #[test]
    fn short_body_and_bad_serial_are_errors() {
        let mut short = body_with(b"2305107146", 2);
        short.truncate(150);
        assert!(matches!(
            DeyeMicroBody::decode(&short),
            Err(PayloadError::TooShort {
                field: "PV energy total",
                ..
            })
        ));
        assert!(matches!(
            DeyeMicroBody::decode(&body_with(b"", 2)),
            Err(PayloadError::BadSerial { .. })
        ));
        assert!(matches!(
            DeyeMicroBody::decode(&body_with(b"23 05", 2)),
            Err(PayloadError::BadSerial { .. })
        ));
    }

    #[test]
    fn sensor_type_dispatch_uses_the_low_byte() {
        assert!(is_deye_micro(0x5408));
        assert!(!is_deye_micro(0x5411));
        assert!(!is_deye_micro(0xDD01));
    }
}
