//! Framing on a byte stream, sans-io: push what the socket gave, take frames out.
//!
//! TCP delivers several frames per read, frames split anywhere, and sometimes garbage (§5.1,
//! §5.2). [`FrameBuffer`] buffers, yields every whole frame in order, and resynchronises by
//! skipping to the next `0xA5` start byte, reporting how many bytes it dropped and why.
//!
//! Checksum policy (§5.3): loggers that get the checksum wrong would retransmit forever if
//! not answered, so by default ([`ChecksumPolicy::Lenient`]) a frame whose start, length and
//! end byte are right but whose checksum is wrong is still surfaced, with
//! `checksum_ok: false`, and counted in [`StreamStats::checksum_failures`]: the caller decides
//! (the listener answers it). [`ChecksumPolicy::Strict`] drops such a frame whole and reports
//! [`StreamError::Rejected`].

use deyehard_core::LoggerSerial;

use crate::control::ControlCode;
use crate::frame::{
    self, CheckError, DEFAULT_MAX_FRAME_LEN, Frame, FrameError, HEADER_LEN, OVERHEAD, START,
};

/// What to do with a frame whose checksum is wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChecksumPolicy {
    /// Surface it with `checksum_ok: false` (default, §5.3).
    #[default]
    Lenient,
    /// Drop it and report [`StreamError::Rejected`].
    Strict,
}

/// Settings of a [`FrameBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// Longest frame accepted; a longer length field is treated as garbage.
    pub max_frame_len: usize,
    /// Checksum policy.
    pub checksum: ChecksumPolicy,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            checksum: ChecksumPolicy::Lenient,
        }
    }
}

/// A problem in the stream; decoding continues after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// Bytes that do not start a valid frame were dropped, up to the next start byte.
    #[error("dropped {dropped} bytes at offset {offset}: {cause}")]
    Resync {
        /// Stream offset of the first dropped byte.
        offset: u64,
        /// Bytes dropped.
        dropped: usize,
        /// Why the bytes at `offset` are not a frame.
        cause: FrameError,
    },
    /// A whole frame was dropped (strict checksum policy).
    #[error("rejected the {len}-byte frame at offset {offset}: {cause}")]
    Rejected {
        /// Stream offset of the frame.
        offset: u64,
        /// Frame length.
        len: usize,
        /// Why.
        cause: FrameError,
    },
}

impl StreamError {
    /// Stream offset of the problem.
    pub fn offset(&self) -> u64 {
        match self {
            Self::Resync { offset, .. } | Self::Rejected { offset, .. } => *offset,
        }
    }
}

/// A frame taken from the stream, borrowing the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamFrame<'a> {
    /// Stream offset of the frame's first byte.
    pub offset: u64,
    /// The frame's bytes as received.
    pub raw: &'a [u8],
    /// The parsed frame.
    pub frame: Frame<'a>,
    /// Whether the checksum matched.
    pub checksum_ok: bool,
}

impl StreamFrame<'_> {
    /// Copies the frame out of the buffer.
    pub fn to_owned_frame(&self) -> OwnedFrame {
        OwnedFrame {
            offset: self.offset,
            raw: self.raw.to_vec(),
            control: self.frame.control,
            seq_a: self.frame.seq_a,
            seq_b: self.frame.seq_b,
            serial: self.frame.serial,
            checksum_ok: self.checksum_ok,
        }
    }
}

/// A frame that owns its bytes (for channels and the tokio codec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    /// Stream offset of the frame's first byte.
    pub offset: u64,
    /// The frame's bytes as received.
    pub raw: Vec<u8>,
    /// Control code.
    pub control: ControlCode,
    /// Sequence byte A.
    pub seq_a: u8,
    /// Sequence byte B.
    pub seq_b: u8,
    /// Logger serial.
    pub serial: LoggerSerial,
    /// Whether the checksum matched.
    pub checksum_ok: bool,
}

impl OwnedFrame {
    /// The frame, borrowing the payload from `raw`.
    pub fn frame(&self) -> Frame<'_> {
        let end = self
            .raw
            .len()
            .saturating_sub(frame::TRAILER_LEN)
            .max(HEADER_LEN);
        Frame {
            control: self.control,
            seq_a: self.seq_a,
            seq_b: self.seq_b,
            serial: self.serial,
            payload: self.raw.get(HEADER_LEN..end).unwrap_or_default(),
        }
    }
}

/// Counters of a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Frames surfaced.
    pub frames: u64,
    /// Bytes dropped while resynchronising.
    pub resync_bytes: u64,
    /// Frames with a wrong checksum (surfaced or rejected).
    pub checksum_failures: u64,
}

/// What the bytes at the front of a buffer are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A frame of this length, start/length/end byte valid.
    Frame(usize),
    /// Drop this many bytes.
    Skip { dropped: usize, cause: FrameError },
    /// Wait for more bytes.
    NeedMore,
}

/// Classifies the front of `buf`. With `eof`, an incomplete frame is garbage too.
pub(crate) fn scan(buf: &[u8], max_frame_len: usize, eof: bool) -> Step {
    match frame::check_with_limit(buf, max_frame_len) {
        Ok(len) => Step::Frame(len),
        Err(CheckError::Incomplete { .. }) if buf.is_empty() => Step::NeedMore,
        Err(CheckError::Incomplete { .. }) if !eof => Step::NeedMore,
        Err(CheckError::Incomplete { .. }) => Step::Skip {
            dropped: skip_len(buf),
            cause: FrameError::LengthMismatch {
                expected: frame::declared_len(buf).unwrap_or(OVERHEAD),
                found: buf.len(),
            },
        },
        Err(CheckError::Invalid(cause)) => Step::Skip {
            dropped: skip_len(buf),
            cause,
        },
    }
}

/// Bytes to drop: up to (not including) the next start byte after the first byte.
fn skip_len(buf: &[u8]) -> usize {
    buf.iter()
        .skip(1)
        .position(|&b| b == START)
        .map_or(buf.len(), |p| p + 1)
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Spare capacity a partial frame may keep; beyond it (and twice the partial frame) the buffer
/// shrinks.
const MAX_SPARE: usize = 512;

/// Sans-io stream decoder: [`push`](Self::push) bytes, then call
/// [`next_frame`](Self::next_frame) until it returns `None`.
///
/// Memory: when `next_frame` returns `None` the consumed bytes are dropped, and a buffer left
/// empty gives its allocation back, so an idle connection between frames holds none (a
/// partial frame keeps at most its own size plus a little spare).
#[derive(Debug, Default)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
    config: StreamConfig,
    stats: StreamStats,
}

impl FrameBuffer {
    /// An empty buffer.
    pub fn new(config: StreamConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.drop_consumed();
        self.buf.extend_from_slice(bytes);
    }

    /// Removes the bytes already consumed from the front of the buffer.
    fn drop_consumed(&mut self) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.base += to_u64(self.pos);
            self.pos = 0;
        }
    }

    /// Once every whole frame is taken: frees an empty buffer, shrinks one holding a small
    /// partial frame in a large allocation.
    fn release(&mut self) {
        self.drop_consumed();
        if self.buf.is_empty() {
            self.buf = Vec::new();
        } else if self.buf.capacity() > self.buf.len().saturating_mul(2).max(MAX_SPARE) {
            self.buf.shrink_to_fit();
        }
    }

    /// Marks the end of the input: a frame still incomplete is then reported as garbage and
    /// scanning continues after it (so frames hidden behind a false start byte surface).
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// Bytes buffered and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes buffered and not yet consumed (e.g. to sniff the protocol before framing).
    pub fn pending(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Counters so far.
    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// The next frame or stream problem, in stream order; `None` when more bytes are needed
    /// (the buffer then releases what it no longer needs, see the type's docs).
    pub fn next_frame(&mut self) -> Option<Result<StreamFrame<'_>, StreamError>> {
        let start = self.pos;
        let offset = self.base + to_u64(start);
        let len = match scan(&self.buf[start..], self.config.max_frame_len, self.eof) {
            Step::NeedMore => {
                self.release();
                return None;
            }
            Step::Skip { dropped, cause } => {
                self.pos += dropped;
                self.stats.resync_bytes += to_u64(dropped);
                return Some(Err(StreamError::Resync {
                    offset,
                    dropped,
                    cause,
                }));
            }
            Step::Frame(len) => len,
        };
        self.pos += len;
        let raw = &self.buf[start..start + len];
        let (frame, checksum_ok) = match frame::parse_lenient(raw) {
            Ok(parsed) => parsed,
            Err(cause) => return Some(Err(StreamError::Rejected { offset, len, cause })),
        };
        if !checksum_ok {
            self.stats.checksum_failures += 1;
            if self.config.checksum == ChecksumPolicy::Strict
                && let Err(cause) = frame::parse(raw)
            {
                return Some(Err(StreamError::Rejected { offset, len, cause }));
            }
        }
        self.stats.frames += 1;
        Some(Ok(StreamFrame {
            offset,
            raw,
            frame,
            checksum_ok,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// heartbeat `hb-81` (pysolarmanv5#81): 14 bytes
    const HB: &[u8] = &[
        0xA5, 0x01, 0x00, // start, payload length 1
        0x10, 0x47, // 0x4710 heartbeat
        0x02, 0xD7, // seq A, seq B
        0xCB, 0xEA, 0x91, 0xE6, // serial 3868322507
        0x00, // payload
        0x5D, 0x15, // checksum, end
    ];

    /// (offset, raw bytes, checksum ok) of a surfaced frame.
    type Item = Result<(u64, Vec<u8>, bool), StreamError>;

    fn drain(fb: &mut FrameBuffer) -> Vec<Item> {
        let mut out = Vec::new();
        while let Some(item) = fb.next_frame() {
            out.push(item.map(|f| (f.offset, f.raw.to_vec(), f.checksum_ok)));
        }
        out
    }

    #[test]
    fn several_frames_in_one_read() {
        let mut fb = FrameBuffer::default();
        fb.push(&[HB, HB, &HB[..5]].concat());
        let items = drain(&mut fb);
        assert_eq!(
            items,
            vec![Ok((0, HB.to_vec(), true)), Ok((14, HB.to_vec(), true))]
        );
        assert_eq!(fb.buffered(), 5);
        fb.push(&HB[5..]);
        assert_eq!(drain(&mut fb), vec![Ok((28, HB.to_vec(), true))]);
        assert_eq!(
            fb.stats(),
            StreamStats {
                frames: 3,
                resync_bytes: 0,
                checksum_failures: 0
            }
        );
    }

    #[test]
    fn frame_split_byte_by_byte() {
        let mut fb = FrameBuffer::default();
        for (i, b) in HB.iter().enumerate() {
            fb.push(&[*b]);
            let items = drain(&mut fb);
            if i + 1 < HB.len() {
                assert!(items.is_empty(), "frame surfaced after {} bytes", i + 1);
            } else {
                assert_eq!(items, vec![Ok((0, HB.to_vec(), true))]);
            }
        }
    }

    #[test]
    fn garbage_between_frames_is_skipped_to_the_next_start_byte() {
        let mut fb = FrameBuffer::default();
        // "AT+" chatter, a lone A5 with a bad end byte, then a heartbeat
        let garbage = b"AT+\r\n";
        let false_start = [0xA5, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99];
        fb.push(&[HB, garbage, &false_start, HB].concat());
        let items = drain(&mut fb);
        assert_eq!(items.len(), 4);
        assert_eq!(items[0], Ok((0, HB.to_vec(), true)));
        assert_eq!(
            items[1],
            Err(StreamError::Resync {
                offset: 14,
                dropped: 5,
                cause: FrameError::BadStart { found: b'A' }
            })
        );
        assert_eq!(
            items[2],
            Err(StreamError::Resync {
                offset: 19,
                dropped: 13,
                cause: FrameError::BadEnd { found: 0x99 }
            })
        );
        assert_eq!(items[3], Ok((32, HB.to_vec(), true)));
        assert_eq!(fb.stats().resync_bytes, 18);
    }

    #[test]
    fn oversize_length_is_dropped_at_once() {
        let mut fb = FrameBuffer::new(StreamConfig {
            max_frame_len: 100,
            ..StreamConfig::default()
        });
        fb.push(&[0xA5, 0xFF, 0x00]);
        assert_eq!(
            drain(&mut fb),
            vec![Err(StreamError::Resync {
                offset: 0,
                dropped: 3,
                cause: FrameError::Oversize { len: 268, max: 100 }
            })]
        );
    }

    #[test]
    fn finish_turns_a_false_start_into_garbage_and_finds_the_frame_behind_it() {
        let mut fb = FrameBuffer::default();
        // A5 claiming 0x40 payload bytes, then a real heartbeat: not enough bytes for the claim
        fb.push(&[&[0xA5, 0x40, 0x00][..], HB].concat());
        assert!(drain(&mut fb).is_empty());
        fb.finish();
        let items = drain(&mut fb);
        assert_eq!(
            items[0],
            Err(StreamError::Resync {
                offset: 0,
                dropped: 3,
                cause: FrameError::LengthMismatch {
                    expected: 77,
                    found: 17
                }
            })
        );
        assert_eq!(items[1], Ok((3, HB.to_vec(), true)));
        assert_eq!(items.len(), 2);
    }

    #[test]
    fn checksum_policy() {
        let mut bad = HB.to_vec();
        bad[12] = 0x00;
        let mut lenient = FrameBuffer::default();
        lenient.push(&[&bad[..], HB].concat());
        assert_eq!(
            drain(&mut lenient),
            vec![Ok((0, bad.clone(), false)), Ok((14, HB.to_vec(), true))]
        );
        assert_eq!(lenient.stats().checksum_failures, 1);

        let mut strict = FrameBuffer::new(StreamConfig {
            checksum: ChecksumPolicy::Strict,
            ..StreamConfig::default()
        });
        strict.push(&[&bad[..], HB].concat());
        assert_eq!(
            drain(&mut strict),
            vec![
                Err(StreamError::Rejected {
                    offset: 0,
                    len: 14,
                    cause: FrameError::ChecksumMismatch {
                        expected: 0x5D,
                        found: 0x00
                    }
                }),
                Ok((14, HB.to_vec(), true)),
            ]
        );
        assert_eq!(
            strict.stats(),
            StreamStats {
                frames: 1,
                resync_bytes: 0,
                checksum_failures: 1
            }
        );
    }

    #[test]
    fn an_idle_buffer_gives_its_allocation_back() {
        let mut fb = FrameBuffer::default();
        fb.push(&[HB, HB].concat());
        assert_eq!(drain(&mut fb).len(), 2);
        assert_eq!(fb.buf.capacity(), 0, "no frame pending: nothing allocated");
        assert_eq!(fb.pending(), &[] as &[u8]);

        // A large read ending in a partial frame keeps only that partial frame.
        let mut big = vec![HB; 100].concat();
        big.extend_from_slice(&HB[..5]);
        fb.push(&big);
        assert_eq!(drain(&mut fb).len(), 100);
        assert_eq!(fb.pending(), &HB[..5]);
        assert!(fb.buf.capacity() <= MAX_SPARE, "{}", fb.buf.capacity());
        fb.push(&HB[5..]);
        assert_eq!(drain(&mut fb), vec![Ok((1428, HB.to_vec(), true))]);
        assert_eq!(fb.buf.capacity(), 0);
    }

    #[test]
    fn owned_frame_gives_back_the_same_frame() {
        let mut fb = FrameBuffer::default();
        fb.push(HB);
        let item = fb.next_frame().unwrap().unwrap();
        let owned = item.to_owned_frame();
        assert_eq!(owned.frame(), item.frame);
        assert_eq!(owned.frame().payload, &[0x00]);
    }
}
