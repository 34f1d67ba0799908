//! Every frame of `tests/fixtures/frames.json` (real captures, see the `source` of each) decoded
//! and checked against every expected value given there.

use chrono::DateTime;
use deyehard_core::Source;
use deyehard_solarman::payload::{DataHeaderInfo, DeyeMicroBody, HandshakeInfo};
use deyehard_solarman::reply::{command_frame, command_reply_rtu};
use deyehard_solarman::{
    CheckError, ControlCode, FrameBuffer, FrameContent, FrameError, StreamError, check, parse,
    reply_to,
};
use serde_json::Value;

const FRAMES: &str = include_str!("../fixtures/frames.json");

pub struct Fixture {
    name: String,
    kind: String,
    pub bytes: Vec<u8>,
    expect: Value,
}

fn fixtures() -> Vec<Fixture> {
    let all: Vec<Value> = serde_json::from_str(FRAMES).unwrap();
    all.into_iter()
        .map(|f| Fixture {
            name: f["name"].as_str().unwrap().to_owned(),
            kind: f["kind"].as_str().unwrap().to_owned(),
            bytes: hex::decode(f["hex"].as_str().unwrap()).unwrap(),
            expect: f.get("expect").cloned().unwrap_or(Value::Null),
        })
        .collect()
}

pub fn fixture(name: &str) -> Fixture {
    fixtures().into_iter().find(|f| f.name == name).unwrap()
}

fn close(actual: f64, expected: &Value, what: &str) {
    let expected = expected
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: no number in fixture"));
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: {actual} != {expected}"
    );
}

fn kwh_as_wh(actual_wh: f64, expected_kwh: &Value, what: &str) {
    close(actual_wh / 1000.0, expected_kwh, what);
}

fn control_of(expect: &Value) -> u16 {
    u16::from_str_radix(
        expect["control"].as_str().unwrap().trim_start_matches("0x"),
        16,
    )
    .unwrap()
}

#[test]
fn every_positive_fixture_frames_and_matches_its_header() {
    for f in fixtures().iter().filter(|f| f.kind != "negative") {
        assert_eq!(check(&f.bytes), Ok(f.bytes.len()), "{}", f.name);
        let frame = parse(&f.bytes).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        assert_eq!(frame.control.to_u16(), control_of(&f.expect), "{}", f.name);
        if let Some(serial) = f.expect.get("logger_serial") {
            assert_eq!(
                u64::from(frame.serial.get()),
                serial.as_u64().unwrap(),
                "{}",
                f.name
            );
        }
        if let Some(seq_a) = f.expect.get("seq_a") {
            assert_eq!(
                u64::from(frame.seq_a),
                seq_a.as_u64().unwrap(),
                "{}",
                f.name
            );
            assert_eq!(
                u64::from(frame.seq_b),
                f.expect["seq_b"].as_u64().unwrap(),
                "{}",
                f.name
            );
        }
        if let Some(frame_type) = f.expect.get("frame_type") {
            assert_eq!(
                u64::from(frame.payload[0]),
                frame_type.as_u64().unwrap(),
                "{}",
                f.name
            );
        }
        let mut out = Vec::new();
        frame.encode(&mut out).unwrap();
        assert_eq!(
            out, f.bytes,
            "{}: encode must give back the captured bytes",
            f.name
        );
    }
}

#[test]
fn deye_micro_data_frame_decodes_every_expected_value() {
    let f = fixture("deye-m80g3-data-hist");
    let e = &f.expect;
    let frame = parse(&f.bytes).unwrap();
    let header = DataHeaderInfo::decode(frame.payload).unwrap();
    assert_eq!(
        format!("0x{:04X}", header.sensor_type),
        e["sensor_type"].as_str().unwrap()
    );
    assert_eq!(
        u64::from(header.total_working_time_s),
        e["total_working_time_s"].as_u64().unwrap()
    );
    assert_eq!(
        u64::from(header.power_on_time_s),
        e["power_on_time_s"].as_u64().unwrap()
    );
    assert_eq!(
        u64::from(header.offset_time_s),
        e["offset_time_s"].as_u64().unwrap()
    );
    assert_eq!(header.record_counter, Some(1717));

    let body = DeyeMicroBody::decode(frame.payload).unwrap();
    assert_eq!(
        body.inverter_serial.as_str(),
        e["inverter_serial"].as_str().unwrap()
    );
    close(body.rated_power_w, &e["rated_power_w"], "rated power");
    assert_eq!(
        u64::from(body.mppt_count),
        e["mppt_count"].as_u64().unwrap()
    );
    let expected_dc = e["dc"].as_array().unwrap();
    assert_eq!(expected_dc.len(), body.pv.len());
    for (pv, exp) in body.pv.iter().zip(expected_dc) {
        close(pv.voltage_v, &exp["voltage_v"], "PV voltage");
        close(pv.current_a, &exp["current_a"], "PV current");
        kwh_as_wh(pv.yield_day_wh, &exp["yield_day_kwh"], "PV energy today");
        kwh_as_wh(
            pv.yield_total_wh,
            &exp["yield_total_kwh"],
            "PV energy total",
        );
    }

    // buffered, offset 0, no earlier offset known: timestamp unknown, reading at reception time
    let received = DateTime::from_timestamp(1_712_700_000, 0).unwrap();
    let FrameContent::Data {
        timestamp,
        decoded: Some(decoded),
        ..
    } = FrameContent::decode(&frame, None, received)
    else {
        panic!("not decoded as Deye micro data");
    };
    assert_eq!(timestamp, None);
    let r = &decoded.reading;
    assert_eq!((r.time, r.source), (received, Source::SolarmanBuffered));
    assert!(r.reachable && r.producing);
    close(r.power_ac_w.unwrap(), &e["power_ac_w"], "AC power");
    close(r.voltage_ac_v.unwrap(), &e["voltage_ac_v"], "AC voltage");
    close(r.current_ac_a.unwrap(), &e["current_ac_a"], "AC current");
    close(r.frequency_hz.unwrap(), &e["frequency_hz"], "frequency");
    close(r.temperature_c.unwrap(), &e["temperature_c"], "temperature");
    assert_eq!(r.yield_day_wh, Some(3400.0), "3.40 kWh is exactly 3400 Wh");
    kwh_as_wh(
        r.yield_total_wh.unwrap(),
        &e["yield_total_kwh"],
        "AC energy total",
    );
    assert_eq!(r.dc.len(), 2, "only the MPPT count's channels");
    for (ch, exp) in r.dc.iter().zip(expected_dc) {
        assert_eq!(u64::from(ch.channel), exp["channel"].as_u64().unwrap());
        close(ch.voltage_v.unwrap(), &exp["voltage_v"], "DC voltage");
        close(ch.current_a.unwrap(), &exp["current_a"], "DC current");
        let v = exp["voltage_v"].as_f64().unwrap();
        let i = exp["current_a"].as_f64().unwrap();
        assert!(
            (ch.power_w.unwrap() - v * i).abs() < 1e-9,
            "DC power is V × I"
        );
        kwh_as_wh(
            ch.yield_day_wh.unwrap(),
            &exp["yield_day_kwh"],
            "DC energy today",
        );
        kwh_as_wh(
            ch.yield_total_wh.unwrap(),
            &exp["yield_total_kwh"],
            "DC energy total",
        );
    }
    assert_eq!(decoded.inverter_serial.as_str(), "2305107146");
    assert_eq!(decoded.device_info.mppt_count, Some(2));
    assert_eq!(decoded.device_info.rated_power_w, Some(800.0));
    assert_eq!(
        decoded.device_info.firmware_version.as_deref(),
        Some("ac=V1.2.1.8 dc=V0.1.1.7 protocol=V0.2.0.1")
    );

    // with an offset learnt from an earlier live frame the buffered frame gets a device time
    let FrameContent::Data {
        timestamp: Some(t),
        decoded: Some(d),
        ..
    } = FrameContent::decode(&frame, Some(1_705_840_598), received)
    else {
        panic!("no timestamp");
    };
    assert_eq!(t.timestamp(), 6_838_696 + 1_705_840_598);
    assert_eq!(d.reading.time, t);
}

#[test]
fn ginlong_handshake_decodes() {
    let f = fixture("ginlong-mw08-handshake");
    let frame = parse(&f.bytes).unwrap();
    let info = HandshakeInfo::decode(frame.payload).unwrap();
    assert_eq!(
        u64::from(info.frame_type),
        f.expect["frame_type"].as_u64().unwrap()
    );
    assert_eq!(
        (
            info.total_working_time_s,
            info.power_on_time_s,
            info.offset_time_s
        ),
        (1_327_481, 680, 0)
    );
    assert_eq!(
        (
            info.upload_interval_min,
            info.acquisition_interval_s,
            info.heartbeat_interval_s
        ),
        (5, 60, 120)
    );
    assert_eq!(info.signal_pct, 100);
    assert_eq!(info.firmware.as_deref(), Some("MW_08_0501_1.58"));
    assert_eq!(info.mac.as_deref(), Some("98:d8:63:85:98:08"));
    assert_eq!(info.ip.as_deref(), Some("192.168.1.210"));
    assert_eq!(info.sensor_type, Some(0x0501));
    assert_eq!(
        (info.extended_version, info.ssid),
        (None, None),
        "86-byte payload ends before them"
    );
}

#[test]
fn golden_replies_are_reproduced_byte_for_byte() {
    for (request, golden) in [("hb-gbb", "hb-gbb-rsp"), ("hb-81", "hb-81-rsp-correct")] {
        let request = fixture(request);
        let golden = fixture(golden);
        let frame = parse(&request.bytes).unwrap();
        let time = u32::try_from(golden.expect["unix_time"].as_u64().unwrap()).unwrap();
        let last = u32::try_from(golden.expect["last_field"].as_u64().unwrap()).unwrap();
        let reply = reply_to(&frame, time, last).unwrap();
        assert_eq!(reply.to_bytes().to_vec(), golden.bytes, "{}", golden.name);
        assert_eq!(reply.frame().control.to_u16(), control_of(&golden.expect));
    }
}

#[test]
fn replies_and_server_frames_are_not_answered() {
    for name in [
        "hb-gbb-rsp",
        "hb-81-rsp-correct",
        "req-xhanti-1",
        "rsp-xhanti-1",
        "eth-data-1",
    ] {
        let f = fixture(name);
        let frame = parse(&f.bytes).unwrap();
        assert!(!frame.control.is_logger_originated(), "{name}");
        assert_eq!(reply_to(&frame, 0, 0), None, "{name}");
    }
}

#[test]
fn ethernet_stick_code_is_framed_and_kept_as_unknown() {
    let f = fixture("eth-data-1");
    let frame = parse(&f.bytes).unwrap();
    assert_eq!(frame.control, ControlCode::Unknown(0x0210));
    assert_eq!(
        FrameContent::decode(&frame, None, DateTime::UNIX_EPOCH),
        FrameContent::Unknown
    );
}

#[test]
fn client_mode_command_and_reply() {
    let req = fixture("req-xhanti-1");
    let frame = parse(&req.bytes).unwrap();
    let rtu = &frame.payload[15..];
    assert_eq!(
        command_frame(frame.serial, frame.seq_a, frame.seq_b, rtu).unwrap(),
        req.bytes
    );

    let rsp = fixture("rsp-xhanti-1");
    let frame = parse(&rsp.bytes).unwrap();
    assert_eq!(frame.control, ControlCode::CommandReply);
    assert_eq!(frame.seq_a, 0x97, "the logger echoes the command's seq A");
    assert_eq!(
        command_reply_rtu(frame.payload),
        Some(&[0x01, 0x03, 0x02, 0x01, 0x0A, 0x39, 0xD3][..])
    );
}

#[test]
fn truncated_handshake_is_never_a_frame() {
    let f = fixture("lsw5-handshake-2-truncated");
    assert_eq!(check(&f.bytes), Err(CheckError::Incomplete { needed: 4 }));
    assert_eq!(
        parse(&f.bytes),
        Err(FrameError::LengthMismatch {
            expected: 143,
            found: 139
        })
    );
    let mut fb = FrameBuffer::default();
    fb.push(&f.bytes);
    assert!(fb.next_frame().is_none(), "fed alone it is incomplete");
    fb.finish();
    assert!(matches!(
        fb.next_frame(),
        Some(Err(StreamError::Resync {
            offset: 0,
            cause: FrameError::LengthMismatch {
                expected: 143,
                found: 139
            },
            ..
        }))
    ));
}

#[test]
fn all_fixtures_glued_together_come_out_of_the_stream_in_order() {
    let all = fixtures();
    let stream: Vec<u8> = all
        .iter()
        .filter(|f| f.kind != "negative")
        .flat_map(|f| f.bytes.clone())
        .collect();
    let mut fb = FrameBuffer::default();
    let mut seen = Vec::new();
    for chunk in stream.chunks(7) {
        fb.push(chunk);
        while let Some(item) = fb.next_frame() {
            seen.push(item.unwrap().raw.to_vec());
        }
    }
    let expected: Vec<Vec<u8>> = all
        .into_iter()
        .filter(|f| f.kind != "negative")
        .map(|f| f.bytes)
        .collect();
    assert_eq!(seen, expected);
}
