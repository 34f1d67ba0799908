//! Parsing a body into a payload model, and [`ParseError`]: "not JSON" versus "JSON of the
//! wrong shape", each with a message a device owner can act on.

use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::DeserializeSeed;
use serde_json::error::Category;
use serde_path_to_error::Segment;

use crate::de::{ObjectSeed, shorten};

/// The longest message kept from the JSON parser (it may quote the client's text).
const MESSAGE_MAX_CHARS: usize = 160;

/// Why a body could not be read as a push.
///
/// Both kinds are the client's fault (an HTTP server answers 422, never 500); the kinds differ
/// in what the client has to fix: the JSON text itself, or a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON: a syntax error, trailing text after the document, or the body ends
    /// early (truncated).
    #[error("the body is not valid JSON: {message} at line {line} column {column}")]
    NotJson {
        /// What the JSON parser found, e.g. "EOF while parsing an object".
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The body is JSON but not a push: a field is missing or has the wrong type or value.
    #[error("{}", shape_text(.path, .message))]
    WrongShape {
        /// The field as a client writes it, e.g. `inverters[1].measurements.power_ac`; empty
        /// when the document itself has the wrong type.
        path: String,
        /// What is wrong with it, e.g. "missing field" or "invalid type: string \"x\",
        /// expected a number".
        message: String,
        /// 1-based line where the parser stopped.
        line: usize,
        /// 1-based column where the parser stopped.
        column: usize,
    },
}

impl ParseError {
    /// The field path of a [`ParseError::WrongShape`] (`None` for [`ParseError::NotJson`]).
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::NotJson { .. } => None,
            Self::WrongShape { path, .. } => Some(path),
        }
    }

    /// Line and column (1-based) where the parser stopped.
    pub fn position(&self) -> (usize, usize) {
        match self {
            Self::NotJson { line, column, .. } | Self::WrongShape { line, column, .. } => {
                (*line, *column)
            }
        }
    }
}

fn shape_text(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_owned()
    } else {
        format!("{path}: {message}")
    }
}

/// Parses one JSON object of type `T` from `body` (the whole body: trailing text is an error).
///
/// A valid body is parsed once, without tracking where the parser is (the common case, and
/// path tracking doubles the parse's cost); an invalid one is parsed again with tracking, for
/// an error naming the field.
pub(crate) fn parse_json<'de, T: Deserialize<'de>>(
    body: &'de [u8],
    expecting: &'static str,
) -> Result<T, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let seed = ObjectSeed::<T> {
        expecting,
        marker: PhantomData,
    };
    if let Ok(value) = seed.deserialize(&mut de)
        && de.end().is_ok()
    {
        return Ok(value);
    }
    parse_json_tracked(body, expecting)
}

/// [`parse_json`] tracking the path, so that an error names the field where it happened.
fn parse_json_tracked<'de, T: Deserialize<'de>>(
    body: &'de [u8],
    expecting: &'static str,
) -> Result<T, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let mut track = serde_path_to_error::Track::new();
    let seed = ObjectSeed::<T> {
        expecting,
        marker: PhantomData,
    };
    let value = seed
        .deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track))
        .map_err(|e| from_json(Some(&track.path()), &e))?;
    de.end().map_err(|e| from_json(None, &e))?;
    Ok(value)
}

/// Maps a serde_json error and the path where it happened to a [`ParseError`].
fn from_json(path: Option<&serde_path_to_error::Path>, e: &serde_json::Error) -> ParseError {
    let (line, column) = (e.line(), e.column());
    let message = bare_message(e);
    match e.classify() {
        Category::Io | Category::Syntax | Category::Eof => ParseError::NotJson {
            message,
            line,
            column,
        },
        Category::Data => {
            let mut path = path.map(render_path).unwrap_or_default();
            let message = match missing_or_duplicate(&message) {
                // serde reports a missing field at its parent; name the field itself instead.
                Some((what, field)) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(field);
                    what.to_owned()
                }
                None => message,
            };
            ParseError::WrongShape {
                path,
                message,
                line,
                column,
            }
        }
    }
}

/// serde_json's message without its " at line L column C" suffix, cut to a sane length.
fn bare_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let bare = full.strip_suffix(&suffix).unwrap_or(&full);
    shorten(bare, MESSAGE_MAX_CHARS)
}

/// Splits "missing field `x`" into ("missing field", "x"); likewise "duplicate field".
fn missing_or_duplicate(message: &str) -> Option<(&'static str, &str)> {
    for what in ["missing field", "duplicate field"] {
        if let Some(rest) = message.strip_prefix(what) {
            return rest
                .strip_prefix(" `")?
                .strip_suffix('`')
                .map(|field| (what, field));
        }
    }
    None
}

/// `inverters[1].measurements.power_ac`; empty for the document itself.
fn render_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        a: u8,
        b: String,
    }

    fn parse(body: &str) -> Result<Outer, ParseError> {
        parse_json(body.as_bytes(), "an outer object")
    }

    #[test]
    fn wrong_type_names_the_nested_path() {
        let e = parse(r#"{"items": [{"a": 1, "b": "x"}, {"a": "one", "b": "y"}]}"#).unwrap_err();
        assert_eq!(e.path(), Some("items[1].a"));
        assert!(
            e.to_string()
                .starts_with("items[1].a: invalid type: string \"one\""),
            "{e}"
        );
        assert_eq!(e.position(), (1, 42), "the column just after the bad value");
    }

    #[test]
    fn missing_field_is_named_as_the_field() {
        let e = parse(r#"{"items": [{"a": 1}]}"#).unwrap_err();
        assert_eq!(e.to_string(), "items[0].b: missing field");
        let e = parse(r#"{}"#).unwrap_err();
        assert_eq!(e.to_string(), "items: missing field");
        let e = parse(r#"{"items": [], "items": []}"#).unwrap_err();
        assert_eq!(e.to_string(), "items: duplicate field");
    }

    #[test]
    fn syntax_errors_eof_and_trailing_text_are_not_json() {
        for body in [
            "",
            "{",
            r#"{"items": [}"#,
            r#"{"items": []} x"#,
            "\u{feff}{}",
            "nul",
        ] {
            let e = parse(body).unwrap_err();
            assert!(matches!(e, ParseError::NotJson { .. }), "{body:?}: {e:?}");
            assert!(
                e.to_string().starts_with("the body is not valid JSON: "),
                "{e}"
            );
            assert!(e.to_string().contains(" at line 1 column "), "{e}");
        }
        let e = parse_json::<Outer>(b"{\"items\": [\xff]}", "x").unwrap_err();
        assert!(matches!(e, ParseError::NotJson { .. }), "{e:?}");
    }

    #[test]
    fn a_document_of_the_wrong_type_has_an_empty_path() {
        for (body, found) in [
            ("[1,2,3]", "sequence"),
            ("42", "integer `42`"),
            ("null", "null"),
        ] {
            let e = parse(body).unwrap_err();
            assert_eq!(e.path(), Some(""), "{body}");
            assert_eq!(
                e.to_string(),
                format!("invalid type: {found}, expected an outer object")
            );
        }
    }

    #[test]
    fn quoted_client_text_is_cut() {
        let body = format!(
            r#"{{"items": [{{"a": "{}", "b": ""}}]}}"#,
            "z".repeat(10_000)
        );
        let e = parse(&body).unwrap_err();
        assert!(e.to_string().len() < 250, "{}", e.to_string().len());
    }
}
