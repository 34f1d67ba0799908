//! Decode a captured Solarman V5 frame and print the reading — no sockets, no database.
//!
//! The bytes are a real `0x4210` data frame a Deye SUN-M80G3 micro-inverter's logger pushed
//! (posted in a public issue together with the vendor decoder's output). The sans-io codec
//! checks and parses the frame, the Deye body decoder turns it into a `deyehard_core::Reading`,
//! and the reply builder produces the acknowledgement the logger expects.
//!
//! Run it with `cargo run --example decode_solarman_frame`.

// An example is a smoke test: a failed step should stop it with its message.
#![allow(clippy::expect_used)]

use chrono::{TimeZone, Utc};
use deyehard::solarman::{ControlCode, FrameContent, check, parse, reply_to};

const DEYE_DATA_FRAME: &str = "a54a01104234352c9ad6ea810854a8596800061f0000000000000100b50600003233303531303731343604005401000008070000000000006009000000000700000000008813b90000005a0a18fc18fc18fc18fc0000000000000000000000004d011a0045011d00000000000000000056302e322e302e3156302e312e312e3756312e322e312e38000000001f4002010004000f001000000000000003320000037d0000000000000000323330353130373134362d3120202020323330353130373134362d3220202020323330353130373134362d3320202020323330353130373134362d3420202020139c002c00010000000000000abe0726141e128e003c3000000000000001000102011712180000000000000000000000000000000000ff000000000000139c002c00000000000000000049000000000001000000000abe0726141e128e7f3d000000000000000000000002fd15";

fn main() {
    let bytes = hex::decode(DEYE_DATA_FRAME).expect("the constant is valid hex");

    // Framing: how long the frame is, then a borrowing parse of exactly that slice.
    let len = check(&bytes).expect("a whole frame");
    let frame = parse(&bytes[..len]).expect("a valid frame");
    println!(
        "logger {} sent {:?} (seq {}/{}), {} payload bytes",
        frame.serial,
        frame.control,
        frame.seq_a,
        frame.seq_b,
        frame.payload.len()
    );

    // This is a buffered (0x81) frame without a clock offset: give the decoder the last offset
    // the logger announced (here: one that puts the frame on 2024-04-10).
    let offset = 1_705_840_598;
    let received = Utc.with_ymd_and_hms(2024, 4, 10, 12, 0, 0).unwrap();
    let FrameContent::Data {
        timestamp,
        decoded: Some(data),
        ..
    } = FrameContent::decode(&frame, Some(offset), received)
    else {
        panic!("a decodable Deye micro-inverter data frame");
    };
    let reading = &data.reading;
    println!("inverter {} at {:?}", data.inverter_serial, timestamp);
    println!(
        "AC {:?} W, {:?} V, {:?} A, {:?} Hz, {:?} °C, today {:?} Wh, total {:?} Wh",
        reading.power_ac_w,
        reading.voltage_ac_v,
        reading.current_ac_a,
        reading.frequency_hz,
        reading.temperature_c,
        reading.yield_day_wh,
        reading.yield_total_wh
    );
    for dc in &reading.dc {
        println!(
            "  PV{}: {:?} V × {:?} A = {:?} W, today {:?} Wh",
            dc.channel, dc.voltage_v, dc.current_a, dc.power_w, dc.yield_day_wh
        );
    }

    // The acknowledgement: code − 0x3000, seq A + 1, seq B echoed, the current UTC time.
    let reply = reply_to(&frame, 1_712_750_400, 0).expect("data frames are answered");
    println!("reply: {}", hex::encode(reply.to_bytes()));

    assert_eq!(frame.control, ControlCode::Data);
    assert_eq!(frame.serial.get(), 3_939_932_716);
    assert_eq!(data.inverter_serial.as_str(), "2305107146");
    assert_eq!(reading.power_ac_w, Some(185.0));
    assert_eq!(reading.yield_total_wh, Some(180_000.0));
    assert_eq!(reading.dc.len(), 2);
    assert_eq!(data.device_info.rated_power_w, Some(800.0));
    assert_eq!(reply.frame().control, ControlCode::DataReply);
}
