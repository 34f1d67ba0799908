//! Payload decoders for logger-originated frames. They tolerate short payloads: a missing
//! required field is a [`PayloadError`], optional trailing fields become `None`; nothing panics.

mod data;
mod deye_micro;
mod fields;
mod handshake;

pub use data::{BODY_OFFSET, DataHeaderInfo, FRAME_TYPE_BUFFERED, FRAME_TYPE_LIVE};
pub use deye_micro::{
    DecodedData, DeyeMicroBody, PV_INPUTS, PvInput, SENSOR_LOW_BYTE, is_deye_micro,
};
pub use fields::PayloadError;
pub use handshake::HandshakeInfo;
