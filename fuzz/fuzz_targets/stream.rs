//! Arbitrary bytes through every entry point of the codec: `check`, `parse`, the stream decoder
//! (chunk size taken from the first input byte), the payload decoders, the reply builder and the
//! session state machine.
//! Nothing may panic, and after `finish` the stream decoder must have consumed everything.
#![no_main]

use chrono::DateTime;
use deyehard_core::LoggerSerial;
use deyehard_solarman::{
    FrameBuffer, FrameContent, Session, SessionConfig, check, parse_lenient, reply_to,
};
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
    let mut session = Session::new(LoggerSerial::new(0), SessionConfig::default());
    for piece in rest.chunks(chunk) {
        buffer.push(piece);
        while let Some(item) = buffer.next_frame() {
            let Ok(item) = item else { continue };
            let content = FrameContent::decode(&item.frame, last_offset, DateTime::UNIX_EPOCH);
            last_offset = content.clock_offset().or(last_offset);
            let _ = reply_to(&item.frame, 0, 0).map(|reply| reply.to_bytes());
            let _ = session.on_frame(&item.frame, DateTime::UNIX_EPOCH);
            let _ = session.poll(DateTime::UNIX_EPOCH);
        }
    }
    buffer.finish();
    while buffer.next_frame().is_some() {}
    assert_eq!(buffer.buffered(), 0);
});
