//! The plausibility rules: timestamp window, sizes, channel numbers, duplicates, values.

use chrono::TimeDelta;
use deyehard_opendtu::{Limits, Push, ValidationIssue, parse, validate, validate_with};
use serde_json::json;

use crate::{HMT, README, TWO, body, json, utc};

fn readme_with(edit: impl FnOnce(&mut serde_json::Value)) -> Push {
    let mut v = json(README);
    edit(&mut v);
    parse(&body(&v)).unwrap()
}

/// The push time of the readme sample.
fn push_time() -> chrono::DateTime<chrono::Utc> {
    utc(2025, 10, 19, 15, 54, 43)
}

#[test]
fn a_timestamp_up_to_ten_minutes_ahead_is_accepted() {
    let push = parse(README).unwrap();
    validate(&push, push_time() - TimeDelta::minutes(10)).unwrap();
    validate(&push, push_time() - TimeDelta::minutes(9)).unwrap();
    validate(&push, push_time() + TimeDelta::days(30)).unwrap();
}

#[test]
fn a_timestamp_further_ahead_is_refused_saying_by_how_much() {
    let push = parse(README).unwrap();
    let err = validate(&push, push_time() - TimeDelta::seconds(11 * 60 + 5)).unwrap_err();
    assert!(matches!(
        err.issues(),
        [ValidationIssue::TimestampInFuture { .. }]
    ));
    assert_eq!(
        err.to_string(),
        "timestamp: 2025-10-19T17:54:43+02:00 is 11 min 5 s ahead of the server clock \
         (2025-10-19T15:43:38Z); at most 10 min 0 s is accepted"
    );
}

#[test]
fn a_timestamp_before_2020_is_refused() {
    let push = readme_with(|v| v["timestamp"] = "2019-12-31T23:59:59Z".into());
    let err = validate(&push, push_time()).unwrap_err();
    assert!(
        err.to_string()
            .contains("is 1 s before the earliest accepted time 2020-01-01T00:00:00Z"),
        "{err}"
    );
    let push = readme_with(|v| v["timestamp"] = "2020-01-01T01:00:00+01:00".into());
    validate(&push, push_time()).unwrap();
}

#[test]
fn channel_numbers_must_be_1_to_16_and_unique() {
    let push = readme_with(|v| {
        let ch = v["inverters"][0]["dc_channels"][0].clone();
        let mut list = Vec::new();
        for n in [1, 17, 0, 1] {
            let mut c = ch.clone();
            c["channel"] = json!(n);
            list.push(c);
        }
        v["inverters"][0]["dc_channels"] = json!(list);
    });
    let err = validate(&push, push_time()).unwrap_err();
    let messages: Vec<String> = err.issues().iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "inverters[0] (serial 116166771004): dc_channels[1].channel is 17, expected 1 to 16",
            "inverters[0] (serial 116166771004): dc_channels[2].channel is 0, expected 1 to 16",
            "inverters[0] (serial 116166771004): dc_channels[3].channel is 1, which dc_channels[0] already uses",
        ]
    );
    assert_eq!(err.to_string(), messages.join("; "));
}

#[test]
fn sizes_are_limited() {
    let mut v = json(HMT);
    let inv = v["inverters"][0].clone();
    let many: Vec<_> = (0..65)
        .map(|i| {
            let mut inv = inv.clone();
            inv["serial"] = json!(format!("1382900{i:05}"));
            inv
        })
        .collect();
    v["inverters"] = json!(many);
    let push = parse(&body(&v)).unwrap();
    let err = validate(&push, utc(2025, 8, 20, 13, 0, 0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "inverters: 65 entries, at most 64 are accepted"
    );

    let limits = Limits {
        max_devices: 100,
        max_channels: 5,
        ..Limits::default()
    };
    let err = validate_with(&push, utc(2025, 8, 20, 13, 0, 0), &limits).unwrap_err();
    assert_eq!(
        err.issues().len(),
        65 * 2,
        "one count and one range issue per inverter"
    );
    assert_eq!(
        err.issues()[0].to_string(),
        "inverters[0] (serial 138290000000): dc_channels has 6 entries, at most 5 are accepted"
    );
    assert_eq!(
        err.issues()[1].to_string(),
        "inverters[0] (serial 138290000000): dc_channels[5].channel is 6, expected 1 to 5"
    );
}

#[test]
fn a_serial_may_appear_once() {
    let mut v = json(TWO);
    v["inverters"][1]["serial"] = v["inverters"][0]["serial"].clone();
    let err = validate(&parse(&body(&v)).unwrap(), utc(2025, 7, 2, 8, 15, 0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "inverters[1] (serial 114172608815): the serial also appears at inverters[0]"
    );
}

#[test]
fn values_far_below_zero_or_a_power_factor_beyond_one_are_refused() {
    let push = readme_with(|v| {
        v["inverters"][0]["measurements"]["power_ac"] = json!(-5);
        v["inverters"][0]["measurements"]["power_factor"] = json!(1.2);
        v["inverters"][0]["dc_channels"][0]["yield_total"] = json!(-444.671);
    });
    let err = validate(&push, push_time()).unwrap_err();
    let messages: Vec<String> = err.issues().iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "inverters[0] (serial 116166771004): measurements.power_ac is -5, expected a finite number of at least -1",
            "inverters[0] (serial 116166771004): measurements.power_factor is 1.2, expected a number from -1 to 1",
            "inverters[0] (serial 116166771004): dc_channels[0].yield_total is -444.671, expected a finite number of at least -1",
        ]
    );
}

#[test]
fn values_that_are_not_finite_are_refused() {
    // JSON cannot carry NaN, but an embedder can build a push by hand.
    let mut push = parse(README).unwrap();
    push.inverters[0].measurements.voltage_ac = Some(f64::NAN);
    push.inverters[0].measurements.power_factor = Some(f64::NAN);
    push.inverters[0].dc_channels[0].power = Some(f64::INFINITY);
    let err = validate(&push, push_time()).unwrap_err();
    let fields: Vec<&str> = err
        .issues()
        .iter()
        .map(|i| match i {
            ValidationIssue::BadValue { field, .. } => field.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        fields,
        [
            "measurements.voltage_ac",
            "measurements.power_factor",
            "dc_channels[0].power"
        ]
    );
    assert!(
        err.to_string().contains("measurements.voltage_ac is NaN"),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let push = readme_with(|v| {
        v["timestamp"] = "1970-01-01T00:00:00Z".into();
        v["inverters"][0]["dc_channels"][0]["channel"] = json!(99);
    });
    let err = validate(&push, push_time()).unwrap_err();
    assert!(matches!(
        err.issues(),
        [
            ValidationIssue::TimestampTooEarly { .. },
            ValidationIssue::ChannelOutOfRange { value: 99, .. }
        ]
    ));
}
