//! What a received frame means for the application: [`FrameContent`] (decoded, serde-ready so
//! the spool can write it) and [`FrameEvent`], the record handed to a sink before the reply.

use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use deyehard_core::LoggerSerial;
use serde::{Deserialize, Serialize};

use crate::control::ControlCode;
use crate::frame::Frame;
use crate::payload::{DataHeaderInfo, DecodedData, DeyeMicroBody, HandshakeInfo, is_deye_micro};

/// The decoded content of a frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FrameContent {
    /// `0x4110`.
    Handshake(HandshakeInfo),
    /// `0x4210`.
    Data {
        /// The header.
        header: DataHeaderInfo,
        /// Device time of the data, `None` when no clock offset is known yet (then
        /// `decoded.reading.time` is the time of reception: the application decides whether to
        /// keep such a reading or only the raw frame).
        timestamp: Option<DateTime<Utc>>,
        /// The decoded body, for the layouts this crate knows (Deye micro-inverters).
        decoded: Option<DecodedData>,
    },
    /// `0x4310` (kept raw).
    Info,
    /// `0x4710`.
    Heartbeat,
    /// `0x4810` (kept raw).
    Report,
    /// `0x1510` answer to a command (kept raw).
    CommandReply,
    /// Any other code (kept raw).
    Unknown,
    /// A known message whose payload could not be decoded (kept raw).
    Undecodable {
        /// Why.
        error: String,
    },
}

impl FrameContent {
    /// Decodes `frame`. `last_known_offset` is the last non-zero clock offset seen from this
    /// logger (for buffered data), `received_at` stands in for the reading time when no offset
    /// is known.
    pub fn decode(
        frame: &Frame<'_>,
        last_known_offset: Option<u32>,
        received_at: DateTime<Utc>,
    ) -> Self {
        match frame.control {
            ControlCode::Handshake => match HandshakeInfo::decode(frame.payload) {
                Ok(info) => Self::Handshake(info),
                Err(e) => Self::Undecodable {
                    error: e.to_string(),
                },
            },
            ControlCode::Data => Self::decode_data(frame.payload, last_known_offset, received_at),
            ControlCode::Info => Self::Info,
            ControlCode::Heartbeat => Self::Heartbeat,
            ControlCode::Report => Self::Report,
            ControlCode::CommandReply => Self::CommandReply,
            _ => Self::Unknown,
        }
    }

    fn decode_data(
        payload: &[u8],
        last_known_offset: Option<u32>,
        received_at: DateTime<Utc>,
    ) -> Self {
        let header = match DataHeaderInfo::decode(payload) {
            Ok(header) => header,
            Err(e) => {
                return Self::Undecodable {
                    error: e.to_string(),
                };
            }
        };
        let timestamp = header.timestamp(last_known_offset);
        let decoded = if is_deye_micro(header.sensor_type) {
            match DeyeMicroBody::decode(payload) {
                Ok(body) => {
                    Some(body.into_decoded(timestamp.unwrap_or(received_at), header.source()))
                }
                Err(e) => {
                    return Self::Undecodable {
                        error: e.to_string(),
                    };
                }
            }
        } else {
            None
        };
        Self::Data {
            header,
            timestamp,
            decoded,
        }
    }

    /// The non-zero clock offset (unix time − total working time) this content carries, if any.
    pub fn clock_offset(&self) -> Option<u32> {
        match self {
            Self::Handshake(info) => (info.offset_time_s != 0).then_some(info.offset_time_s),
            Self::Data { header, .. } => header.known_offset(),
            _ => None,
        }
    }
}

/// A received frame, decoded, without its transport details (what the session produces).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodedEvent {
    /// Logger serial from the frame header.
    pub logger: LoggerSerial,
    /// When the frame was received.
    pub received_at: DateTime<Utc>,
    /// Control code.
    pub control: u16,
    /// Decoded content.
    pub content: FrameContent,
}

/// What the listener hands to the application for every logger-originated frame, before it
/// replies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameEvent {
    /// Logger serial from the frame header.
    pub logger: LoggerSerial,
    /// The logger's address.
    pub remote: SocketAddr,
    /// When the frame was received.
    pub received_at: DateTime<Utc>,
    /// Control code.
    pub control: u16,
    /// The frame as received (hex in serialized form).
    #[serde(with = "hex_bytes")]
    pub raw: Vec<u8>,
    /// Decoded content.
    pub content: FrameContent,
}

impl FrameEvent {
    /// Adds the transport details to a decoded event.
    pub fn new(event: DecodedEvent, remote: SocketAddr, raw: Vec<u8>) -> Self {
        Self {
            logger: event.logger,
            remote,
            received_at: event.received_at,
            control: event.control,
            raw,
            content: event.content,
        }
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}
