//! `tokio_util::codec` adapter (feature `tokio-codec`): the sans-io [`FrameBuffer`] behind
//! `Decoder`/`Encoder`, for `FramedRead` / `FramedWrite`.
//!
//! Stream problems (garbage skipped, frames rejected) are items, not errors, so a `FramedRead`
//! keeps going after them; only I/O errors end the stream.

use std::io;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::frame::Frame;
use crate::stream::{FrameBuffer, OwnedFrame, StreamConfig, StreamError};

/// V5 codec.
#[derive(Debug, Default)]
pub struct V5Codec {
    buffer: FrameBuffer,
}

impl V5Codec {
    /// A codec with these stream settings.
    pub fn new(config: StreamConfig) -> Self {
        Self {
            buffer: FrameBuffer::new(config),
        }
    }

    /// The underlying stream decoder (counters, bytes buffered).
    pub fn buffer(&self) -> &FrameBuffer {
        &self.buffer
    }

    /// Feeds bytes read before the codec took over (e.g. while sniffing the protocol).
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.push(bytes);
    }
}

impl Decoder for V5Codec {
    type Item = Result<OwnedFrame, StreamError>;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, io::Error> {
        if !src.is_empty() {
            self.buffer.push(&src.split());
        }
        Ok(self
            .buffer
            .next_frame()
            .map(|item| item.map(|f| f.to_owned_frame())))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, io::Error> {
        self.buffer.finish();
        self.decode(src)
    }
}

impl Encoder<Frame<'_>> for V5Codec {
    type Error = io::Error;

    fn encode(&mut self, frame: Frame<'_>, dst: &mut BytesMut) -> Result<(), io::Error> {
        let at = dst.len();
        dst.resize(at + frame.encoded_len(), 0);
        frame
            .encode_into(&mut dst[at..])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::parse;

    const HB: [u8; 14] = [
        0xA5, 0x01, 0x00, 0x10, 0x47, 0x02, 0xD7, 0xCB, 0xEA, 0x91, 0xE6, 0x00, 0x5D, 0x15,
    ];

    #[test]
    fn decodes_frames_and_reports_garbage_as_items() {
        let mut codec = V5Codec::default();
        let mut src = BytesMut::from(&[&HB[..], b"xx", &HB[..7]].concat()[..]);
        let first = codec.decode(&mut src).unwrap().unwrap().unwrap();
        assert_eq!(first.raw, HB);
        assert!(matches!(
            codec.decode(&mut src).unwrap(),
            Some(Err(StreamError::Resync { dropped: 2, .. }))
        ));
        assert!(codec.decode(&mut src).unwrap().is_none());
        src.extend_from_slice(&HB[7..]);
        assert_eq!(codec.decode(&mut src).unwrap().unwrap().unwrap().offset, 16);
        assert!(codec.decode_eof(&mut src).unwrap().is_none());
    }

    #[test]
    fn encodes_a_frame() {
        let mut codec = V5Codec::default();
        let mut dst = BytesMut::from(&b"x"[..]);
        codec.encode(parse(&HB).unwrap(), &mut dst).unwrap();
        assert_eq!(&dst[1..], &HB);
    }
}
