//! Lenient deserializers shared by the OpenDTU and Victron models.
//!
//! - Numbers: a JSON integer, a JSON float, or a string holding a finite number (the original
//!   backend's Pydantic models accept `"16.1"` too); `null` or an absent field is "not reported".
//! - Whole numbers (`channel`, `tracker`, `last_update`): the same inputs, as long as the value
//!   has no fractional part (`1`, `1.0`, `"1"`).
//! - Timestamps: ISO 8601 / RFC 3339 with `Z`, `+HH:MM` or `+HHMM`; a time without an offset is
//!   rejected (the DTU sends local time, so guessing the zone would shift readings by hours).

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, Unexpected, Visitor};

/// How much of a client's text is echoed back in an error message.
const ECHO_MAX_CHARS: usize = 40;

/// The first [`ECHO_MAX_CHARS`] characters of `s`, with `…` when cut.
pub(crate) fn shorten(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// Reads a timestamp with its UTC offset (see the module docs for the accepted forms).
pub(crate) fn timestamp<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<DateTime<FixedOffset>, D::Error> {
    d.deserialize_str(TimestampVisitor)
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = DateTime<FixedOffset>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an ISO 8601 date-time with a UTC offset, e.g. 2025-10-19T17:54:43+02:00")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_timestamp(v).map_err(E::custom)
    }
}

/// Parses `2025-10-19T17:54:43+02:00`, `…+0200`, `…Z` (fractional seconds allowed).
pub(crate) fn parse_timestamp(text: &str) -> Result<DateTime<FixedOffset>, String> {
    let t = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(t) {
        return Ok(time);
    }
    // `%z` takes `+HHMM` as well as `+HH:MM`; RFC 3339 above only takes the latter.
    if let Ok(time) = DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Ok(time);
    }
    let shown = shorten(t, ECHO_MAX_CHARS);
    if NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").is_ok() {
        return Err(format!(
            "{shown:?} has no UTC offset (expected e.g. {shown}Z or {shown}+02:00)"
        ));
    }
    Err(format!(
        "{shown:?} is not an ISO 8601 date-time with a UTC offset (expected e.g. 2025-10-19T17:54:43+02:00)"
    ))
}

/// Reads an optional number: integer, float or numeric string; `null` gives `None`.
pub(crate) fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    d.deserialize_any(NumberVisitor)
}

struct NumberVisitor;

impl Visitor<'_> for NumberVisitor {
    type Value = Option<f64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        // Exact up to 2^53, far beyond any physical value in a push.
        Ok(Some(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match v.trim().parse::<f64>() {
            // Rust also parses "NaN" and "inf": JSON has neither, so neither may sneak in as text.
            Ok(n) if n.is_finite() => Ok(Some(n)),
            _ => Err(E::invalid_value(
                Unexpected::Str(&shorten(v, ECHO_MAX_CHARS)),
                &self,
            )),
        }
    }
}

/// Reads a whole number from 0 to `max`.
struct WholeVisitor {
    max: u64,
}

impl Visitor<'_> for WholeVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a whole number from 0 to {}", self.max)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        if v <= self.max {
            Ok(v)
        } else {
            Err(E::invalid_value(Unexpected::Unsigned(v), &self))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // u64::MAX as f64 rounds up to 2^64, so compare strictly below it.
        if v.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&v) {
            self.visit_u64(v as u64)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = v.trim();
        if let Ok(n) = t.parse::<u64>() {
            return self.visit_u64(n);
        }
        match t.parse::<f64>() {
            Ok(n) if n.is_finite() => self.visit_f64(n),
            _ => Err(E::invalid_value(
                Unexpected::Str(&shorten(v, ECHO_MAX_CHARS)),
                &self,
            )),
        }
    }
}

/// Reads a whole number from 0 to 255 (channel and tracker numbers; their range is checked by
/// validation, so that the message can name the inverter).
pub(crate) fn small_whole<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = d.deserialize_any(WholeVisitor {
        max: u64::from(u8::MAX),
    })?;
    u8::try_from(v).map_err(|_| {
        de::Error::invalid_value(Unexpected::Unsigned(v), &"a whole number from 0 to 255")
    })
}

/// Reads a non-negative whole number (Unix seconds).
pub(crate) fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(WholeVisitor { max: u64::MAX })
}

/// Reads an optional non-negative whole number; `null` gives `None`.
pub(crate) fn opt_whole<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a whole number or null")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            whole(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

/// Reads a value whose `null` means its default (an empty name, an empty channel list).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Deserializes `T` from a JSON object only.
///
/// A derived struct also accepts a JSON array (fields by position), which turns a body like
/// `[1,2,3]` into the puzzling "`[0]`: expected a date-time"; this seed says "expected an
/// object" instead.
pub(crate) struct ObjectSeed<T> {
    /// What the object should be, for the message ("an OpenDTU push object").
    pub(crate) expecting: &'static str,
    pub(crate) marker: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for ObjectSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectSeed<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "number")]
        n: Option<f64>,
        #[serde(default, deserialize_with = "small_whole")]
        c: u8,
        #[serde(default, deserialize_with = "whole")]
        w: u64,
        #[serde(default, deserialize_with = "opt_whole")]
        o: Option<u64>,
    }

    fn probe(json: &str) -> Result<Probe, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_accept_integers_floats_numeric_strings_and_null() {
        assert_eq!(probe(r#"{"n": 17}"#).unwrap().n, Some(17.0));
        assert_eq!(probe(r#"{"n": -3}"#).unwrap().n, Some(-3.0));
        assert_eq!(probe(r#"{"n": 16.1}"#).unwrap().n, Some(16.1));
        assert_eq!(probe(r#"{"n": " 16.1 "}"#).unwrap().n, Some(16.1));
        assert_eq!(probe(r#"{"n": null}"#).unwrap().n, None);
        assert_eq!(probe(r#"{}"#).unwrap().n, None);
    }

    #[test]
    fn numbers_reject_words_nan_and_other_types() {
        let e = probe(r#"{"n": "sixteen"}"#).unwrap_err();
        assert!(e.contains(r#"string "sixteen", expected a number"#), "{e}");
        assert!(probe(r#"{"n": "NaN"}"#).is_err());
        assert!(probe(r#"{"n": "inf"}"#).is_err());
        assert!(probe(r#"{"n": ""}"#).is_err());
        assert!(
            probe(r#"{"n": true}"#)
                .unwrap_err()
                .contains("expected a number")
        );
        assert!(probe(r#"{"n": [1]}"#).is_err());
        assert!(
            probe(r#"{"n": 1e400}"#).is_err(),
            "serde_json rejects overflowing numbers"
        );
    }

    #[test]
    fn whole_numbers_accept_integral_floats_and_strings_only() {
        assert_eq!(probe(r#"{"c": 3}"#).unwrap().c, 3);
        assert_eq!(probe(r#"{"c": 3.0}"#).unwrap().c, 3);
        assert_eq!(probe(r#"{"c": "3"}"#).unwrap().c, 3);
        assert_eq!(probe(r#"{"w": 1760889277}"#).unwrap().w, 1_760_889_277);
        assert_eq!(probe(r#"{"w": 1760889277.0}"#).unwrap().w, 1_760_889_277);
        assert_eq!(probe(r#"{"o": null}"#).unwrap().o, None);
        assert_eq!(probe(r#"{"o": 5}"#).unwrap().o, Some(5));
        for bad in [
            r#"{"c": 1.5}"#,
            r#"{"c": -1}"#,
            r#"{"c": 256}"#,
            r#"{"c": "x"}"#,
            r#"{"c": null}"#,
        ] {
            let e = probe(bad).unwrap_err();
            assert!(
                e.contains("expected a whole number from 0 to 255"),
                "{bad}: {e}"
            );
        }
        assert!(probe(r#"{"w": -1}"#).is_err());
        assert!(probe(r#"{"w": 1e30}"#).is_err());
    }

    #[test]
    fn timestamps_take_z_colon_and_compact_offsets() {
        let z = parse_timestamp("2025-08-20T13:00:02Z").unwrap();
        assert_eq!(z.timestamp(), 1_755_694_802);
        assert_eq!(z.offset().local_minus_utc(), 0);
        let colon = parse_timestamp("2025-10-19T17:54:43+02:00").unwrap();
        let compact = parse_timestamp("2025-10-19T17:54:43+0200").unwrap();
        assert_eq!(colon, compact);
        assert_eq!(colon.timestamp(), 1_760_889_283);
        assert_eq!(compact.offset().local_minus_utc(), 7200);
        let negative = parse_timestamp("2025-10-19T10:54:43-0500").unwrap();
        assert_eq!(negative.timestamp(), 1_760_889_283);
        let fraction = parse_timestamp("2025-10-19T17:54:43.250+0200").unwrap();
        assert_eq!(fraction.timestamp_subsec_millis(), 250);
    }

    #[test]
    fn timestamps_without_offset_or_date_are_refused_with_a_reason() {
        let e = parse_timestamp("2025-10-19T17:54:43").unwrap_err();
        assert!(e.contains("has no UTC offset"), "{e}");
        let e = parse_timestamp("yesterday").unwrap_err();
        assert!(
            e.contains("\"yesterday\" is not an ISO 8601 date-time"),
            "{e}"
        );
        assert!(parse_timestamp("2025-10-19").is_err());
        assert!(parse_timestamp("2025-13-19T17:54:43Z").is_err());
    }

    #[test]
    fn long_client_text_is_cut_in_messages() {
        let long = "x".repeat(500);
        let e = parse_timestamp(&long).unwrap_err();
        assert!(e.len() < 200, "{e}");
        assert_eq!(shorten("äöü", 2), "äö…");
        assert_eq!(shorten("ab", 2), "ab");
    }

    #[test]
    fn object_only_refuses_arrays() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Two {
            a: u8,
            b: u8,
        }
        let seed = || ObjectSeed::<Two> {
            expecting: "a pair object",
            marker: PhantomData,
        };
        let mut de = serde_json::Deserializer::from_str("[1, 2]");
        let e = seed().deserialize(&mut de).unwrap_err().to_string();
        assert!(
            e.contains("invalid type: sequence, expected a pair object"),
            "{e}"
        );
        let mut de = serde_json::Deserializer::from_str(r#"{"a": 1, "b": 2}"#);
        let ok = seed().deserialize(&mut de).unwrap();
        assert_eq!((ok.a, ok.b), (1, 2));
    }
}
