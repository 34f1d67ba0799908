//! # deyehard-opendtu
//!
//! The OpenDTU HTTP push (`POST /api/opendtu/measurements`) and its Victron sister
//! (`POST /api/victron/measurements`, module [`victron`]): the payload model with lenient
//! parsing, validation with messages that name the field and the inverter, conversion into
//! `deyehard-core` readings at full precision, and the response body of the original backend.
//!
//! It leaves out authentication and storage, and HTTP unless asked: an embedder can parse and
//! validate a push with nothing but this crate, or, with the `poem` feature, mount the whole
//! endpoint (`endpoint::OpenDtuEndpoint`) in a poem application with its own authentication
//! and storage.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use deyehard_opendtu::{parse, validate};
//!
//! let body = br#"{
//!   "timestamp": "2025-10-19T17:54:43+02:00", "dtu_serial": "145680140006",
//!   "inverters": [{
//!     "serial": "116166771004", "name": "Inverter 1", "reachable": true, "producing": true,
//!     "last_update": 1760889277, "firmware": "ignored",
//!     "measurements": { "power_ac": 16.1, "voltage_ac": 229.8, "current_ac": 0.07,
//!                       "frequency": 49.99, "power_factor": 0.617, "power_dc": 17 },
//!     "dc_channels": [{ "channel": 1, "name": "Panel 1", "power": 3.4, "voltage": 30.4,
//!                       "current": 0.11, "yield_day": 337, "yield_total": 444.671,
//!                       "irradiation": 1.545455 }]
//!   }]
//! }"#;
//!
//! let push = parse(body)?;
//! let now = Utc.with_ymd_and_hms(2025, 10, 19, 15, 55, 0).unwrap();
//! validate(&push, now)?;
//!
//! let readings = push.readings();
//! let r = &readings[0].reading;
//! assert_eq!(readings[0].serial.as_str(), "116166771004");
//! assert_eq!(r.time, Utc.with_ymd_and_hms(2025, 10, 19, 15, 54, 43).unwrap());
//! assert_eq!(r.power_ac_w, Some(16.1));
//! assert_eq!(r.yield_total_wh, Some(444_671.0)); // kWh on the wire, Wh in the reading
//! assert!(r.reachable && r.producing);
//!
//! // A broken body names the field.
//! let err = parse(br#"{"timestamp": "2025-10-19T17:54:43Z", "dtu_serial": "1", "inverters": [7]}"#)
//!     .unwrap_err();
//! assert_eq!(err.path(), Some("inverters[0]"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Leniency
//!
//! Devices and firmware forks differ, so parsing accepts what a device may plausibly send and
//! rejects the rest with a message naming the field:
//!
//! | Input | Accepted as |
//! |---|---|
//! | unknown fields | ignored (never `deny_unknown_fields`) |
//! | a number as JSON integer, float, or string holding a finite number (`"16.1"`, as the original backend's Pydantic models allowed) | that number; other strings are "expected a number" |
//! | a measurement value that is `null` or absent | `None` ("not reported"; ArduinoJson prints NaN as `null`) |
//! | `channel`, `tracker`, `last_update` as `1`, `1.0` or `"1"` | that whole number; `1.5` or `-1` is an error |
//! | `name` `null`, absent or `""`; `dc_channels` `null`, absent or `[]` | empty |
//! | `timestamp` with `Z`, `+HH:MM` or `+HHMM` | that instant; no offset is an error |
//! | `last_update` 0 | "no frame since the DTU booted": the reading is offline |
//!
//! Required: `timestamp`, `dtu_serial`, `inverters`, and per inverter `serial`, `reachable`,
//! `producing`, `last_update` and `measurements` (the fields that decide what a reading means).
//! Serials are checked as [`deyehard_core::DeviceSerial`]s while parsing.
//!
//! Validation ([`validate`], [`Limits`]) then rejects: timestamps before 2020 or more than
//! 10 minutes ahead of the server clock, more than 64 inverters or 16 channels, channel numbers
//! outside 1..=16 or repeated, repeated serials, values that are not finite, below `-1` (small
//! negatives are night-time noise and become 0 in readings), or a power factor outside -1…1.
//! Conversion ([`Push::readings`]) and its staleness rule are described in [`convert`].

pub mod convert;
mod de;
#[cfg(feature = "poem")]
pub mod endpoint;
mod error;
mod model;
mod response;
mod validate;
pub mod victron;

pub use convert::{DEFAULT_STALE_AFTER, InverterReading, Offline};
pub use error::ParseError;
pub use model::{DcChannel, Inverter, Measurements, Push, parse};
pub use response::{
    DeviceResult, InverterResult, Outcome, PushResponse, ResultStatus, VictronResponse,
};
pub use validate::{
    DeviceRef, EARLIEST_TIMESTAMP, Limits, ValidationError, ValidationIssue, validate,
    validate_with,
};
