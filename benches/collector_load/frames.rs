//! The frames a simulated logger sends and the check of the replies it gets, built with the
//! codec from the captures in `deyehard-solarman/tests/fixtures/frames.json`; plus the self-check
//! of both that runs before every load run.

use std::time::{SystemTime, UNIX_EPOCH};

use deyehard::core::LoggerSerial;
use deyehard::solarman::frame::{Frame, FrameError, parse};
use deyehard::solarman::payload::{BODY_OFFSET, FRAME_TYPE_LIVE, HandshakeInfo};
use deyehard::solarman::{ControlCode, FrameContent, reply_to};
use tokio::time::Instant;

/// Real frames captured from loggers (shared with the codec's tests).
const FIXTURES: &str = include_str!("../../deyehard-solarman/tests/fixtures/frames.json");
/// Fixture whose payload is the data-frame template (Deye SUN-M80G3, 330-byte payload).
const DATA_FIXTURE: &str = "deye-m80g3-data-hist";
/// Fixture whose payload is the handshake template (MW_08 firmware, 86-byte payload).
const HANDSHAKE_FIXTURE: &str = "ginlong-mw08-handshake";
/// A heartbeat payload is the one frame-type byte `0x00` (§3.5).
const HEARTBEAT_PAYLOAD: [u8; 1] = [0x00];

// Payload offsets patched in the templates: handshake §3.2, data header §3.3, Deye body §3.3.1.
const HS_TOTAL_WORKING: usize = 1;
const HS_POWER_ON: usize = 5;
const HS_HEARTBEAT_INTERVAL: usize = 15;
const HS_MAC: usize = 59;
const DATA_TOTAL_WORKING: usize = 3;
const DATA_POWER_ON: usize = 7;
const DATA_OFFSET_TIME: usize = 11;
const DATA_RECORD_COUNTER: usize = 17;
const DATA_AC_POWER: usize = 59;
const DATA_PV_MODULE_IDS: usize = 159;
const PV_MODULE_ID_LEN: usize = 16;
const PV_MODULES: usize = 4;
/// Inverter serials are 10 ASCII digits (§3.3.1).
const INVERTER_SERIAL_LEN: usize = 10;
/// Bytes the data template needs for every patched field.
const DATA_MIN_LEN: usize = DATA_PV_MODULE_IDS + PV_MODULES * PV_MODULE_ID_LEN;
/// Bytes the handshake template needs for every patched field.
const HANDSHAKE_MIN_LEN: usize = HS_MAC + 6;

/// Seconds a logger has been out of the factory at the start of a run (plus a per-logger spread).
const TOTAL_WORKING_BASE: u32 = 6_000_000;
/// Seconds a logger has been powered on at the start of a run.
const POWER_ON_BASE: u32 = 120;
/// How far the time in a reply may be from the harness clock, seconds.
const CLOCK_TOLERANCE_S: u32 = 30;

/// Seconds since the epoch, as the V5 time fields carry them.
pub fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// Payload templates from the fixture captures.
#[derive(Debug, Clone)]
pub struct Templates {
    handshake: Vec<u8>,
    data: Vec<u8>,
}

impl Templates {
    /// Reads the templates from the fixtures and checks they are long enough to patch.
    pub fn load() -> Result<Self, String> {
        let all: Vec<serde_json::Value> =
            serde_json::from_str(FIXTURES).map_err(|e| format!("fixture JSON: {e}"))?;
        let payload = |name: &str, min_len: usize| -> Result<Vec<u8>, String> {
            let hex = all
                .iter()
                .find(|f| f["name"] == name)
                .and_then(|f| f["hex"].as_str())
                .ok_or_else(|| format!("fixture {name} is missing"))?;
            let bytes = hex::decode(hex).map_err(|e| format!("fixture {name}: {e}"))?;
            let frame = parse(&bytes).map_err(|e| format!("fixture {name}: {e}"))?;
            if frame.payload.len() < min_len {
                return Err(format!("fixture {name}: payload shorter than {min_len}"));
            }
            Ok(frame.payload.to_vec())
        };
        Ok(Self {
            handshake: payload(HANDSHAKE_FIXTURE, HANDSHAKE_MIN_LEN)?,
            data: payload(DATA_FIXTURE, DATA_MIN_LEN)?,
        })
    }
}

/// The frames a simulated logger sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `0x4110`.
    Handshake,
    /// `0x4210`, Deye micro-inverter body.
    Data,
    /// `0x4710`.
    Heartbeat,
}

impl Kind {
    /// Position in per-kind counters.
    pub fn index(self) -> usize {
        match self {
            Self::Handshake => 0,
            Self::Data => 1,
            Self::Heartbeat => 2,
        }
    }
}

/// One simulated logger: identity, sequence counters (§1.2), timers and payload buffers.
#[derive(Debug)]
pub struct Logger {
    index: u32,
    serial: LoggerSerial,
    /// Last seq A received from the server (0 before the first reply).
    pub seq_a: u8,
    /// The logger's own counter, + 1 per frame.
    seq_b: u8,
    records: u32,
    booted: Instant,
    handshake: Vec<u8>,
    data: Vec<u8>,
    /// The last encoded frame.
    out: Vec<u8>,
}

impl Logger {
    /// Logger number `index` with header serial `serial`, announcing `heartbeat_s` in its
    /// handshake; its inverter serial is `23` + `index` in 8 digits.
    pub fn new(index: u32, serial: LoggerSerial, heartbeat_s: u8, templates: &Templates) -> Self {
        let mut handshake = templates.handshake.clone();
        put(&mut handshake, HS_HEARTBEAT_INTERVAL, &[heartbeat_s]);
        let [a, b, c, d] = index.to_be_bytes();
        put(&mut handshake, HS_MAC, &[0x02, 0xDE, a, b, c, d]);
        let mut data = templates.data.clone();
        put(&mut data, 0, &[FRAME_TYPE_LIVE]);
        let inverter = format!("23{:08}", index % 100_000_000);
        put(&mut data, BODY_OFFSET, inverter.as_bytes());
        for k in 0..PV_MODULES {
            let width = PV_MODULE_ID_LEN - INVERTER_SERIAL_LEN - 1;
            let id = format!("{inverter}-{:<width$}", k + 1);
            let at = DATA_PV_MODULE_IDS + k * PV_MODULE_ID_LEN;
            put(&mut data, at, id.as_bytes());
        }
        Self {
            index,
            serial,
            seq_a: 0,
            seq_b: index.to_le_bytes()[0],
            records: 1000 + index % 1000,
            booted: Instant::now(),
            handshake,
            data,
            out: Vec::with_capacity(templates.data.len() + 16),
        }
    }

    /// Seconds out of the factory and since boot, advancing with the clock.
    fn timers(&self) -> (u32, u32) {
        let up = u32::try_from(self.booted.elapsed().as_secs()).unwrap_or(u32::MAX);
        let spread = self.index.wrapping_mul(97) % 900_000;
        let total = TOTAL_WORKING_BASE.wrapping_add(spread).wrapping_add(up);
        (total, POWER_ON_BASE.wrapping_add(up))
    }

    /// Encodes the next frame of `kind` (current seq A, next seq B), keeps it as
    /// [`last_frame`](Self::last_frame) and returns its bytes.
    pub fn next_frame(&mut self, kind: Kind) -> Result<&[u8], FrameError> {
        let (total, power_on) = self.timers();
        let (control, payload): (ControlCode, &[u8]) = match kind {
            Kind::Handshake => {
                put(&mut self.handshake, HS_TOTAL_WORKING, &total.to_le_bytes());
                put(&mut self.handshake, HS_POWER_ON, &power_on.to_le_bytes());
                (ControlCode::Handshake, &self.handshake)
            }
            Kind::Data => {
                self.records = self.records.wrapping_add(1);
                let watts = 100 + self.index.wrapping_add(self.records) % 600;
                let offset = unix_now().saturating_sub(total);
                let data = &mut self.data;
                put(data, DATA_TOTAL_WORKING, &total.to_le_bytes());
                put(data, DATA_POWER_ON, &power_on.to_le_bytes());
                put(data, DATA_OFFSET_TIME, &offset.to_le_bytes());
                put(data, DATA_RECORD_COUNTER, &self.records.to_le_bytes());
                put(data, DATA_AC_POWER, &watts.to_le_bytes());
                (ControlCode::Data, data)
            }
            Kind::Heartbeat => (ControlCode::Heartbeat, &HEARTBEAT_PAYLOAD),
        };
        self.out.clear();
        Frame {
            control,
            seq_a: self.seq_a,
            seq_b: self.seq_b,
            serial: self.serial,
            payload,
        }
        .encode(&mut self.out)?;
        self.seq_b = self.seq_b.wrapping_add(1);
        Ok(&self.out)
    }

    /// The frame [`next_frame`](Self::next_frame) built last.
    pub fn last_frame(&self) -> Result<Frame<'_>, FrameError> {
        parse(&self.out)
    }
}

/// Checks `got` against the reply rule for `sent` (§1.2, §2): the codec's reply to `sent`,
/// built with the time and last field that `got` carries, must equal it, and the time must be
/// near `now`.
pub fn check_reply(sent: &Frame<'_>, got: &Frame<'_>, now: u32) -> Result<(), String> {
    let field = |at: usize| {
        got.payload
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let (Some(time), Some(last)) = (field(2), field(6)) else {
        return Err(format!("reply payload of {} bytes", got.payload.len()));
    };
    let expected = reply_to(sent, time, last).ok_or("sent a frame that gets no reply")?;
    if expected.frame() != *got {
        let show = |f: &Frame<'_>| {
            let (code, a, b, serial) = (f.control, f.seq_a, f.seq_b, f.serial);
            let payload = hex::encode(f.payload);
            format!("{code} seq {a}/{b} serial {serial} payload {payload}")
        };
        let (got, expected) = (show(got), show(&expected.frame()));
        return Err(format!("got {got}, expected {expected}"));
    }
    if time.abs_diff(now) > CLOCK_TOLERANCE_S {
        return Err(format!("reply time {time}, local clock {now}"));
    }
    Ok(())
}

fn ensure(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("frame self-check failed: {what}"))
    }
}

/// The data frame `bytes` as the collector decodes it: live, timed near `now`, a Deye micro
/// body from `inverter`.
fn check_data_frame(bytes: &[u8], inverter: &str, now: u32) -> Result<(), String> {
    let frame = parse(bytes).map_err(|e| format!("data frame: {e}"))?;
    let FrameContent::Data {
        header,
        timestamp: Some(timestamp),
        decoded: Some(decoded),
    } = FrameContent::decode(&frame, None, chrono::Utc::now())
    else {
        return Err("frame self-check failed: data frame is not timed Deye micro data".into());
    };
    ensure(header.frame_type == FRAME_TYPE_LIVE, "data frame is live")?;
    let skew = timestamp.timestamp().abs_diff(i64::from(now));
    ensure(skew <= 2, "data frame is timed now")?;
    ensure(
        decoded.inverter_serial.as_str() == inverter,
        "inverter serial",
    )
}

/// Replies to `sent` that break one part of the rule each: seq A, seq B, code, serial, payload
/// length, time.
fn wrong_replies(sent: &Frame<'_>, now: u32) -> Result<Vec<Vec<u8>>, String> {
    let good = reply_to(sent, now, 0).ok_or("no reply")?;
    let good = good.frame();
    let stale = reply_to(sent, now.saturating_sub(3600), 0).ok_or("no reply")?;
    let short = &good.payload[..6];
    [
        Frame {
            seq_a: good.seq_a.wrapping_add(1),
            ..good
        },
        Frame {
            seq_b: good.seq_b.wrapping_add(1),
            ..good
        },
        Frame {
            control: ControlCode::DataReply,
            ..good
        },
        Frame {
            serial: LoggerSerial::new(good.serial.get() ^ 1),
            ..good
        },
        Frame {
            payload: short,
            ..good
        },
        stale.frame(),
    ]
    .iter()
    .map(|f| f.to_vec().map_err(|e| e.to_string()))
    .collect()
}

/// Checks, with the codec, the frames two loggers build and that the reply check accepts the
/// rule's reply and rejects each broken one.
pub fn self_check(heartbeat_s: u8, templates: &Templates) -> Result<(), String> {
    let enc = |e: FrameError| format!("encode: {e}");
    let mut a = Logger::new(0, LoggerSerial::new(1), heartbeat_s, templates);
    let mut b = Logger::new(1, LoggerSerial::new(2), heartbeat_s, templates);
    let now = unix_now();
    a.next_frame(Kind::Handshake).map_err(enc)?;
    let handshake = a.last_frame().map_err(enc)?;
    let info = HandshakeInfo::decode(handshake.payload).map_err(|e| e.to_string())?;
    ensure(
        handshake.control == ControlCode::Handshake,
        "handshake code",
    )?;
    ensure(
        info.heartbeat_interval_s == heartbeat_s,
        "heartbeat announced",
    )?;
    let first = a.next_frame(Kind::Data).map_err(enc)?.to_vec();
    let second = a.next_frame(Kind::Data).map_err(enc)?.to_vec();
    let other = b.next_frame(Kind::Data).map_err(enc)?.to_vec();
    ensure(first != second, "consecutive data frames differ")?;
    ensure(first[6].wrapping_add(1) == second[6], "seq B counts frames")?;
    ensure(
        first[7..11] != other[7..11],
        "loggers have their own serial",
    )?;
    check_data_frame(&first, "2300000000", now)?;
    check_data_frame(&other, "2300000001", now)?;

    a.next_frame(Kind::Heartbeat).map_err(enc)?;
    let sent = a.last_frame().map_err(enc)?;
    let good = reply_to(&sent, now, 0).ok_or("heartbeat gets a reply")?;
    check_reply(&sent, &good.frame(), now)?;
    for (i, bytes) in wrong_replies(&sent, now)?.iter().enumerate() {
        let reply = parse(bytes).map_err(|e| e.to_string())?;
        let rejected = check_reply(&sent, &reply, now).is_err();
        ensure(rejected, &format!("broken reply #{i} is rejected"))?;
    }
    Ok(())
}
