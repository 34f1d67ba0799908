//! Frames the server sends: the acknowledgement of every logger-originated frame (§2) and
//! the `0x4510` Modbus command (§4).
//!
//! Reply rule (§1.2, §2, §6): code = request − `0x3000`, seq A = request seq A + 1 (wrapping),
//! seq B echoed, same serial, and a 10-byte payload:
//!
//! ```text
//!  0  frame type   echo of request payload[0] (0x00 when the payload is empty)
//!  1  status       0x01
//!  2  unix time    u32 LE, UTC seconds
//!  6  last field   u32 LE, configurable (0 keeps loggers connected; the cloud sends 120)
//! ```

use deyehard_core::LoggerSerial;

use crate::control::ControlCode;
use crate::frame::{Frame, FrameError, OVERHEAD};

/// Length of a reply payload.
pub const REPLY_PAYLOAD_LEN: usize = 10;
/// Length of a whole reply frame.
pub const REPLY_FRAME_LEN: usize = REPLY_PAYLOAD_LEN + OVERHEAD;
/// Reply status "accepted" (§2).
const STATUS_ACCEPTED: u8 = 0x01;

/// An acknowledgement ready to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    control: ControlCode,
    seq_a: u8,
    seq_b: u8,
    serial: LoggerSerial,
    payload: [u8; REPLY_PAYLOAD_LEN],
}

/// The acknowledgement of `request` at `unix_time`, or `None` if the frame must not be answered
/// (server replies, commands, command replies and anything with a type byte below `0x40`).
pub fn reply_to(request: &Frame<'_>, unix_time: u32, last_field: u32) -> Option<Reply> {
    let control = request.control.reply_code()?;
    let mut payload = [0u8; REPLY_PAYLOAD_LEN];
    payload[0] = request.payload.first().copied().unwrap_or(0);
    payload[1] = STATUS_ACCEPTED;
    payload[2..6].copy_from_slice(&unix_time.to_le_bytes());
    payload[6..10].copy_from_slice(&last_field.to_le_bytes());
    Some(Reply {
        control,
        seq_a: request.seq_a.wrapping_add(1),
        seq_b: request.seq_b,
        serial: request.serial,
        payload,
    })
}

impl Reply {
    /// The reply as a frame.
    pub fn frame(&self) -> Frame<'_> {
        Frame {
            control: self.control,
            seq_a: self.seq_a,
            seq_b: self.seq_b,
            serial: self.serial,
            payload: &self.payload,
        }
    }

    /// The encoded reply.
    pub fn to_bytes(&self) -> [u8; REPLY_FRAME_LEN] {
        let mut out = [0u8; REPLY_FRAME_LEN];
        // A 10-byte payload into a buffer of exactly its frame length cannot fail.
        let _ = self.frame().encode_into(&mut out);
        out
    }
}

/// Payload prefix of a `0x4510` command before the Modbus RTU bytes (§4): frame type 0x02
/// (Modbus RTU), sensor type 0, three zero u32 time fields.
const COMMAND_PREFIX: [u8; 15] = [0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
/// Payload prefix length of a `0x1510` command reply before the Modbus RTU bytes (§4).
pub const COMMAND_REPLY_PREFIX_LEN: usize = 14;

/// Encodes a `0x4510` frame carrying `modbus_rtu` (the whole RTU request including its CRC).
pub fn command_frame(
    serial: LoggerSerial,
    seq_a: u8,
    seq_b: u8,
    modbus_rtu: &[u8],
) -> Result<Vec<u8>, FrameError> {
    let mut payload = Vec::with_capacity(COMMAND_PREFIX.len() + modbus_rtu.len());
    payload.extend_from_slice(&COMMAND_PREFIX);
    payload.extend_from_slice(modbus_rtu);
    Frame {
        control: ControlCode::Command,
        seq_a,
        seq_b,
        serial,
        payload: &payload,
    }
    .to_vec()
}

/// The Modbus RTU bytes of a `0x1510` command reply payload (after frame type, status and the
/// three time fields); `None` if the payload is shorter than that prefix.
pub fn command_reply_rtu(payload: &[u8]) -> Option<&[u8]> {
    payload.get(COMMAND_REPLY_PREFIX_LEN..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::parse;

    #[test]
    fn reply_to_a_heartbeat_follows_the_rule() {
        // heartbeat, seq A 0xFF (wraps), seq B 0x07, serial 1, payload [0x00]
        let hb = [
            0xA5, 0x01, 0x00, 0x10, 0x47, 0xFF, 0x07, 0x01, 0x00, 0x00, 0x00, 0x00, 0x5F, 0x15,
        ];
        let request = parse(&hb).unwrap();
        let reply = reply_to(&request, 0x0102_0304, 120).unwrap();
        let bytes = reply.to_bytes();
        #[rustfmt::skip]
        let expected = [
            0xA5, 0x0A, 0x00,       // start, length 10
            0x10, 0x17,             // 0x1710
            0x00, 0x07,             // seq A 0xFF + 1 wraps to 0x00, seq B echoed
            0x01, 0x00, 0x00, 0x00, // serial
            0x00, 0x01,             // echoed frame type, status
            0x04, 0x03, 0x02, 0x01, // time LE
            0x78, 0x00, 0x00, 0x00, // last field 120
            0xBC, 0x15,             // checksum, end
        ];
        assert_eq!(bytes, expected);
        assert_eq!(parse(&bytes).unwrap(), reply.frame());
    }

    #[test]
    fn empty_payload_echoes_zero_and_server_frames_get_no_reply() {
        let frame = Frame {
            control: ControlCode::Report,
            seq_a: 1,
            seq_b: 2,
            serial: LoggerSerial::new(9),
            payload: &[],
        };
        assert_eq!(reply_to(&frame, 0, 0).unwrap().frame().payload[0], 0x00);
        for control in [
            ControlCode::Command,
            ControlCode::CommandReply,
            ControlCode::DataReply,
            ControlCode::Unknown(0x0210),
        ] {
            assert_eq!(
                reply_to(&Frame { control, ..frame }, 0, 0),
                None,
                "{control}"
            );
        }
    }

    #[test]
    fn command_frame_wraps_the_rtu_request() {
        // pysolarmanv5#19: read 1 register at 0x00AA from unit 1
        let rtu = [0x01, 0x03, 0x00, 0xAA, 0x00, 0x01, 0xA4, 0x2A];
        let bytes = command_frame(LoggerSerial::new(2_385_267_882), 0x97, 0x00, &rtu).unwrap();
        let frame = parse(&bytes).unwrap();
        assert_eq!(frame.control, ControlCode::Command);
        assert_eq!(&frame.payload[..15], &COMMAND_PREFIX);
        assert_eq!(&frame.payload[15..], &rtu);
        assert_eq!(command_reply_rtu(&[0x02, 0x01]), None);
    }
}
