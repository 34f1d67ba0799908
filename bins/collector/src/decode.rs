//! The `decode` subcommand: Solarman V5 frames given as hex, printed as one JSON object per line.
//!
//! Input: hex digits, white space ignored; one frame per line or one continuous capture with
//! several frames and garbage. Every frame found prints its header fields, its kind and what
//! its payload decodes to; every undecodable region prints `{"offset", "length", "error"}`.
//! Offsets are byte offsets in the decoded input. With a reply time, each frame the logger
//! expects an answer to also gets the `reply_hex` the collector would send.

use std::collections::HashMap;
use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use deyehard_core::LoggerSerial;
use deyehard_solarman::payload::DecodedData;
use deyehard_solarman::{
    FrameBuffer, FrameContent, StreamConfig, StreamError, StreamFrame, reply_to,
};
use serde_json::{Map, Value, json};

/// Decodes the hex `input` and writes one JSON line per frame or undecodable region to `out`.
/// `reply_at` (unix seconds) adds the reply each logger-originated frame would get, with
/// `reply_last_field` as the reply's last u32.
pub fn run(
    input: &str,
    reply_at: Option<u32>,
    reply_last_field: u32,
    out: &mut impl Write,
) -> io::Result<()> {
    let bytes = match hex_bytes(input) {
        Ok(bytes) => bytes,
        Err((offset, error)) => {
            return write_line(out, &json!({ "offset": offset, "error": error }));
        }
    };
    let mut buffer = FrameBuffer::new(StreamConfig::default());
    buffer.push(&bytes);
    buffer.finish();
    let received_at = reply_at
        .and_then(|t| DateTime::from_timestamp(i64::from(t), 0))
        .unwrap_or(DateTime::UNIX_EPOCH);
    let mut offsets: HashMap<LoggerSerial, u32> = HashMap::new();
    while let Some(item) = buffer.next_frame() {
        let line = match item {
            Ok(frame) => frame_json(
                &frame,
                &mut offsets,
                received_at,
                reply_at,
                reply_last_field,
            ),
            Err(error) => error_json(&error),
        };
        write_line(out, &line)?;
    }
    Ok(())
}

fn write_line(out: &mut impl Write, value: &Value) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

/// Hex digits to bytes, skipping white space; `Err((byte offset, message))` on anything else.
fn hex_bytes(input: &str) -> Result<Vec<u8>, (usize, String)> {
    let mut bytes = Vec::with_capacity(input.len() / 2);
    let mut high: Option<u8> = None;
    for (line_no, line) in input.lines().enumerate() {
        for (column, c) in line.chars().enumerate() {
            if c.is_whitespace() {
                continue;
            }
            let Some(nibble) = c.to_digit(16).and_then(|d| u8::try_from(d).ok()) else {
                let at = format!("line {}, column {}", line_no + 1, column + 1);
                return Err((
                    bytes.len(),
                    format!("invalid character {c:?} at {at}: expected hex digits"),
                ));
            };
            match high.take() {
                Some(h) => bytes.push(h << 4 | nibble),
                None => high = Some(nibble),
            }
        }
    }
    match high {
        Some(_) => Err((
            bytes.len(),
            "odd number of hex digits: the last byte is incomplete".to_owned(),
        )),
        None => Ok(bytes),
    }
}

fn error_json(error: &StreamError) -> Value {
    let length = match error {
        StreamError::Resync { dropped, .. } => *dropped,
        StreamError::Rejected { len, .. } => *len,
    };
    let cause = match error {
        StreamError::Resync { cause, .. } | StreamError::Rejected { cause, .. } => {
            cause.to_string()
        }
    };
    json!({ "offset": error.offset(), "length": length, "error": cause })
}

fn frame_json(
    item: &StreamFrame<'_>,
    offsets: &mut HashMap<LoggerSerial, u32>,
    received_at: DateTime<Utc>,
    reply_at: Option<u32>,
    reply_last_field: u32,
) -> Value {
    let frame = &item.frame;
    let mut obj = Map::new();
    obj.insert("offset".into(), json!(item.offset));
    obj.insert("length".into(), json!(item.raw.len()));
    obj.insert("control".into(), json!(frame.control.to_string()));
    obj.insert("seq_a".into(), json!(frame.seq_a));
    obj.insert("seq_b".into(), json!(frame.seq_b));
    obj.insert("logger_serial".into(), json!(frame.serial.get()));
    obj.insert("checksum_ok".into(), json!(item.checksum_ok));
    obj.insert("kind".into(), json!(frame.control.kind().as_str()));
    let content = FrameContent::decode(frame, offsets.get(&frame.serial).copied(), received_at);
    if let Some(offset) = content.clock_offset() {
        offsets.insert(frame.serial, offset);
    }
    content_fields(&content, &mut obj);
    if let Some(reply) = reply_at.and_then(|t| reply_to(frame, t, reply_last_field)) {
        obj.insert("reply_hex".into(), json!(hex::encode(reply.to_bytes())));
    }
    Value::Object(obj)
}

fn content_fields(content: &FrameContent, obj: &mut Map<String, Value>) {
    match content {
        FrameContent::Handshake(info) => {
            if let Ok(Value::Object(fields)) = serde_json::to_value(info) {
                obj.extend(fields);
            }
        }
        FrameContent::Data {
            header,
            timestamp,
            decoded,
        } => {
            obj.insert("frame_type".into(), json!(header.frame_type));
            obj.insert(
                "sensor_type".into(),
                json!(format!("0x{:04X}", header.sensor_type)),
            );
            obj.insert(
                "total_working_time_s".into(),
                json!(header.total_working_time_s),
            );
            obj.insert("power_on_time_s".into(), json!(header.power_on_time_s));
            obj.insert("offset_time_s".into(), json!(header.offset_time_s));
            obj.insert("record_counter".into(), json!(header.record_counter));
            let time = timestamp.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
            obj.insert("timestamp".into(), json!(time));
            if let Some(decoded) = decoded {
                data_fields(decoded, obj);
            }
        }
        FrameContent::Undecodable { error } => {
            obj.insert("error".into(), json!(error));
        }
        _ => {}
    }
}

fn data_fields(decoded: &DecodedData, obj: &mut Map<String, Value>) {
    let r = &decoded.reading;
    let dc: Vec<Value> =
        r.dc.iter()
            .map(|c| {
                json!({
                    "channel": c.channel,
                    "voltage_v": c.voltage_v,
                    "current_a": c.current_a,
                    "power_w": c.power_w,
                    "yield_day_wh": c.yield_day_wh,
                    "yield_total_wh": c.yield_total_wh,
                })
            })
            .collect();
    let fields = json!({
        "inverter_serial": decoded.inverter_serial.as_str(),
        "power_ac_w": r.power_ac_w,
        "voltage_ac_v": r.voltage_ac_v,
        "current_ac_a": r.current_ac_a,
        "frequency_hz": r.frequency_hz,
        "temperature_c": r.temperature_c,
        "yield_day_wh": r.yield_day_wh,
        "yield_total_wh": r.yield_total_wh,
        "power_dc_w": r.power_dc_w,
        "producing": r.producing,
        "rated_power_w": decoded.device_info.rated_power_w,
        "mppt_count": decoded.device_info.mppt_count,
        "firmware_version": decoded.device_info.firmware_version,
        "dc": dc,
    });
    if let Value::Object(fields) = fields {
        obj.extend(fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAMES: &str = include_str!("../../../deyehard-solarman/tests/fixtures/frames.json");

    fn fixture(name: &str) -> String {
        let all: Vec<Value> = serde_json::from_str(FRAMES).unwrap();
        all.iter().find(|f| f["name"] == name).unwrap()["hex"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn lines(input: &str, reply_at: Option<u32>, last: u32) -> Vec<Value> {
        let mut out = Vec::new();
        run(input, reply_at, last, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn deye_data_frame_prints_the_reading() {
        let out = lines(&fixture("deye-m80g3-data-hist"), None, 0);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!(f["offset"], 0);
        assert_eq!(f["length"], 343);
        assert_eq!(f["control"], "0x4210");
        assert_eq!(
            (f["seq_a"].clone(), f["seq_b"].clone()),
            (json!(52), json!(53))
        );
        assert_eq!(f["logger_serial"], 3_939_932_716u32);
        assert_eq!(f["checksum_ok"], true);
        assert_eq!(f["kind"], "data");
        assert_eq!(f["frame_type"], 0x81);
        assert_eq!(f["sensor_type"], "0x5408");
        assert_eq!(
            f["timestamp"],
            Value::Null,
            "buffered frame, no offset known"
        );
        assert_eq!(f["inverter_serial"], "2305107146");
        assert_eq!(f["power_ac_w"], 185.0);
        assert_eq!(f["voltage_ac_v"], 240.0);
        assert_eq!(f["current_ac_a"], 0.7);
        assert_eq!(f["frequency_hz"], 50.0);
        assert_eq!(f["temperature_c"], 26.5);
        assert_eq!(f["yield_day_wh"], 3400.0);
        assert_eq!(f["yield_total_wh"], 180_000.0);
        assert_eq!(f["dc"].as_array().unwrap().len(), 2);
        assert_eq!(
            f["dc"][1],
            json!({"channel": 2, "voltage_v": 32.5, "current_a": 2.9, "power_w": 94.25,
                   "yield_day_wh": 1600.0, "yield_total_wh": 89_300.0})
        );
        assert!(f.get("reply_hex").is_none());
    }

    #[test]
    fn heartbeat_gets_the_golden_reply_and_server_replies_get_none() {
        let input = format!("{}\n{}\n", fixture("hb-81"), fixture("hb-81-rsp-correct"));
        let out = lines(&input, Some(1_734_683_646), 0);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["kind"], "heartbeat");
        assert_eq!(out[0]["reply_hex"], fixture("hb-81-rsp-correct"));
        assert_eq!(
            (out[1]["kind"].clone(), out[1]["offset"].clone()),
            (json!("server_reply"), json!(14))
        );
        assert!(out[1].get("reply_hex").is_none());
    }

    #[test]
    fn handshake_prints_its_fields() {
        let out = lines(&fixture("ginlong-mw08-handshake"), None, 0);
        assert_eq!(out[0]["kind"], "handshake");
        assert_eq!(out[0]["firmware"], "MW_08_0501_1.58");
        assert_eq!(out[0]["heartbeat_interval_s"], 120);
        assert_eq!(out[0]["ip"], "192.168.1.210");
    }

    #[test]
    fn garbage_and_a_truncated_tail_print_error_objects_with_offsets() {
        // heartbeat, 2 garbage bytes, the Ethernet stick's unknown code, then a truncated handshake
        let hb = fixture("hb-gbb");
        let input = format!(
            "{hb} 00 ff\n{}\n{}",
            fixture("eth-data-1"),
            fixture("lsw5-handshake-2-truncated")
        );
        let out = lines(&input, Some(1_750_496_427), 120);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0]["reply_hex"], fixture("hb-gbb-rsp"));
        assert_eq!(out[1]["offset"], 14);
        assert_eq!(out[1]["length"], 2);
        assert!(out[1]["error"].as_str().unwrap().contains("bad start byte"));
        assert_eq!(
            (out[2]["offset"].clone(), out[2]["kind"].clone()),
            (json!(16), json!("unknown"))
        );
        assert_eq!(out[2]["control"], "0x0210");
        assert!(out[2].get("reply_hex").is_none());
        assert_eq!(out[3]["offset"], 16 + 132);
        assert!(
            out[3]["error"]
                .as_str()
                .unwrap()
                .contains("length mismatch")
        );
    }

    #[test]
    fn non_hex_input_prints_one_error_line_and_stops() {
        let input = format!("{}\nA5 zz", fixture("hb-gbb"));
        let out = lines(&input, None, 0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["offset"], 15);
        assert!(
            out[0]["error"]
                .as_str()
                .unwrap()
                .contains("line 2, column 4")
        );
        let odd = lines("a5 0", None, 0);
        assert_eq!(odd.len(), 1);
        assert_eq!(odd[0]["offset"], 1);
    }

    #[test]
    fn empty_input_prints_nothing() {
        assert!(lines(" \n\t", None, 0).is_empty());
    }
}
