//! Property tests: nothing panics on arbitrary bytes, encode/parse round-trip, and a stream of
//! valid frames chopped anywhere and mixed with garbage gives back every frame.

use chrono::DateTime;
use deyehard_core::LoggerSerial;
use deyehard_solarman::payload::{DataHeaderInfo, DeyeMicroBody, HandshakeInfo};
use deyehard_solarman::{
    ChecksumPolicy, ControlCode, Frame, FrameBuffer, FrameContent, Session, SessionConfig,
    StreamConfig, check, parse, parse_lenient, reply_to,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct OwnedParts {
    control: u16,
    seq_a: u8,
    seq_b: u8,
    serial: u32,
    payload: Vec<u8>,
}

impl OwnedParts {
    fn frame(&self) -> Frame<'_> {
        Frame {
            control: ControlCode::from_u16(self.control),
            seq_a: self.seq_a,
            seq_b: self.seq_b,
            serial: LoggerSerial::new(self.serial),
            payload: &self.payload,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        self.frame().to_vec().unwrap()
    }
}

fn frame_parts() -> impl Strategy<Value = OwnedParts> {
    (
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..400),
    )
        .prop_map(|(control, seq_a, seq_b, serial, payload)| OwnedParts {
            control,
            seq_a,
            seq_b,
            serial,
            payload,
        })
}

/// Garbage that holds no start byte (a garbage 0xA5 may legitimately hide the frames behind it
/// until enough bytes arrive, see `FrameBuffer::finish`).
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_filter("no start byte", |b| *b != 0xA5),
        0..20,
    )
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), cuts in prop::collection::vec(1usize..64, 1..20)) {
        let _ = check(&bytes);
        let _ = parse(&bytes);
        let _ = parse_lenient(&bytes);
        let _ = HandshakeInfo::decode(&bytes);
        let _ = DataHeaderInfo::decode(&bytes);
        let _ = DeyeMicroBody::decode(&bytes);
        for policy in [ChecksumPolicy::Lenient, ChecksumPolicy::Strict] {
            let mut fb = FrameBuffer::new(StreamConfig { checksum: policy, max_frame_len: 300 });
            let mut rest = &bytes[..];
            for cut in cuts.iter().cycle() {
                if rest.is_empty() { break; }
                let (chunk, tail) = rest.split_at((*cut).min(rest.len()));
                rest = tail;
                fb.push(chunk);
                while fb.next_frame().is_some() {}
            }
            fb.finish();
            while fb.next_frame().is_some() {}
            prop_assert_eq!(fb.buffered(), 0, "after finish everything is consumed");
        }
    }

    #[test]
    fn payload_decoders_never_panic_inside_a_valid_frame(parts in frame_parts(), offset in any::<Option<u32>>()) {
        let mut session = Session::new(LoggerSerial::new(parts.serial), SessionConfig::default());
        for control in [0x4110u16, 0x4210, 0x4310, 0x4710, 0x4810, 0x1510, parts.control] {
            let parts = OwnedParts { control, ..parts.clone() };
            let _ = FrameContent::decode(&parts.frame(), offset, DateTime::UNIX_EPOCH);
            let _ = reply_to(&parts.frame(), 0, 0);
            let _ = session.on_frame(&parts.frame(), DateTime::UNIX_EPOCH);
        }
    }

    #[test]
    fn encode_then_parse_round_trips(parts in frame_parts()) {
        let bytes = parts.bytes();
        prop_assert_eq!(bytes.len(), parts.payload.len() + 13);
        prop_assert_eq!(check(&bytes), Ok(bytes.len()));
        prop_assert_eq!(parse(&bytes), Ok(parts.frame()));
    }

    #[test]
    fn chopped_stream_with_garbage_yields_every_frame(
        items in prop::collection::vec((frame_parts(), garbage()), 1..12),
        cuts in prop::collection::vec(1usize..50, 1..30),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (parts, junk) in &items {
            stream.extend_from_slice(junk);
            let bytes = parts.bytes();
            expected.push((u64::try_from(stream.len()).unwrap(), bytes.clone()));
            stream.extend_from_slice(&bytes);
        }
        let mut fb = FrameBuffer::default();
        let mut seen = Vec::new();
        let mut rest = &stream[..];
        for cut in cuts.iter().cycle() {
            if rest.is_empty() { break; }
            let (chunk, tail) = rest.split_at((*cut).min(rest.len()));
            rest = tail;
            fb.push(chunk);
            while let Some(item) = fb.next_frame() {
                if let Ok(frame) = item {
                    prop_assert!(frame.checksum_ok);
                    seen.push((frame.offset, frame.raw.to_vec()));
                }
            }
        }
        let dropped: usize = items.iter().map(|(_, junk)| junk.len()).sum();
        prop_assert_eq!(seen, expected);
        prop_assert_eq!(fb.stats().resync_bytes, u64::try_from(dropped).unwrap());
    }
}
