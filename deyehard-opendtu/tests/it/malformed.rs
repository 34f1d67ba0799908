//! Every malformed body gets the expected error kind and a message naming the field.

use deyehard_opendtu::{ParseError, ValidationIssue, parse, validate};

use crate::{TWO, body, json, utc};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/malformed/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

fn shape_error(name: &str) -> (String, String) {
    match parse(&fixture(name)) {
        Err(e @ ParseError::WrongShape { .. }) => (e.path().unwrap().to_owned(), e.to_string()),
        other => panic!("{name}: expected a shape error, got {other:?}"),
    }
}

#[test]
fn bad_timestamp_names_the_field_and_the_format() {
    let (path, msg) = shape_error("bad-timestamp.json");
    assert_eq!(path, "timestamp");
    assert!(
        msg.starts_with("timestamp: \"yesterday\" is not an ISO 8601 date-time"),
        "{msg}"
    );
}

#[test]
fn missing_timestamp_names_the_field() {
    let (path, msg) = shape_error("missing-timestamp.json");
    assert_eq!(path, "timestamp");
    assert_eq!(msg, "timestamp: missing field");
}

#[test]
fn not_an_object_says_what_was_expected() {
    let (path, msg) = shape_error("not-an-object.json");
    assert_eq!(path, "");
    assert!(
        msg.starts_with("invalid type: sequence, expected an OpenDTU push"),
        "{msg}"
    );
}

#[test]
fn truncated_body_is_not_json_with_a_position() {
    let e = parse(&fixture("truncated.json")).unwrap_err();
    let ParseError::NotJson {
        message,
        line,
        column,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert!(message.starts_with("EOF while parsing"), "{message}");
    assert_eq!(*line, 2, "the fixture ends with a newline");
    assert_eq!(*column, 0);
    assert_eq!(e.path(), None);
    assert!(
        e.to_string().starts_with("the body is not valid JSON: EOF"),
        "{e}"
    );
}

#[test]
fn wrong_types_name_the_first_bad_field() {
    let (path, msg) = shape_error("wrong-types.json");
    assert_eq!(path, "inverters[0].serial");
    assert!(
        msg.contains("integer `116166771004`, expected a string"),
        "{msg}"
    );

    // With the serial fixed, the next problem is the power given as a word.
    let mut v = json(&fixture("wrong-types.json"));
    v["inverters"][0]["serial"] = "116166771004".into();
    let e = parse(&body(&v)).unwrap_err();
    assert_eq!(e.path(), Some("inverters[0].measurements.power_ac"));
    assert!(
        e.to_string()
            .ends_with("string \"sixteen\", expected a number"),
        "{e}"
    );
}

#[test]
fn the_second_inverter_is_named_by_index() {
    let mut v = json(TWO);
    v["inverters"][1]["measurements"]["power_ac"] = "n/a".into();
    let e = parse(&body(&v)).unwrap_err();
    assert_eq!(e.path(), Some("inverters[1].measurements.power_ac"));

    let mut v = json(TWO);
    v["inverters"][1]["dc_channels"][0]
        .as_object_mut()
        .unwrap()
        .remove("channel");
    assert_eq!(
        parse(&body(&v)).unwrap_err().to_string(),
        "inverters[1].dc_channels[0].channel: missing field"
    );

    let mut v = json(TWO);
    v["inverters"][0]["serial"] = " ".into();
    assert_eq!(
        parse(&body(&v)).unwrap_err().to_string(),
        "inverters[0].serial: the value is empty"
    );
}

#[test]
fn clock_not_set_parses_but_fails_validation_saying_by_how_much() {
    let push = parse(&fixture("clock-not-set.json")).unwrap();
    let err = validate(&push, utc(2025, 10, 19, 15, 55, 0)).unwrap_err();
    assert!(
        matches!(err.issues(), [ValidationIssue::TimestampTooEarly { .. }]),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "timestamp: 1970-01-01T00:00:10Z is 18261 days 23 h before the earliest accepted time \
         2020-01-01T00:00:00Z (is the device clock set?)"
    );
}

#[test]
fn other_broken_bodies_are_errors_not_panics() {
    for b in [
        &b""[..],
        b"   ",
        b"{}",
        b"null",
        b"\"push\"",
        b"{\"timestamp\": 1}",
        b"\xff\xfe",
        b"{\"inverters\": {}}",
    ] {
        assert!(parse(b).is_err(), "{:?}", String::from_utf8_lossy(b));
    }
}
