//! Codec throughput: decode + build the reply for the Deye data frame (target ≥ 2,000,000
//! frames/s), and the stream decoder over a buffer holding many frames.

// Setup failures should abort a benchmark loudly.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use chrono::DateTime;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use deyehard_solarman::{FrameBuffer, FrameContent, parse, reply_to};

const FRAMES: &str = include_str!("../tests/fixtures/frames.json");

fn fixture(name: &str) -> Vec<u8> {
    let all: Vec<serde_json::Value> = serde_json::from_str(FRAMES).expect("fixture JSON");
    let hex = all
        .iter()
        .find(|f| f["name"] == name)
        .and_then(|f| f["hex"].as_str())
        .expect("fixture");
    hex::decode(hex).expect("fixture hex")
}

fn decode_and_reply(c: &mut Criterion) {
    let data = fixture("deye-m80g3-data-hist");
    let received = DateTime::from_timestamp(1_712_700_000, 0).expect("time");
    let mut group = c.benchmark_group("deye_data_frame");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse+reply", |b| {
        b.iter(|| {
            let frame = parse(black_box(&data)).expect("frame");
            reply_to(&frame, 1_712_700_000, 0).map(|r| r.to_bytes())
        })
    });
    group.bench_function("parse+decode+reply", |b| {
        b.iter(|| {
            let frame = parse(black_box(&data)).expect("frame");
            let content = FrameContent::decode(&frame, Some(1_705_840_598), received);
            (
                content,
                reply_to(&frame, 1_712_700_000, 0).map(|r| r.to_bytes()),
            )
        })
    });
    group.finish();
}

fn stream(c: &mut Criterion) {
    let data = fixture("deye-m80g3-data-hist");
    let heartbeat = fixture("hb-81");
    const PAIRS: usize = 500;
    let buffer: Vec<u8> = (0..PAIRS)
        .flat_map(|_| data.iter().chain(&heartbeat).copied())
        .collect();
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Elements(
        u64::try_from(PAIRS * 2).expect("count"),
    ));
    group.bench_function("frame_buffer_1000_frames_4k_reads", |b| {
        b.iter(|| {
            let mut fb = FrameBuffer::default();
            let mut frames = 0usize;
            for chunk in black_box(&buffer).chunks(4096) {
                fb.push(chunk);
                while let Some(Ok(frame)) = fb.next_frame() {
                    frames += frame.frame.payload.len().min(1);
                }
            }
            frames
        })
    });
    group.finish();
}

criterion_group!(benches, decode_and_reply, stream);
criterion_main!(benches);
