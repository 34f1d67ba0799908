//! The protocol state of one logger connection, sans-io: feed it frames and the clock, carry
//! out the [`Action`]s it returns. It never touches a socket or a timer itself.
//!
//! What it tracks: the last known clock offset (to timestamp buffered data, §5.7), the
//! heartbeat interval from the handshake (idle timeout = factor × heartbeat, default
//! 2.5 × 120 s = 300 s, §5.6), the sequence counters, and at most one outstanding `0x4510`
//! Modbus command, matched to its `0x1510` answer on sequence byte A (§4).
//!
//! Actions come in order: a [`Action::Store`] always precedes the [`Action::Reply`] for the
//! same frame, and the reply should be sent only once the store accepted the event (a frame
//! is acknowledged only when it is durably stored; unanswered, the logger sends it again).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use deyehard_core::LoggerSerial;

use crate::control::ControlCode;
use crate::event::{DecodedEvent, FrameContent};
use crate::frame::{Frame, FrameError};
use crate::reply::{command_frame, command_reply_rtu, reply_to};

/// Settings of a session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionConfig {
    /// Heartbeat interval assumed until the handshake says otherwise (§3.5: 120 s).
    pub default_heartbeat: Duration,
    /// Idle timeout = this × heartbeat interval.
    pub idle_factor: f32,
    /// The last u32 of every reply (§2: 0 is proven to work; the cloud sends 120).
    pub reply_last_field: u32,
    /// How long a `0x4510` command waits for its answer.
    pub command_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            default_heartbeat: Duration::from_secs(120),
            idle_factor: 2.5,
            reply_last_field: 0,
            command_timeout: Duration::from_secs(10),
        }
    }
}

impl SessionConfig {
    /// Idle timeout before a handshake: idle factor × default heartbeat.
    pub fn idle_timeout(&self) -> Duration {
        idle_timeout(self.default_heartbeat, self.idle_factor)
    }
}

/// Why a session should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Nothing arrived for the idle timeout.
    IdleTimeout {
        /// The timeout that passed.
        idle: Duration,
    },
}

/// What the caller must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Hand the event to the store.
    Store(Box<DecodedEvent>),
    /// Send these bytes to the logger (the acknowledgement of the frame just stored).
    Reply(Vec<u8>),
    /// The answer to the outstanding command: its Modbus RTU bytes (empty if the answer had
    /// none; `05 00` / `06 00` are logger-level errors, §4).
    CommandResponse {
        /// Sequence byte A of the command.
        seq: u8,
        /// Modbus RTU response.
        rtu: Vec<u8>,
    },
    /// The outstanding command got no answer in time; the slot is free again.
    CommandTimedOut {
        /// Sequence byte A of the command.
        seq: u8,
    },
    /// Close the connection.
    Close(CloseReason),
}

/// Why a command cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Another command is still waiting for its answer.
    #[error("a command is already outstanding")]
    Busy,
    /// The command does not fit in a frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

#[derive(Debug, Clone, Copy)]
struct PendingCommand {
    seq: u8,
    deadline: DateTime<Utc>,
}

/// One logger's protocol state.
#[derive(Debug, Clone)]
pub struct Session {
    serial: LoggerSerial,
    config: SessionConfig,
    heartbeat: Duration,
    last_frame_at: Option<DateTime<Utc>>,
    last_offset: Option<u32>,
    /// Last sequence byte A sent (the server counter).
    server_seq: u8,
    /// Last sequence byte B received (the logger counter).
    logger_seq: u8,
    pending: Option<PendingCommand>,
}

impl Session {
    /// A session for the logger `serial`, before any frame.
    pub fn new(serial: LoggerSerial, config: SessionConfig) -> Self {
        Self {
            serial,
            config,
            heartbeat: config.default_heartbeat,
            last_frame_at: None,
            last_offset: None,
            server_seq: 0,
            logger_seq: 0,
            pending: None,
        }
    }

    /// The logger serial this session was opened for.
    pub fn serial(&self) -> LoggerSerial {
        self.serial
    }

    /// The heartbeat interval in force (from the handshake, or the default).
    pub fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    /// The last non-zero clock offset the logger sent.
    pub fn last_known_offset(&self) -> Option<u32> {
        self.last_offset
    }

    /// Idle timeout: idle factor × heartbeat (the heartbeat alone if the factor is unusable).
    pub fn idle_timeout(&self) -> Duration {
        idle_timeout(self.heartbeat, self.config.idle_factor)
    }

    /// When the session counts as dead if nothing arrives: last frame + idle timeout. `None`
    /// before the first frame.
    pub fn idle_deadline(&self) -> Option<DateTime<Utc>> {
        self.last_frame_at.map(|at| add(at, self.idle_timeout()))
    }

    /// The earliest time [`poll`](Self::poll) has something to do.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let command = self.pending.map(|p| p.deadline);
        match (self.idle_deadline(), command) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a command waits for its answer.
    pub fn command_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Handles one frame received at `now`.
    pub fn on_frame(&mut self, frame: &Frame<'_>, now: DateTime<Utc>) -> Vec<Action> {
        let kind = frame.control;
        if matches!(
            kind.kind(),
            crate::FrameKind::ServerReply | crate::FrameKind::Command
        ) {
            // Server-direction frames never come from a logger: nothing to store or answer.
            return Vec::new();
        }
        self.last_frame_at = Some(now);
        self.logger_seq = frame.seq_b;
        let content = FrameContent::decode(frame, self.last_offset, now);
        self.learn(&content);
        let mut actions = Vec::with_capacity(2);
        if kind == ControlCode::CommandReply {
            actions.extend(self.match_command_reply(frame));
        }
        actions.push(Action::Store(Box::new(DecodedEvent {
            logger: frame.serial,
            received_at: now,
            control: kind.to_u16(),
            content,
        })));
        let unix_time = u32::try_from(now.timestamp()).unwrap_or(0);
        if let Some(reply) = reply_to(frame, unix_time, self.config.reply_last_field) {
            self.server_seq = reply.frame().seq_a;
            actions.push(Action::Reply(reply.to_bytes().to_vec()));
        }
        actions
    }

    fn learn(&mut self, content: &FrameContent) {
        if let Some(offset) = content.clock_offset() {
            self.last_offset = Some(offset);
        }
        if let FrameContent::Handshake(info) = content
            && info.heartbeat_interval_s > 0
        {
            self.heartbeat = Duration::from_secs(u64::from(info.heartbeat_interval_s));
        }
    }

    fn match_command_reply(&mut self, frame: &Frame<'_>) -> Option<Action> {
        let pending = self.pending.filter(|p| p.seq == frame.seq_a)?;
        self.pending = None;
        let rtu = command_reply_rtu(frame.payload)
            .unwrap_or_default()
            .to_vec();
        Some(Action::CommandResponse {
            seq: pending.seq,
            rtu,
        })
    }

    /// Handles the clock: closes an idle session, frees a command slot whose answer is late.
    pub fn poll(&mut self, now: DateTime<Utc>) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(pending) = self.pending.filter(|p| now >= p.deadline) {
            self.pending = None;
            actions.push(Action::CommandTimedOut { seq: pending.seq });
        }
        if self.idle_deadline().is_some_and(|deadline| now >= deadline) {
            actions.push(Action::Close(CloseReason::IdleTimeout {
                idle: self.idle_timeout(),
            }));
        }
        actions
    }

    /// Builds a `0x4510` frame carrying `modbus_rtu` (the whole RTU request with its CRC) and
    /// marks it outstanding until its answer arrives or `command_timeout` passes.
    pub fn send_command(
        &mut self,
        modbus_rtu: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, CommandError> {
        if self.pending.is_some() {
            return Err(CommandError::Busy);
        }
        let seq = self.server_seq.wrapping_add(1);
        let bytes = command_frame(self.serial, seq, self.logger_seq, modbus_rtu)?;
        self.server_seq = seq;
        self.pending = Some(PendingCommand {
            seq,
            deadline: add(now, self.config.command_timeout),
        });
        Ok(bytes)
    }
}

fn idle_timeout(heartbeat: Duration, factor: f32) -> Duration {
    Duration::try_from_secs_f64(heartbeat.as_secs_f64() * f64::from(factor))
        .ok()
        .filter(|d| !d.is_zero())
        .unwrap_or(heartbeat)
}

fn add(at: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(span)
        .ok()
        .and_then(|delta| at.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::parse;

    const SERIAL: LoggerSerial = LoggerSerial::new(3_868_322_507);

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn frame(control: ControlCode, seq_a: u8, seq_b: u8, payload: &[u8]) -> Frame<'_> {
        Frame {
            control,
            seq_a,
            seq_b,
            serial: SERIAL,
            payload,
        }
    }

    /// A handshake payload (§3.2) announcing a heartbeat of `heartbeat` seconds and `offset`.
    fn handshake(heartbeat: u8, offset: u32) -> Vec<u8> {
        let mut p = vec![0u8; 86];
        p[0] = 0x02;
        p[9..13].copy_from_slice(&offset.to_le_bytes());
        p[15] = heartbeat;
        p
    }

    /// A data header (§3.3) without body (sensor type 0xDD01: not decoded).
    fn data(frame_type: u8, total: u32, offset: u32) -> Vec<u8> {
        let mut p = vec![frame_type, 0x01, 0xDD];
        p.extend_from_slice(&total.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p.extend_from_slice(&offset.to_le_bytes());
        p
    }

    fn split(actions: Vec<Action>) -> (Vec<DecodedEvent>, Vec<Vec<u8>>) {
        let mut stored = Vec::new();
        let mut replies = Vec::new();
        for action in actions {
            match action {
                Action::Store(event) => stored.push(*event),
                Action::Reply(bytes) => {
                    assert!(
                        replies.len() < stored.len(),
                        "a reply never precedes its store"
                    );
                    replies.push(bytes);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        (stored, replies)
    }

    #[test]
    fn handshake_data_heartbeat_get_stored_then_answered() {
        let mut s = Session::new(SERIAL, SessionConfig::default());
        let hs = handshake(60, 0);
        let (stored, replies) =
            split(s.on_frame(&frame(ControlCode::Handshake, 0, 1, &hs), at(1000)));
        let replies = [parse(&replies[0]).unwrap()];
        assert!(matches!(stored[0].content, FrameContent::Handshake(_)));
        assert_eq!(replies[0].control, ControlCode::HandshakeReply);
        assert_eq!((replies[0].seq_a, replies[0].seq_b), (1, 1));
        assert_eq!(replies[0].payload[0], 0x02, "echoes the frame type");
        assert_eq!(&replies[0].payload[2..6], &1000u32.to_le_bytes());
        assert_eq!(s.heartbeat(), Duration::from_secs(60));

        let live = data(0x01, 6_755_845, 1_705_840_598);
        let (stored, replies) = split(s.on_frame(&frame(ControlCode::Data, 1, 2, &live), at(1001)));
        let replies = [parse(&replies[0]).unwrap()];
        let FrameContent::Data {
            timestamp,
            decoded: None,
            ..
        } = &stored[0].content
        else {
            panic!()
        };
        assert_eq!(
            timestamp.map(|t| t.timestamp()),
            Some(6_755_845 + 1_705_840_598)
        );
        assert_eq!(
            (replies[0].control, replies[0].seq_a, replies[0].payload[0]),
            (ControlCode::DataReply, 2, 0x01)
        );

        let buffered = data(0x81, 6_755_000, 0);
        let (stored, _) = split(s.on_frame(&frame(ControlCode::Data, 2, 3, &buffered), at(1002)));
        let FrameContent::Data { timestamp, .. } = &stored[0].content else {
            panic!()
        };
        assert_eq!(
            timestamp.map(|t| t.timestamp()),
            Some(6_755_000 + 1_705_840_598),
            "last known offset"
        );

        let (stored, replies) =
            split(s.on_frame(&frame(ControlCode::Heartbeat, 0xFF, 4, &[0]), at(1003)));
        let replies = [parse(&replies[0]).unwrap()];
        assert_eq!(stored[0].content, FrameContent::Heartbeat);
        assert_eq!(
            (replies[0].control, replies[0].seq_a, replies[0].seq_b),
            (ControlCode::HeartbeatReply, 0, 4)
        );
    }

    #[test]
    fn heartbeat_reply_matches_the_golden_capture() {
        // hb-81 and hb-81-rsp-correct from pysolarmanv5#81 (tests/fixtures/frames.json)
        let hb = [
            0xA5, 0x01, 0x00, 0x10, 0x47, 0x02, 0xD7, 0xCB, 0xEA, 0x91, 0xE6, 0x00, 0x5D, 0x15,
        ];
        let golden = [
            0xA5, 0x0A, 0x00, 0x10, 0x17, 0x03, 0xD7, 0xCB, 0xEA, 0x91, 0xE6, 0x00, 0x01, 0xFE,
            0x2B, 0x65, 0x67, 0x00, 0x00, 0x00, 0x00, 0x2D, 0x15,
        ];
        let mut s = Session::new(SERIAL, SessionConfig::default());
        let actions = s.on_frame(&parse(&hb).unwrap(), at(1_734_683_646));
        assert_eq!(actions.last(), Some(&Action::Reply(golden.to_vec())));
    }

    #[test]
    fn unknown_codes_are_stored_and_answered_only_when_logger_originated() {
        let mut s = Session::new(SERIAL, SessionConfig::default());
        let (stored, replies) =
            split(s.on_frame(&frame(ControlCode::Unknown(0x4910), 0, 0, &[7]), at(0)));
        assert_eq!(stored[0].content, FrameContent::Unknown);
        assert_eq!(
            parse(&replies[0]).unwrap().control,
            ControlCode::Unknown(0x1910)
        );
        let (stored, replies) =
            split(s.on_frame(&frame(ControlCode::Unknown(0x0210), 0, 0, &[7]), at(0)));
        assert_eq!((stored.len(), replies.len()), (1, 0));
        for control in [ControlCode::HeartbeatReply, ControlCode::Command] {
            assert!(s.on_frame(&frame(control, 0, 0, &[0]), at(0)).is_empty());
        }
    }

    #[test]
    fn idle_deadline_follows_the_heartbeat() {
        let mut s = Session::new(SERIAL, SessionConfig::default());
        assert_eq!(s.idle_deadline(), None);
        s.on_frame(&frame(ControlCode::Heartbeat, 0, 0, &[0]), at(1000));
        assert_eq!(s.idle_deadline(), Some(at(1300)), "default 2.5 × 120 s");
        assert!(s.poll(at(1299)).is_empty());
        assert_eq!(
            s.poll(at(1300)),
            vec![Action::Close(CloseReason::IdleTimeout {
                idle: Duration::from_secs(300)
            })]
        );
        s.on_frame(
            &frame(ControlCode::Handshake, 0, 1, &handshake(10, 0)),
            at(2000),
        );
        assert_eq!(s.idle_deadline(), Some(at(2025)));
    }

    #[test]
    fn unusable_idle_factor_falls_back_to_the_heartbeat() {
        for factor in [f32::NAN, -1.0, 0.0, f32::INFINITY] {
            let s = Session::new(
                SERIAL,
                SessionConfig {
                    idle_factor: factor,
                    ..SessionConfig::default()
                },
            );
            assert_eq!(s.idle_timeout(), Duration::from_secs(120), "{factor}");
        }
    }

    #[test]
    fn one_command_at_a_time_matched_on_seq_a() {
        let mut s = Session::new(SERIAL, SessionConfig::default());
        s.on_frame(&frame(ControlCode::Heartbeat, 4, 9, &[0]), at(0)); // we answered with seq A 5
        let rtu = [0x01, 0x03, 0x00, 0xAA, 0x00, 0x01, 0xA4, 0x2A];
        let bytes = s.send_command(&rtu, at(1)).unwrap();
        let cmd = parse(&bytes).unwrap();
        assert_eq!(
            (cmd.control, cmd.seq_a, cmd.seq_b, cmd.serial),
            (ControlCode::Command, 6, 9, SERIAL)
        );
        assert_eq!(&cmd.payload[15..], &rtu);
        assert_eq!(s.send_command(&rtu, at(2)), Err(CommandError::Busy));
        assert_eq!(s.next_deadline(), Some(at(11)));

        let mut answer = vec![0x02, 0x01];
        answer.extend_from_slice(&[0; 12]);
        answer.extend_from_slice(&[0x01, 0x03, 0x02, 0x01, 0x0A, 0x39, 0xD3]);
        let stray = s.on_frame(&frame(ControlCode::CommandReply, 0x42, 10, &answer), at(3));
        assert!(
            matches!(stray.as_slice(), [Action::Store(_)]),
            "wrong seq: stored, not matched, not answered"
        );
        assert!(s.command_pending());
        let actions = s.on_frame(&frame(ControlCode::CommandReply, 6, 11, &answer), at(4));
        assert_eq!(
            actions[0],
            Action::CommandResponse {
                seq: 6,
                rtu: answer[14..].to_vec()
            }
        );
        assert!(matches!(actions[1], Action::Store(_)));
        assert_eq!(actions.len(), 2);
        assert!(!s.command_pending());
    }

    #[test]
    fn a_late_command_frees_the_slot() {
        let mut s = Session::new(SERIAL, SessionConfig::default());
        s.send_command(&[0x01], at(0)).unwrap();
        assert!(s.poll(at(9)).is_empty());
        assert_eq!(s.poll(at(10)), vec![Action::CommandTimedOut { seq: 1 }]);
        assert!(s.send_command(&[0x01], at(11)).is_ok());
    }
}
