//! `0x4110` handshake payload (§3.2): timers, upload/acquisition/heartbeat intervals, signal
//! quality, then (firmware-dependent, 86 to 212 bytes) firmware string, MAC, IP, sensor type,
//! extended version and SSID. Fields past the fixed block are optional.

use serde::{Deserialize, Serialize};

use super::fields::{Fields, PayloadError};

// Payload offsets, protocol notes §3.2.
const FRAME_TYPE: usize = 0;
const TOTAL_WORKING: usize = 1;
const POWER_ON: usize = 5;
const OFFSET_TIME: usize = 9;
const UPLOAD_INTERVAL: usize = 13;
const ACQUISITION_INTERVAL: usize = 14;
const HEARTBEAT_INTERVAL: usize = 15;
const SIGNAL: usize = 17;
const FIRMWARE: (usize, usize) = (19, 40);
const MAC: (usize, usize) = (59, 6);
const IP: (usize, usize) = (65, 16);
const SENSOR_TYPE: usize = 84;
const EXTENDED_VERSION: (usize, usize) = (89, 40);
const SSID: (usize, usize) = (172, 30);

/// A decoded handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeInfo {
    /// Payload byte 0 (0x02).
    pub frame_type: u8,
    /// Seconds since the logger left the factory.
    pub total_working_time_s: u32,
    /// Seconds since the logger booted.
    pub power_on_time_s: u32,
    /// Unix time − total working time (0 when the logger has no clock yet).
    pub offset_time_s: u32,
    /// Data upload interval, minutes.
    pub upload_interval_min: u8,
    /// Data acquisition interval, seconds.
    pub acquisition_interval_s: u8,
    /// Heartbeat interval, seconds.
    pub heartbeat_interval_s: u8,
    /// Wi-Fi signal quality, %.
    pub signal_pct: u8,
    /// Logger firmware, e.g. `MW_08_0501_1.58`.
    pub firmware: Option<String>,
    /// MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    /// Local IP address as the logger prints it.
    pub ip: Option<String>,
    /// Sensor type.
    pub sensor_type: Option<u16>,
    /// Extended system version, e.g. `V1.1.00.0B`.
    pub extended_version: Option<String>,
    /// Wi-Fi SSID.
    pub ssid: Option<String>,
}

impl HandshakeInfo {
    /// Decodes a handshake payload; the block up to the signal byte is required.
    pub fn decode(payload: &[u8]) -> Result<Self, PayloadError> {
        let f = Fields::new(payload, "handshake");
        Ok(Self {
            frame_type: f.u8(FRAME_TYPE, "frame type")?,
            total_working_time_s: f.u32_le(TOTAL_WORKING, "total working time")?,
            power_on_time_s: f.u32_le(POWER_ON, "power-on time")?,
            offset_time_s: f.u32_le(OFFSET_TIME, "offset time")?,
            upload_interval_min: f.u8(UPLOAD_INTERVAL, "upload interval")?,
            acquisition_interval_s: f.u8(ACQUISITION_INTERVAL, "acquisition interval")?,
            heartbeat_interval_s: f.u8(HEARTBEAT_INTERVAL, "heartbeat interval")?,
            signal_pct: f.u8(SIGNAL, "signal quality")?,
            firmware: f.text(FIRMWARE.0, FIRMWARE.1),
            mac: f.optional(MAC.0, MAC.1).map(format_mac),
            ip: f.text(IP.0, IP.1),
            sensor_type: f.u16_le(SENSOR_TYPE, "sensor type").ok(),
            extended_version: f.text(EXTENDED_VERSION.0, EXTENDED_VERSION.1),
            ssid: f.text(SSID.0, SSID.1),
        })
    }
}

fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_payloads_are_errors_or_missing_fields() {
        assert!(matches!(
            HandshakeInfo::decode(&[0x02; 17]),
            Err(PayloadError::TooShort {
                field: "signal quality",
                needed: 18,
                len: 17,
                ..
            })
        ));
        let mut minimal = vec![0u8; 18];
        minimal[0] = 0x02;
        minimal[15] = 0x3C;
        let info = HandshakeInfo::decode(&minimal).unwrap();
        assert_eq!(info.heartbeat_interval_s, 60);
        assert_eq!(
            (info.firmware, info.mac, info.sensor_type, info.ssid),
            (None, None, None, None)
        );
    }

    #[test]
    fn ssid_is_read_when_present() {
        let mut payload = vec![0u8; 212];
        payload[172..176].copy_from_slice(b"home");
        payload[89..99].copy_from_slice(b"V1.1.00.0B");
        payload[84..86].copy_from_slice(&[0xB0, 0x02]);
        let info = HandshakeInfo::decode(&payload).unwrap();
        assert_eq!(info.ssid.as_deref(), Some("home"));
        assert_eq!(info.extended_version.as_deref(), Some("V1.1.00.0B"));
        assert_eq!(info.sensor_type, Some(0x02B0));
    }
}
