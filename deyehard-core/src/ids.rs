//! Identifiers and serial numbers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string could not be read as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseIdError {
    /// The text is empty or only white space.
    #[error("the value is empty")]
    Empty,
    /// The text is longer than the identifier allows.
    #[error("the value is longer than {max} characters")]
    TooLong {
        /// The maximum length.
        max: usize,
    },
    /// The text holds a character the identifier does not allow.
    #[error("the value contains {0:?}, which is not allowed")]
    BadCharacter(char),
    /// The text is not a number in the allowed range.
    #[error("the value is not a number between {min} and {max}")]
    NotANumber {
        /// Smallest value.
        min: u64,
        /// Largest value.
        max: u64,
    },
    /// The text names no known kind.
    #[error("unknown kind {0:?} (expected one of: opendtu, solarman, victron)")]
    UnknownKind(String),
}

macro_rules! db_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// Wraps a database id.
            pub const fn new(id: i64) -> Self {
                Self(id)
            }
            /// The database id.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

db_id!(
    /// A user (tenant) id.
    UserId
);
db_id!(
    /// An inverter id.
    InverterId
);
db_id!(
    /// An API key id.
    ApiKeyId
);

/// The serial number of a Solarman/IGEN Wi-Fi logger: the `u32` (little-endian on the wire)
/// in every V5 frame header, printed as unsigned decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LoggerSerial(u32);

impl LoggerSerial {
    /// Wraps a logger serial.
    pub const fn new(serial: u32) -> Self {
        Self(serial)
    }
    /// The serial as a number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for LoggerSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for LoggerSerial {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseIdError::Empty);
        }
        s.parse::<u32>()
            .map(Self)
            .map_err(|_| ParseIdError::NotANumber {
                min: 0,
                max: u64::from(u32::MAX),
            })
    }
}

/// The serial number of an inverter as the device reports it: 12 hex digits for Hoymiles
/// (OpenDTU), 10 ASCII digits for Deye micro-inverters. Opaque text of printable ASCII,
/// at most [`DeviceSerial::MAX_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceSerial(String);

impl DeviceSerial {
    /// The longest serial accepted.
    pub const MAX_LEN: usize = 64;

    /// Checks and wraps a serial (surrounding white space is removed).
    pub fn parse(s: &str) -> Result<Self, ParseIdError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseIdError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(ParseIdError::TooLong { max: Self::MAX_LEN });
        }
        // Bytes, not chars: the first byte that is not graphic ASCII starts the offending char.
        let bad = s.bytes().position(|b| !b.is_ascii_graphic());
        if let Some(c) = bad.and_then(|at| s.get(at..)?.chars().next()) {
            return Err(ParseIdError::BadCharacter(c));
        }
        Ok(Self(s.to_owned()))
    }

    /// The serial as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DeviceSerial {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for DeviceSerial {
    type Error = ParseIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<DeviceSerial> for String {
    fn from(s: DeviceSerial) -> Self {
        s.0
    }
}

/// How an inverter reaches us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InverterKind {
    /// A Hoymiles inverter behind an OpenDTU that pushes over HTTP.
    Opendtu,
    /// A Deye inverter whose Solarman logger pushes V5 frames over TCP.
    Solarman,
    /// A Victron device behind a Cerbo GX that pushes over HTTP.
    Victron,
}

impl InverterKind {
    /// The name stored in the database and used on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Opendtu => "opendtu",
            Self::Solarman => "solarman",
            Self::Victron => "victron",
        }
    }
}

impl fmt::Display for InverterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InverterKind {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "opendtu" => Ok(Self::Opendtu),
            "solarman" => Ok(Self::Solarman),
            "victron" => Ok(Self::Victron),
            other => Err(ParseIdError::UnknownKind(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_serial_rejects_empty_long_and_odd_text() {
        assert_eq!(DeviceSerial::parse("  "), Err(ParseIdError::Empty));
        assert_eq!(
            DeviceSerial::parse(&"1".repeat(65)),
            Err(ParseIdError::TooLong { max: 64 })
        );
        assert_eq!(
            DeviceSerial::parse("11 41"),
            Err(ParseIdError::BadCharacter(' '))
        );
        assert_eq!(
            DeviceSerial::parse(" 114172220003 ").map(|s| s.to_string()),
            Ok("114172220003".into())
        );
    }

    #[test]
    fn logger_serial_is_unsigned_decimal() {
        assert_eq!(
            "3939932716".parse::<LoggerSerial>().map(LoggerSerial::get),
            Ok(3_939_932_716)
        );
        assert!("-1".parse::<LoggerSerial>().is_err());
        assert!("4294967296".parse::<LoggerSerial>().is_err());
    }

    #[test]
    fn inverter_kind_round_trips() {
        for kind in [
            InverterKind::Opendtu,
            InverterKind::Solarman,
            InverterKind::Victron,
        ] {
            assert_eq!(kind.as_str().parse::<InverterKind>(), Ok(kind));
        }
        assert!("sma".parse::<InverterKind>().is_err());
    }
}
