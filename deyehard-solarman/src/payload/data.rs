//! `0x4210` data payload header (§3.3): frame type (live / buffered), sensor type (selects the
//! body layout), the three logger timers and the record counter, and the data timestamp.

use chrono::{DateTime, Utc};
use deyehard_core::Source;
use serde::{Deserialize, Serialize};

use super::fields::{Fields, PayloadError};

// Payload offsets, protocol notes §3.3.
const FRAME_TYPE: usize = 0;
const SENSOR_TYPE: usize = 1;
const TOTAL_WORKING: usize = 3;
const POWER_ON: usize = 7;
const OFFSET_TIME: usize = 11;
const RECORD_COUNTER: usize = 17;
/// Offset of the body (after the 21-byte header).
pub const BODY_OFFSET: usize = 21;

/// Frame type of a real-time data frame.
pub const FRAME_TYPE_LIVE: u8 = 0x01;
/// Frame type of a buffered data frame (sent after a reconnect / in the 3-hourly sync).
pub const FRAME_TYPE_BUFFERED: u8 = 0x81;
/// Bit that marks buffered data.
const BUFFERED_BIT: u8 = 0x80;

/// A decoded data header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataHeaderInfo {
    /// `0x01` live, `0x81` buffered.
    pub frame_type: u8,
    /// Sensor type, selects the body layout (low byte `0x08`: Deye micro-inverter).
    pub sensor_type: u16,
    /// Seconds since the logger left the factory.
    pub total_working_time_s: u32,
    /// Seconds since the logger booted.
    pub power_on_time_s: u32,
    /// Unix time − total working time; 0 in buffered frames and before the logger has a clock.
    pub offset_time_s: u32,
    /// Record counter (absent in payloads shorter than the 21-byte header).
    pub record_counter: Option<u32>,
}

impl DataHeaderInfo {
    /// Decodes the header; the first 15 bytes are required.
    pub fn decode(payload: &[u8]) -> Result<Self, PayloadError> {
        let f = Fields::new(payload, "data");
        Ok(Self {
            frame_type: f.u8(FRAME_TYPE, "frame type")?,
            sensor_type: f.u16_le(SENSOR_TYPE, "sensor type")?,
            total_working_time_s: f.u32_le(TOTAL_WORKING, "total working time")?,
            power_on_time_s: f.u32_le(POWER_ON, "power-on time")?,
            offset_time_s: f.u32_le(OFFSET_TIME, "offset time")?,
            record_counter: f.u32_le(RECORD_COUNTER, "record counter").ok(),
        })
    }

    /// Whether this is buffered (historic) data.
    pub fn is_buffered(&self) -> bool {
        self.frame_type & BUFFERED_BIT != 0
    }

    /// Where a reading from this frame comes from.
    pub fn source(&self) -> Source {
        if self.is_buffered() {
            Source::SolarmanBuffered
        } else {
            Source::Solarman
        }
    }

    /// The offset carried by this frame, if not 0.
    pub fn known_offset(&self) -> Option<u32> {
        (self.offset_time_s != 0).then_some(self.offset_time_s)
    }

    /// Device time of the data: total working time + offset time (§3.1). When the frame's offset
    /// is 0 (buffered frames), `last_known_offset` (the last non-zero offset seen from this
    /// logger) is used; `None` when neither is known.
    pub fn timestamp(&self, last_known_offset: Option<u32>) -> Option<DateTime<Utc>> {
        let offset = self
            .known_offset()
            .or(last_known_offset.filter(|&o| o != 0))?;
        let secs = i64::from(self.total_working_time_s) + i64::from(offset);
        DateTime::from_timestamp(secs, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(frame_type: u8, total: u32, offset: u32) -> Vec<u8> {
        let mut p = vec![frame_type, 0x08, 0x54];
        p.extend_from_slice(&total.to_le_bytes());
        p.extend_from_slice(&7942u32.to_le_bytes());
        p.extend_from_slice(&offset.to_le_bytes());
        p
    }

    #[test]
    fn timestamp_is_total_plus_offset() {
        // Deye frame in §3.1: 6755845 + 1705840598 = 2024-04-08 17:14:03 UTC
        let h = DataHeaderInfo::decode(&header(0x01, 6_755_845, 1_705_840_598)).unwrap();
        assert_eq!(
            h.timestamp(None).unwrap().to_rfc3339(),
            "2024-04-08T17:14:03+00:00"
        );
        assert_eq!(h.source(), Source::Solarman);
        assert_eq!(
            h.record_counter, None,
            "15-byte payload has no record counter"
        );
    }

    #[test]
    fn buffered_frames_use_the_last_known_offset_or_report_unknown() {
        let h = DataHeaderInfo::decode(&header(0x81, 6_838_696, 0)).unwrap();
        assert!(h.is_buffered());
        assert_eq!(h.source(), Source::SolarmanBuffered);
        assert_eq!(h.known_offset(), None);
        assert_eq!(h.timestamp(None), None);
        assert_eq!(h.timestamp(Some(0)), None);
        assert_eq!(
            h.timestamp(Some(1_705_840_598)).unwrap().timestamp(),
            6_838_696 + 1_705_840_598
        );
    }

    #[test]
    fn short_header_is_an_error() {
        assert!(matches!(
            DataHeaderInfo::decode(&[0x01, 0x08, 0x54, 0x00]),
            Err(PayloadError::TooShort {
                field: "total working time",
                ..
            })
        ));
        assert!(DataHeaderInfo::decode(&[]).is_err());
    }
}
