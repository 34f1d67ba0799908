//! # deyehard-solarman
//!
//! The Solarman V5 protocol spoken by IGEN/Solarman Wi-Fi loggers (Deye micro-inverters,
//! LSW-3/LSW-5 sticks) that push frames to a server on TCP port 10000.
//!
//! What it owns, sans-io (no sockets, no tokio in the default build):
//! - [`frame`]: the frame layout, [`check`] / [`parse`] /
//!   [`Frame::encode`];
//! - [`stream`]: framing on a byte stream with resynchronisation ([`FrameBuffer`]);
//! - [`control`]: control codes and who answers what;
//! - [`reply`]: the acknowledgement every logger-originated frame needs, and `0x4510` commands;
//! - [`payload`]: handshake, data header and Deye micro-inverter body decoders into
//!   `deyehard_core` readings;
//! - [`event`]: decoded frame content for the application;
//! - [`session`]: the per-logger state machine (`on_frame(frame, now) -> Vec<Action>`).
//!
//! Behind features: `tokio-codec` (a `tokio_util` `Decoder`/`Encoder` over the same
//! [`FrameBuffer`]); `listener` (the tokio TCP listener, one task per logger, handing frames to
//! your `FrameSink` and acknowledging them once stored, plus an on-disk spool for when the
//! store is down).
//!
//! What it leaves out: storage, tenants and configuration files. The protocol notes this code
//! cites (§n) are `docs/protocol/solarman-v5.md` in the project documentation.

#[cfg(feature = "tokio-codec")]
pub mod codec;
pub mod control;
pub mod event;
pub mod frame;
#[cfg(feature = "listener")]
pub mod listener;
pub mod payload;
pub mod reply;
pub mod session;
#[cfg(feature = "listener")]
pub mod spool;
pub mod stream;

pub use control::{ControlCode, FrameKind};
pub use event::{DecodedEvent, FrameContent, FrameEvent};
pub use frame::{CheckError, Frame, FrameError, check, parse, parse_lenient};
pub use reply::{Reply, reply_to};
pub use session::{Action, CloseReason, CommandError, Session, SessionConfig};
pub use stream::{
    ChecksumPolicy, FrameBuffer, OwnedFrame, StreamConfig, StreamError, StreamFrame, StreamStats,
};
