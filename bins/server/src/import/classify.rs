//! Telling the two kinds of inverter apart: the original service keeps one `serial_logger`
//! column for both.
//!
//! The rule (documented in `docs/switching-over.md`):
//! - **Solarman (Deye)**: 1 to 10 decimal digits whose value fits a `u32`. A Solarman logger
//!   serial *is* the `u32` of every V5 frame header, so nothing else can be one.
//! - **OpenDTU (Hoymiles)**: exactly 12 hexadecimal digits starting with `1` (Hoymiles serials
//!   start with their family: `10…`, `11…`, `13…`, `14…`). OpenDTU names the inverter by this
//!   text in every push.
//! - **Anything else** is *ambiguous*: it cannot be a Solarman logger (not a `u32`), and an
//!   OpenDTU push names an inverter by whatever text its serial is, so it is imported as an
//!   OpenDTU inverter with the serial as it is, and listed in the summary for a check.
//!
//! The two shapes do not overlap (≤ 10 characters against 12), so a serial is never both.

use deyehard_core::{DeviceSerial, InverterKind, LoggerSerial};

/// What a `serial_logger` value says about the inverter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// A Deye inverter behind a Solarman logger with this serial.
    Solarman(LoggerSerial),
    /// A Hoymiles inverter behind an OpenDTU, with this serial.
    Opendtu(DeviceSerial),
    /// Neither shape: imported as OpenDTU with the serial as it is, and reported.
    Ambiguous(DeviceSerial),
    /// Not usable as a serial at all (empty, too long, control characters): skipped.
    Unusable,
}

impl Classified {
    /// The inverter kind to register.
    pub fn kind(&self) -> Option<InverterKind> {
        match self {
            Self::Solarman(_) => Some(InverterKind::Solarman),
            Self::Opendtu(_) | Self::Ambiguous(_) => Some(InverterKind::Opendtu),
            Self::Unusable => None,
        }
    }
}

/// Classifies a `serial_logger` value by the rule of this module.
pub fn classify(serial_logger: &str) -> Classified {
    let text = serial_logger.trim();
    if (1..=10).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit())
        && let Ok(serial) = text.parse::<LoggerSerial>()
    {
        return Classified::Solarman(serial);
    }
    let Ok(serial) = DeviceSerial::parse(text) else {
        return Classified::Unusable;
    };
    let hoymiles =
        text.len() == 12 && text.starts_with('1') && text.bytes().all(|b| b.is_ascii_hexdigit());
    if hoymiles {
        Classified::Opendtu(serial)
    } else {
        Classified::Ambiguous(serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(s: &str) -> DeviceSerial {
        DeviceSerial::parse(s).unwrap()
    }

    #[test]
    fn logger_serials_are_u32_numbers_of_at_most_ten_digits() {
        for (text, value) in [
            ("2712345678", 2_712_345_678),
            ("4294967295", u32::MAX),
            (" 415123456 ", 415_123_456),
            ("7", 7),
            ("0000000042", 42),
        ] {
            assert_eq!(
                classify(text),
                Classified::Solarman(LoggerSerial::new(value)),
                "{text}"
            );
        }
    }

    #[test]
    fn hoymiles_serials_are_twelve_hex_digits_starting_with_one() {
        for text in [
            "114172220003",
            "116166771004",
            "138292851234",
            "1410a1b2c3d4",
        ] {
            assert_eq!(classify(text), Classified::Opendtu(device(text)), "{text}");
        }
        assert_eq!(
            classify(" 112183845066 ").kind(),
            Some(InverterKind::Opendtu)
        );
    }

    #[test]
    fn other_shapes_are_ambiguous_and_imported_as_opendtu() {
        for text in [
            "4294967296",    // ten digits, but above u32::MAX: no logger
            "12345678901",   // eleven digits
            "214172220003",  // twelve digits, not a Hoymiles family
            "1141722200031", // thirteen digits
            "HM-800",
            "-",
        ] {
            let classified = classify(text);
            assert_eq!(classified, Classified::Ambiguous(device(text)), "{text}");
            assert_eq!(classified.kind(), Some(InverterKind::Opendtu));
        }
    }

    #[test]
    fn unusable_text_is_skipped() {
        for text in ["", "   ", "11 41", &"1".repeat(65), "seri\u{e4}l"] {
            assert_eq!(classify(text), Classified::Unusable, "{text:?}");
            assert_eq!(classify(text).kind(), None);
        }
    }
}
