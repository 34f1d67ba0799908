//! The V5 frame: layout, `check` (is a whole frame buffered?), `parse` (one exact frame, payload
//! borrowed) and `encode`. This module is the only place that knows the byte layout.
//!
//! ```text
//!  offset  size  field                      (protocol notes §1; all multi-byte fields little-endian)
//!  ┌─────┬──────────┬──────────┬──────┬──────┬────────────────┬─────────────┬──────────┬─────┐
//!  │ A5  │ len  u16 │ ctrl u16 │ seqA │ seqB │ serial u32     │ payload     │ checksum │ 15  │
//!  └─────┴──────────┴──────────┴──────┴──────┴────────────────┴─────────────┴──────────┴─────┘
//!    0     1..3       3..5       5      6      7..11            11..11+N      11+N       12+N
//!
//!  len = N, the number of payload bytes; whole frame = N + 13 bytes.
//!  checksum = (sum of bytes 1 .. 11+N) mod 256: everything after the start byte up to and
//!  including the last payload byte.
//! ```

use deyehard_core::LoggerSerial;
use nom::bytes::complete::take;
use nom::combinator::eof;
use nom::number::complete::{le_u16, le_u32, u8 as byte};
use nom::{IResult, Parser};

use crate::control::ControlCode;

/// Start byte (§1).
pub const START: u8 = 0xA5;
/// End byte (§1).
pub const END: u8 = 0x15;
/// Offset of the payload length, `u16` LE (§1).
pub const LEN_OFFSET: usize = 1;
/// Offset of the control code, `u16` LE (§1).
pub const CONTROL_OFFSET: usize = 3;
/// Offset of sequence byte A: the server's counter (§1.2).
pub const SEQ_A_OFFSET: usize = 5;
/// Offset of sequence byte B: the logger's counter (§1.2).
pub const SEQ_B_OFFSET: usize = 6;
/// Offset of the logger serial, `u32` LE (§1).
pub const SERIAL_OFFSET: usize = 7;
/// Header length = offset of the payload (§1).
pub const HEADER_LEN: usize = 11;
/// Checksum + end byte (§1).
pub const TRAILER_LEN: usize = 2;
/// Header + trailer: a frame is `payload length + OVERHEAD` bytes (§1).
pub const OVERHEAD: usize = HEADER_LEN + TRAILER_LEN;
/// Bytes needed before the payload length can be read.
pub const LEN_READY: usize = LEN_OFFSET + 2;
/// The longest frame the wire format can describe (`u16::MAX` payload bytes).
pub const MAX_WIRE_FRAME_LEN: usize = u16::MAX as usize + OVERHEAD;
/// Default cap on frame length for stream decoding. Real frames reach 1,445 bytes (Sofar
/// KTLX-G3, §1), so the cap leaves room while making a garbage `0xA5` with a huge length fail
/// fast instead of stalling the stream.
pub const DEFAULT_MAX_FRAME_LEN: usize = 4096;

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The first byte is not `0xA5`.
    #[error("bad start byte 0x{found:02X} (expected 0xA5)")]
    BadStart {
        /// The byte found.
        found: u8,
    },
    /// The byte at the end computed from the length field is not `0x15`.
    #[error("bad end byte 0x{found:02X} (expected 0x15)")]
    BadEnd {
        /// The byte found.
        found: u8,
    },
    /// The checksum byte does not match the sum of the frame.
    #[error("checksum mismatch: computed 0x{expected:02X}, frame says 0x{found:02X}")]
    ChecksumMismatch {
        /// The checksum computed over the frame.
        expected: u8,
        /// The checksum byte in the frame.
        found: u8,
    },
    /// The bytes given are not exactly one frame of the length the header declares.
    #[error("length mismatch: the frame needs {expected} bytes, {found} given")]
    LengthMismatch {
        /// Frame length from the header (or the minimum frame length if no header).
        expected: usize,
        /// Bytes available.
        found: usize,
    },
    /// The frame is longer than allowed.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    Oversize {
        /// Frame length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Result of [`check`] when no whole frame can be taken yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// More bytes are needed: at least `needed` more.
    #[error("incomplete frame: {needed} more bytes needed")]
    Incomplete {
        /// How many more bytes are needed at least.
        needed: usize,
    },
    /// The buffer does not start with a valid frame.
    #[error(transparent)]
    Invalid(#[from] FrameError),
}

/// One V5 frame; the payload borrows the buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Control code.
    pub control: ControlCode,
    /// Sequence byte A (server counter, §1.2).
    pub seq_a: u8,
    /// Sequence byte B (logger counter, §1.2).
    pub seq_b: u8,
    /// Logger serial from the header.
    pub serial: LoggerSerial,
    /// The payload.
    pub payload: &'a [u8],
}

/// The V5 checksum: sum of `bytes` mod 256.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b))
}

/// Whether `buf` begins with a whole frame, with the default length cap
/// ([`DEFAULT_MAX_FRAME_LEN`]). Returns the frame length. Checks the start byte, the length
/// and the end byte; the checksum is left to [`parse`].
pub fn check(buf: &[u8]) -> Result<usize, CheckError> {
    check_with_limit(buf, DEFAULT_MAX_FRAME_LEN)
}

/// [`check`] with a chosen cap on the frame length.
pub fn check_with_limit(buf: &[u8], max_frame_len: usize) -> Result<usize, CheckError> {
    match buf.first() {
        None => return Err(CheckError::Incomplete { needed: LEN_READY }),
        Some(&found) if found != START => return Err(FrameError::BadStart { found }.into()),
        Some(_) => {}
    }
    let Some(len) = declared_len(buf) else {
        return Err(CheckError::Incomplete {
            needed: LEN_READY - buf.len(),
        });
    };
    if len > max_frame_len {
        return Err(FrameError::Oversize {
            len,
            max: max_frame_len,
        }
        .into());
    }
    match buf.get(len - 1) {
        None => Err(CheckError::Incomplete {
            needed: len - buf.len(),
        }),
        Some(&END) => Ok(len),
        Some(&found) => Err(FrameError::BadEnd { found }.into()),
    }
}

/// The frame length the header at the start of `buf` declares, once its length field is there.
pub fn declared_len(buf: &[u8]) -> Option<usize> {
    let bytes = buf.get(LEN_OFFSET..LEN_READY)?;
    Some(usize::from(u16::from_le_bytes([bytes[0], bytes[1]])) + OVERHEAD)
}

/// Parses exactly one frame (the slice must be the whole frame, nothing more); rejects a wrong
/// checksum.
pub fn parse(frame: &[u8]) -> Result<Frame<'_>, FrameError> {
    let (parsed, Sums { expected, found }) = parse_lenient_sums(frame)?;
    if expected == found {
        Ok(parsed)
    } else {
        Err(FrameError::ChecksumMismatch { expected, found })
    }
}

/// Parses exactly one frame but accepts a wrong checksum, returning `(frame, checksum_ok)`:
/// some loggers get it wrong and must still be answered (§5.3).
pub fn parse_lenient(frame: &[u8]) -> Result<(Frame<'_>, bool), FrameError> {
    parse_lenient_sums(frame).map(|(f, s)| (f, s.expected == s.found))
}

/// Computed and received checksum of a parsed frame.
#[derive(Debug, Clone, Copy)]
struct Sums {
    expected: u8,
    found: u8,
}

fn parse_lenient_sums(frame: &[u8]) -> Result<(Frame<'_>, Sums), FrameError> {
    let len = check_with_limit(frame, MAX_WIRE_FRAME_LEN).map_err(|e| match e {
        CheckError::Invalid(e) => e,
        CheckError::Incomplete { .. } => length_mismatch(frame),
    })?;
    if len != frame.len() {
        return Err(FrameError::LengthMismatch {
            expected: len,
            found: frame.len(),
        });
    }
    let (_, (parsed, found)) = frame_grammar(frame).map_err(|_| length_mismatch(frame))?;
    let expected = checksum(&frame[LEN_OFFSET..len - TRAILER_LEN]);
    Ok((parsed, Sums { expected, found }))
}

fn length_mismatch(frame: &[u8]) -> FrameError {
    FrameError::LengthMismatch {
        expected: declared_len(frame).unwrap_or(OVERHEAD),
        found: frame.len(),
    }
}

/// The whole frame as nom *complete* parsers over the exact slice (start and end byte values
/// were checked by [`check_with_limit`]).
fn frame_grammar(input: &[u8]) -> IResult<&[u8], (Frame<'_>, u8)> {
    let (input, (_start, len, control, seq_a, seq_b, serial)) =
        (byte, le_u16, le_u16, byte, byte, le_u32).parse(input)?;
    let (input, (payload, sum, _end, _)) = (take(len), byte, byte, eof).parse(input)?;
    let frame = Frame {
        control: ControlCode::from_u16(control),
        seq_a,
        seq_b,
        serial: LoggerSerial::new(serial),
        payload,
    };
    Ok((input, (frame, sum)))
}

impl Frame<'_> {
    /// The encoded length: payload + [`OVERHEAD`].
    pub fn encoded_len(&self) -> usize {
        self.payload.len() + OVERHEAD
    }

    /// Appends the encoded frame (length field and checksum computed) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let at = out.len();
        out.resize(at + self.encoded_len(), 0);
        self.encode_into(&mut out[at..])
            .map(|_| ())
            .inspect_err(|_| out.truncate(at))
    }

    /// Writes the encoded frame to the start of `out`; returns the bytes written.
    pub fn encode_into(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let len = self.encoded_len();
        let payload_len = u16::try_from(self.payload.len()).map_err(|_| FrameError::Oversize {
            len,
            max: MAX_WIRE_FRAME_LEN,
        })?;
        let Some(out) = out.get_mut(..len) else {
            return Err(FrameError::LengthMismatch {
                expected: len,
                found: out.len(),
            });
        };
        out[0] = START;
        out[LEN_OFFSET..CONTROL_OFFSET].copy_from_slice(&payload_len.to_le_bytes());
        out[CONTROL_OFFSET..SEQ_A_OFFSET].copy_from_slice(&self.control.to_u16().to_le_bytes());
        out[SEQ_A_OFFSET] = self.seq_a;
        out[SEQ_B_OFFSET] = self.seq_b;
        out[SERIAL_OFFSET..HEADER_LEN].copy_from_slice(&self.serial.get().to_le_bytes());
        out[HEADER_LEN..len - TRAILER_LEN].copy_from_slice(self.payload);
        out[len - TRAILER_LEN] = checksum(&out[LEN_OFFSET..len - TRAILER_LEN]);
        out[len - 1] = END;
        Ok(len)
    }

    /// The encoded frame as a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A heartbeat (§3.5, GbbOptimizer capture) followed by the first bytes of the next frame.
    const HEARTBEAT_THEN_NEXT: &[u8] = &[
        0xA5, // start
        0x01, 0x00, // payload length 1
        0x10, 0x47, // control 0x4710 heartbeat
        0xF5, // seq A
        0x85, // seq B
        0x57, 0x9A, 0xF6, 0xA5, // serial 0xA5F69A57 = 2784402007
        0x00, // payload: frame type 0x00
        0x5E, // checksum
        0x15, // end
        0xA5, 0x0A, 0x00, // next frame starts here
    ];
    const HEARTBEAT_LEN: usize = 14;

    #[test]
    fn check_stops_at_the_frame_boundary() {
        assert_eq!(check(HEARTBEAT_THEN_NEXT), Ok(HEARTBEAT_LEN));
        let frame = parse(&HEARTBEAT_THEN_NEXT[..HEARTBEAT_LEN]).unwrap();
        assert_eq!(frame.control, ControlCode::Heartbeat);
        assert_eq!((frame.seq_a, frame.seq_b), (0xF5, 0x85));
        assert_eq!(frame.serial.get(), 2_784_402_007);
        assert_eq!(frame.payload, &[0x00]);
        // the next frame's start is incomplete on its own
        assert_eq!(
            check(&HEARTBEAT_THEN_NEXT[HEARTBEAT_LEN..]),
            Err(CheckError::Incomplete { needed: 20 })
        );
    }

    #[test]
    fn check_reports_how_much_is_missing() {
        assert_eq!(check(&[]), Err(CheckError::Incomplete { needed: 3 }));
        assert_eq!(check(&[0xA5]), Err(CheckError::Incomplete { needed: 2 }));
        assert_eq!(
            check(&HEARTBEAT_THEN_NEXT[..3]),
            Err(CheckError::Incomplete { needed: 11 })
        );
        assert_eq!(
            check(&HEARTBEAT_THEN_NEXT[..13]),
            Err(CheckError::Incomplete { needed: 1 })
        );
    }

    #[test]
    fn check_rejects_bad_start_bad_end_and_oversize() {
        assert_eq!(
            check(&[0x16, 0x03, 0x01]),
            Err(FrameError::BadStart { found: 0x16 }.into())
        );
        let mut bad_end = HEARTBEAT_THEN_NEXT[..HEARTBEAT_LEN].to_vec();
        bad_end[13] = 0x16;
        assert_eq!(
            check(&bad_end),
            Err(FrameError::BadEnd { found: 0x16 }.into())
        );
        // length 0xFFFF: rejected as soon as the length field is there
        assert_eq!(
            check(&[0xA5, 0xFF, 0xFF]),
            Err(FrameError::Oversize {
                len: 65_548,
                max: 4096
            }
            .into())
        );
        assert_eq!(
            check_with_limit(&[0xA5, 0xFF, 0xFF], MAX_WIRE_FRAME_LEN),
            Err(CheckError::Incomplete { needed: 65_545 })
        );
    }

    #[test]
    fn parse_wants_exactly_one_frame() {
        assert_eq!(
            parse(HEARTBEAT_THEN_NEXT),
            Err(FrameError::LengthMismatch {
                expected: HEARTBEAT_LEN,
                found: HEARTBEAT_THEN_NEXT.len()
            })
        );
        assert_eq!(
            parse(&HEARTBEAT_THEN_NEXT[..10]),
            Err(FrameError::LengthMismatch {
                expected: HEARTBEAT_LEN,
                found: 10
            })
        );
        assert_eq!(
            parse(&[]),
            Err(FrameError::LengthMismatch {
                expected: OVERHEAD,
                found: 0
            })
        );
    }

    #[test]
    fn checksum_mismatch_is_an_error_in_parse_and_a_flag_in_parse_lenient() {
        let mut frame = HEARTBEAT_THEN_NEXT[..HEARTBEAT_LEN].to_vec();
        frame[12] = 0x5F;
        assert_eq!(
            parse(&frame),
            Err(FrameError::ChecksumMismatch {
                expected: 0x5E,
                found: 0x5F
            })
        );
        let (parsed, ok) = parse_lenient(&frame).unwrap();
        assert!(!ok);
        assert_eq!(parsed.control, ControlCode::Heartbeat);
        let (_, ok) = parse_lenient(&HEARTBEAT_THEN_NEXT[..HEARTBEAT_LEN]).unwrap();
        assert!(ok);
    }

    #[test]
    fn encode_reproduces_the_captured_bytes() {
        let frame = parse(&HEARTBEAT_THEN_NEXT[..HEARTBEAT_LEN]).unwrap();
        assert_eq!(frame.encoded_len(), HEARTBEAT_LEN);
        let mut out = vec![0xEE];
        frame.encode(&mut out).unwrap();
        assert_eq!(&out[1..], &HEARTBEAT_THEN_NEXT[..HEARTBEAT_LEN]);
        assert_eq!(out[0], 0xEE, "encode appends");
    }

    #[test]
    fn encode_refuses_what_the_length_field_cannot_hold() {
        let payload = vec![0u8; usize::from(u16::MAX) + 1];
        let frame = Frame {
            control: ControlCode::Data,
            seq_a: 0,
            seq_b: 0,
            serial: LoggerSerial::new(1),
            payload: &payload,
        };
        let mut out = Vec::new();
        assert_eq!(
            frame.encode(&mut out),
            Err(FrameError::Oversize {
                len: 65_549,
                max: MAX_WIRE_FRAME_LEN
            })
        );
        assert!(out.is_empty());
        let mut small = [0u8; 5];
        assert!(matches!(
            Frame {
                payload: &[],
                ..frame
            }
            .encode_into(&mut small),
            Err(FrameError::LengthMismatch {
                expected: 13,
                found: 5
            })
        ));
    }
}
