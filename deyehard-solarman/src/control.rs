//! Control codes: what a frame is (protocol notes §1.1) and who must answer it.
//!
//! On the wire the code is a `u16` little-endian at frame offset 3; byte 3 is always `0x10`
//! and byte 4 is the "type". Logger requests have types `0x41..=0x48`, the server's replies
//! are the request minus `0x3000`, and `0x4510` is the one request the *server* sends (a
//! Modbus command), answered by the logger with `0x1510`. Codes outside that set are kept as
//! [`ControlCode::Unknown`]: framed and reported, never rejected.

use std::fmt;

/// The control code of a V5 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlCode {
    /// `0x4110` logger hello / device info.
    Handshake,
    /// `0x4210` inverter data.
    Data,
    /// `0x4310` Wi-Fi info.
    Info,
    /// `0x4710` heartbeat.
    Heartbeat,
    /// `0x4810` report / end of the sync sequence.
    Report,
    /// `0x4510` server → logger command (Modbus RTU).
    Command,
    /// `0x1510` logger → server answer to a command.
    CommandReply,
    /// `0x1110` server reply to a handshake.
    HandshakeReply,
    /// `0x1210` server reply to a data frame.
    DataReply,
    /// `0x1310` server reply to an info frame.
    InfoReply,
    /// `0x1710` server reply to a heartbeat.
    HeartbeatReply,
    /// `0x1810` server reply to a report.
    ReportReply,
    /// Any other code (e.g. `0x0210` from 2018 Ethernet sticks).
    Unknown(u16),
}

/// What kind of message a frame carries, as printed by tools and used as a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// `0x4110`.
    Handshake,
    /// `0x4210`.
    Data,
    /// `0x4310`.
    Info,
    /// `0x4710`.
    Heartbeat,
    /// `0x4810`.
    Report,
    /// `0x4510`.
    Command,
    /// `0x1510`.
    CommandReply,
    /// `0x1110`, `0x1210`, `0x1310`, `0x1710`, `0x1810`.
    ServerReply,
    /// Anything else.
    Unknown,
}

impl FrameKind {
    /// The lower-case name: `handshake`, `data`, …, `server_reply`, `unknown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Handshake => "handshake",
            Self::Data => "data",
            Self::Info => "info",
            Self::Heartbeat => "heartbeat",
            Self::Report => "report",
            Self::Command => "command",
            Self::CommandReply => "command_reply",
            Self::ServerReply => "server_reply",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Server reply code = request code − `0x3000` (§1.1).
const REPLY_OFFSET: u16 = 0x3000;
/// Type bytes from here up are requests (§6: never answer types below it).
const FIRST_REQUEST_TYPE: u8 = 0x40;
/// The command type, the only request the server originates.
const COMMAND_TYPE: u8 = 0x45;

impl ControlCode {
    /// Reads a wire code.
    pub const fn from_u16(code: u16) -> Self {
        match code {
            0x4110 => Self::Handshake,
            0x4210 => Self::Data,
            0x4310 => Self::Info,
            0x4710 => Self::Heartbeat,
            0x4810 => Self::Report,
            0x4510 => Self::Command,
            0x1510 => Self::CommandReply,
            0x1110 => Self::HandshakeReply,
            0x1210 => Self::DataReply,
            0x1310 => Self::InfoReply,
            0x1710 => Self::HeartbeatReply,
            0x1810 => Self::ReportReply,
            other => Self::Unknown(other),
        }
    }

    /// The wire code.
    pub const fn to_u16(self) -> u16 {
        match self {
            Self::Handshake => 0x4110,
            Self::Data => 0x4210,
            Self::Info => 0x4310,
            Self::Heartbeat => 0x4710,
            Self::Report => 0x4810,
            Self::Command => 0x4510,
            Self::CommandReply => 0x1510,
            Self::HandshakeReply => 0x1110,
            Self::DataReply => 0x1210,
            Self::InfoReply => 0x1310,
            Self::HeartbeatReply => 0x1710,
            Self::ReportReply => 0x1810,
            Self::Unknown(code) => code,
        }
    }

    /// The type byte (frame offset 4, the high byte of the code).
    pub const fn type_byte(self) -> u8 {
        self.to_u16().to_be_bytes()[0]
    }

    /// Whether the logger sent this on its own and expects a reply: type byte ≥ `0x40` and not
    /// the server's `0x45` command. Unknown codes in that range are answered too (§6).
    pub const fn is_logger_originated(self) -> bool {
        let ty = self.type_byte();
        ty >= FIRST_REQUEST_TYPE && ty != COMMAND_TYPE
    }

    /// The code of the server's reply (request − `0x3000`), for logger-originated frames only.
    pub const fn reply_code(self) -> Option<Self> {
        if self.is_logger_originated() {
            Some(Self::from_u16(self.to_u16() - REPLY_OFFSET))
        } else {
            None
        }
    }

    /// The kind of message.
    pub const fn kind(self) -> FrameKind {
        match self {
            Self::Handshake => FrameKind::Handshake,
            Self::Data => FrameKind::Data,
            Self::Info => FrameKind::Info,
            Self::Heartbeat => FrameKind::Heartbeat,
            Self::Report => FrameKind::Report,
            Self::Command => FrameKind::Command,
            Self::CommandReply => FrameKind::CommandReply,
            Self::HandshakeReply
            | Self::DataReply
            | Self::InfoReply
            | Self::HeartbeatReply
            | Self::ReportReply => FrameKind::ServerReply,
            Self::Unknown(_) => FrameKind::Unknown,
        }
    }
}

impl From<u16> for ControlCode {
    fn from(code: u16) -> Self {
        Self::from_u16(code)
    }
}

impl From<ControlCode> for u16 {
    fn from(code: ControlCode) -> Self {
        code.to_u16()
    }
}

impl fmt::Display for ControlCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04X}", self.to_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_round_trip_and_unknown_codes_are_kept() {
        for code in [
            0x4110, 0x4210, 0x4310, 0x4710, 0x4810, 0x4510, 0x1510, 0x1110, 0x1210, 0x1310, 0x1710,
            0x1810,
        ] {
            let parsed = ControlCode::from_u16(code);
            assert!(!matches!(parsed, ControlCode::Unknown(_)), "{code:#06x}");
            assert_eq!(parsed.to_u16(), code);
        }
        assert_eq!(ControlCode::from_u16(0x0210), ControlCode::Unknown(0x0210));
        assert_eq!(ControlCode::from_u16(0x0210).to_u16(), 0x0210);
    }

    #[test]
    fn only_logger_requests_are_answered() {
        let answered = [0x4110, 0x4210, 0x4310, 0x4710, 0x4810, 0x4910, 0x4010];
        for code in answered {
            assert!(
                ControlCode::from_u16(code).is_logger_originated(),
                "{code:#06x}"
            );
        }
        for code in [0x4510, 0x1510, 0x1110, 0x1710, 0x0210, 0x0510, 0x3F10] {
            assert!(
                !ControlCode::from_u16(code).is_logger_originated(),
                "{code:#06x}"
            );
            assert_eq!(ControlCode::from_u16(code).reply_code(), None);
        }
    }

    #[test]
    fn reply_code_is_request_minus_0x3000() {
        assert_eq!(
            ControlCode::Handshake.reply_code(),
            Some(ControlCode::HandshakeReply)
        );
        assert_eq!(ControlCode::Data.reply_code(), Some(ControlCode::DataReply));
        assert_eq!(ControlCode::Info.reply_code(), Some(ControlCode::InfoReply));
        assert_eq!(
            ControlCode::Heartbeat.reply_code(),
            Some(ControlCode::HeartbeatReply)
        );
        assert_eq!(
            ControlCode::Report.reply_code(),
            Some(ControlCode::ReportReply)
        );
        assert_eq!(
            ControlCode::Unknown(0x4910).reply_code(),
            Some(ControlCode::Unknown(0x1910))
        );
    }

    #[test]
    fn kinds_and_display() {
        assert_eq!(ControlCode::Data.kind().as_str(), "data");
        assert_eq!(ControlCode::HeartbeatReply.kind(), FrameKind::ServerReply);
        assert_eq!(ControlCode::Unknown(0x0210).kind().to_string(), "unknown");
        assert_eq!(ControlCode::Data.to_string(), "0x4210");
        assert_eq!(ControlCode::Data.type_byte(), 0x42);
    }
}
