//! What parsing accepts: timestamp forms, integer or float or numeric-string numbers, unknown
//! fields, empty and missing lists and names, `null` values.

use deyehard_opendtu::{Offline, ParseError, parse};
use serde_json::json;

use crate::{README, body, json, utc};

#[test]
fn timestamps_with_z_colon_or_compact_offsets_are_the_same_instant() {
    let mut v = json(README);
    for ts in [
        "2025-10-19T15:54:43Z",
        "2025-10-19T17:54:43+02:00",
        "2025-10-19T17:54:43+0200",
        "2025-10-19T10:54:43-05:00",
    ] {
        v["timestamp"] = ts.into();
        let push = parse(&body(&v)).unwrap();
        assert_eq!(
            push.timestamp.to_utc(),
            utc(2025, 10, 19, 15, 54, 43),
            "{ts}"
        );
        assert_eq!(
            push.readings()[0].reading.time,
            utc(2025, 10, 19, 15, 54, 43),
            "{ts}"
        );
    }
}

#[test]
fn a_timestamp_without_offset_is_refused() {
    let mut v = json(README);
    v["timestamp"] = "2025-10-19T17:54:43".into();
    let e = parse(&body(&v)).unwrap_err();
    assert!(matches!(e, ParseError::WrongShape { .. }));
    assert!(
        e.to_string()
            .starts_with("timestamp: \"2025-10-19T17:54:43\" has no UTC offset"),
        "{e}"
    );
}

#[test]
fn integers_floats_and_numeric_strings_read_the_same() {
    let mut v = json(README);
    let mut seen = Vec::new();
    for n in [json!(16), json!(16.0), json!("16"), json!(" 16.0 ")] {
        v["inverters"][0]["measurements"]["power_ac"] = n;
        v["inverters"][0]["dc_channels"][0]["yield_day"] = json!(337.0);
        v["inverters"][0]["dc_channels"][0]["channel"] = json!(1.0);
        v["inverters"][0]["last_update"] = json!("1760889277");
        let push = parse(&body(&v)).unwrap();
        seen.push(push.readings()[0].clone());
    }
    assert_eq!(seen[0].reading.power_ac_w, Some(16.0));
    assert_eq!(seen[0].reading.yield_day_wh, Some(337.0));
    assert!(seen.iter().all(|r| *r == seen[0]));
}

#[test]
fn unknown_fields_are_ignored_at_every_level() {
    let plain = parse(README).unwrap();
    let mut v = json(README);
    v["firmware"] = "v24.10.15".into();
    v["inverters"][0]["temperature"] = json!(31.5);
    v["inverters"][0]["limits"] = json!({"relative": 100});
    v["inverters"][0]["measurements"]["reactive_power"] = json!(0.2);
    v["inverters"][0]["dc_channels"][0]["max_power"] = json!(220);
    assert_eq!(parse(&body(&v)).unwrap(), plain);
}

#[test]
fn empty_missing_or_null_channel_lists_give_no_yields() {
    for dc in [Some(json!([])), Some(json!(null)), None] {
        let mut v = json(README);
        match dc {
            Some(dc) => v["inverters"][0]["dc_channels"] = dc,
            None => {
                v["inverters"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("dc_channels");
            }
        }
        let push = parse(&body(&v)).unwrap();
        let r = &push.readings()[0].reading;
        assert!(r.dc.is_empty());
        assert_eq!(
            (r.yield_day_wh, r.yield_total_wh),
            (None, None),
            "no channels, no inverter yields"
        );
        assert_eq!(r.power_ac_w, Some(16.1));
    }
}

#[test]
fn empty_and_null_names_and_null_values_are_absent() {
    let mut v = json(README);
    v["inverters"][0]["name"] = json!(null);
    v["inverters"][0]["dc_channels"][0]["name"] = json!("");
    v["inverters"][0]["measurements"]["power_factor"] = json!(null);
    v["inverters"][0]["measurements"]
        .as_object_mut()
        .unwrap()
        .remove("frequency");
    v["inverters"][0]["dc_channels"][0]["yield_total"] = json!(null);
    let push = parse(&body(&v)).unwrap();
    let ir = &push.readings()[0];
    assert_eq!(ir.name, "");
    let r = &ir.reading;
    assert_eq!((r.power_factor, r.frequency_hz), (None, None));
    assert_eq!(r.dc[0].name, None);
    assert_eq!(r.dc[0].yield_total_wh, None);
    assert_eq!(r.yield_total_wh, None, "a partial sum would be wrong");
    assert_eq!(r.yield_day_wh, Some(337.0));
}

#[test]
fn last_update_zero_means_no_data_and_the_reading_is_offline() {
    let mut v = json(README);
    v["inverters"][0]["last_update"] = json!(0);
    let ir = &parse(&body(&v)).unwrap().readings()[0];
    assert_eq!((ir.last_update, ir.offline), (None, Some(Offline::NoData)));
    assert!(!ir.reading.reachable && !ir.reading.producing);
    assert_eq!(ir.reading.power_ac_w, Some(16.1), "values are kept");
}

#[test]
fn stale_or_unreachable_readings_are_offline_and_not_producing() {
    let ts = 1_760_889_283_i64;
    let mut v = json(README);
    v["inverters"][0]["last_update"] = json!(ts - 181);
    let push = parse(&body(&v)).unwrap();
    let ir = &push.readings()[0];
    assert_eq!(
        ir.offline,
        Some(Offline::Stale {
            age: chrono::TimeDelta::seconds(181)
        })
    );
    assert!(!ir.reading.reachable && !ir.reading.producing);
    assert_eq!(
        ir.reading.yield_total_wh,
        Some(444_671.0),
        "counters are kept"
    );
    let relaxed = &push.readings_with(chrono::TimeDelta::minutes(5))[0];
    assert_eq!(relaxed.offline, None);
    assert!(relaxed.reading.reachable && relaxed.reading.producing);

    v["inverters"][0]["last_update"] = json!(ts - 180);
    assert_eq!(
        parse(&body(&v)).unwrap().readings()[0].offline,
        None,
        "3 intervals is still live"
    );

    // At night OpenDTU keeps `producing: true` on the cached dusk power of an unreachable inverter.
    v["inverters"][0]["reachable"] = json!(false);
    let ir = &parse(&body(&v)).unwrap().readings()[0];
    assert_eq!(ir.offline, Some(Offline::Unreachable));
    assert!(!ir.reading.reachable && !ir.reading.producing);
    assert_eq!(ir.reading.power_ac_w, Some(16.1));
}

#[test]
fn a_live_inverter_that_says_it_is_not_producing_is_reachable_and_idle() {
    let mut v = json(README);
    v["inverters"][0]["producing"] = json!(false);
    let r = &parse(&body(&v)).unwrap().readings()[0].reading;
    assert!(r.reachable && !r.producing);
}

#[test]
fn small_negative_noise_becomes_zero() {
    let mut v = json(README);
    v["inverters"][0]["measurements"]["power_ac"] = json!(-0.1);
    v["inverters"][0]["dc_channels"][0]["current"] = json!(-0.01);
    v["inverters"][0]["measurements"]["power_factor"] = json!(-0.5);
    let push = parse(&body(&v)).unwrap();
    deyehard_opendtu::validate(&push, utc(2025, 10, 19, 15, 55, 0)).unwrap();
    let r = &push.readings()[0].reading;
    assert_eq!(r.power_ac_w, Some(0.0));
    assert_eq!(r.dc[0].current_a, Some(0.0));
    assert_eq!(r.power_factor, Some(-0.5), "a signed power factor is kept");
}

#[test]
fn channels_come_out_in_channel_order() {
    let mut v = json(crate::HMT);
    v["inverters"][0]["dc_channels"]
        .as_array_mut()
        .unwrap()
        .reverse();
    let r = &parse(&body(&v)).unwrap().readings()[0].reading;
    let channels: Vec<u8> = r.dc.iter().map(|dc| dc.channel).collect();
    assert_eq!(channels, [1, 2, 3, 4, 5, 6]);
}
