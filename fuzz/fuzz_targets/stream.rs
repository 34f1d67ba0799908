//! Arbitrary bytes through every entry point of the codec: `check`, `parse`, the stream decoder
//! (chunk size taken from the first input byte), the payload decoders and the reply builder.
//! Nothing may panic, and after `finish` the stream decoder must have consumed everything.
#![no_main]

use chrono::DateTime;
use deyehard_solarman::{FrameBuffer, FrameContent, check, parse_lenient, reply_to};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = check(data);
    let _ = parse_lenient(data);
    let (chunk, rest) = match data.split_first() {
        Some((first, rest)) => (usize::from(*first).max(1), rest),
        None => (1, data),
    };
    let mut buffer = FrameBuffer::default();
    let mut last_offset = None;
    for piece in rest.chunks(chunk) {
        buffer.push(piece);
        while let Some(item) = buffer.next_frame() {
            let Ok(item) = item else { continue };
            let content = FrameContent::decode(&item.frame, last_offset, DateTime::UNIX_EPOCH);
            last_offset = content.clock_offset().or(last_offset);
            let _ = reply_to(&item.frame, 0, 0).map(|reply| reply.to_bytes());
        }
    }
    buffer.finish();
    while buffer.next_frame().is_some() {}
    assert_eq!(buffer.buffered(), 0);
});
