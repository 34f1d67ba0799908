//! The Victron push: parsing, conversion (trackers → 1-based DC channels, kWh → Wh, current
//! from power / voltage) and validation.

use deyehard_core::Source;
use deyehard_opendtu::{Offline, victron};
use serde_json::json;

use crate::{body, json, utc};

const TWO_CHARGERS: &[u8] = include_bytes!("../fixtures/victron/two-chargers.json");

#[test]
fn the_sample_parses_and_validates() {
    let push = victron::parse(TWO_CHARGERS).unwrap();
    assert_eq!(push.cerbo_serial.as_str(), "HQ2345ABCDE");
    assert_eq!(push.devices.len(), 2);
    assert_eq!(push.devices[1].yield_power_w, Some(3120.0));
    victron::validate(&push, utc(2025, 10, 30, 13, 33, 0)).unwrap();
}

#[test]
fn a_single_tracker_charger_converts() {
    let push = victron::parse(TWO_CHARGERS).unwrap();
    let ir = &push.readings()[0];
    assert_eq!(
        (ir.serial.as_str(), ir.name.as_str()),
        ("HQ22345ABCD", "SmartSolar MPPT 150/35")
    );
    assert_eq!(ir.last_update, Some(utc(2025, 10, 30, 13, 32, 11)));
    assert_eq!(ir.offline, None);
    let r = &ir.reading;
    assert_eq!(r.source, Source::Victron);
    assert_eq!(r.time, utc(2025, 10, 30, 13, 32, 15));
    assert_eq!(r.power_ac_w, Some(245.5));
    assert_eq!(r.yield_total_wh, Some(1_234_560.0));
    assert_eq!(r.yield_day_wh, None, "Victron sends no day counter");
    assert_eq!(r.power_dc_w, Some(245.5));
    assert!(r.reachable && r.producing);
    let dc = &r.dc[0];
    assert_eq!(
        (dc.channel, dc.name.as_deref()),
        (1, Some("PV-1")),
        "tracker 0 is channel 1"
    );
    assert_eq!((dc.power_w, dc.voltage_v), (Some(245.5), Some(48.3)));
    assert_eq!(dc.current_a, Some(245.5 / 48.3));
    assert_eq!(
        (dc.yield_day_wh, dc.yield_total_wh, dc.irradiation_pct),
        (None, None, None)
    );
}

#[test]
fn a_multi_tracker_charger_converts() {
    let push = victron::parse(TWO_CHARGERS).unwrap();
    let r = &push.readings()[1].reading;
    let channels: Vec<u8> = r.dc.iter().map(|dc| dc.channel).collect();
    assert_eq!(channels, [1, 2, 3, 4]);
    assert_eq!(r.dc[2].name.as_deref(), Some("Süd"));
    assert_eq!(r.dc[3].name, None);
    assert_eq!(r.dc[3].current_a, None, "no current without a voltage");
    assert_eq!(r.dc[1].current_a, Some(1150.5 / 298.0));
    assert_eq!(r.power_dc_w, Some(3181.0));
    assert_eq!(r.power_ac_w, Some(3120.0));
    assert_eq!(r.yield_total_wh, Some(18_842_125.0));
}

#[test]
fn optional_fields_have_sensible_defaults() {
    let minimal = json!({
        "timestamp": "2025-10-30T14:32:15+0100", "cerbo_serial": "HQ2345ABCDE",
        "devices": [
            { "serial": "HQ1", "yield_power_w": "12.5" },
            { "serial": "HQ2", "yield_power_w": 0, "trackers": null },
            { "serial": "HQ3", "last_update": 0, "reachable": true }
        ]
    });
    let push = victron::parse(&body(&minimal)).unwrap();
    victron::validate(&push, utc(2025, 10, 30, 13, 33, 0)).unwrap();
    let readings = push.readings();
    assert!(
        readings[0].reading.reachable && readings[0].reading.producing,
        "producing: power above 0"
    );
    assert!(readings[1].reading.reachable && !readings[1].reading.producing);
    assert_eq!(readings[1].reading.dc, []);
    assert_eq!(readings[2].offline, Some(Offline::NoData));
    assert_eq!(readings[2].reading.power_ac_w, None);
}

#[test]
fn unreachable_or_stale_devices_are_offline() {
    let mut v = json(TWO_CHARGERS);
    v["devices"][0]["reachable"] = json!(false);
    v["devices"][1]["last_update"] = json!(1_761_831_135 - 600);
    let readings = victron::parse(&body(&v)).unwrap().readings();
    assert_eq!(readings[0].offline, Some(Offline::Unreachable));
    assert!(matches!(readings[1].offline, Some(Offline::Stale { .. })));
    assert!(
        readings
            .iter()
            .all(|r| !r.reading.reachable && !r.reading.producing)
    );
}

#[test]
fn parse_errors_name_the_device_field() {
    let mut v = json(TWO_CHARGERS);
    v["devices"][1]["trackers"][2]["power"] = json!({"w": 1});
    let e = victron::parse(&body(&v)).unwrap_err();
    assert_eq!(e.path(), Some("devices[1].trackers[2].power"));
    let e = victron::parse(b"[]").unwrap_err();
    assert!(e.to_string().contains("expected a Victron push"), "{e}");
}

#[test]
fn tracker_numbers_are_0_to_15_and_unique() {
    let mut v = json(TWO_CHARGERS);
    v["devices"][1]["trackers"][1]["tracker"] = json!(0);
    v["devices"][1]["trackers"][3]["tracker"] = json!(16);
    v["devices"][0]["yield_total_kwh"] = json!(-3);
    let push = victron::parse(&body(&v)).unwrap();
    let err = victron::validate(&push, utc(2025, 10, 30, 13, 33, 0)).unwrap_err();
    let messages: Vec<String> = err.issues().iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "devices[0] (serial HQ22345ABCD): yield_total_kwh is -3, expected a finite number of at least -1",
            "devices[1] (serial HQ2311PLM4Z): trackers[1].tracker is 0, which trackers[0] already uses",
            "devices[1] (serial HQ2311PLM4Z): trackers[3].tracker is 16, expected 0 to 15",
        ]
    );
}

#[test]
fn the_timestamp_rule_applies_too() {
    let push = victron::parse(TWO_CHARGERS).unwrap();
    let err = victron::validate(&push, utc(2025, 10, 30, 13, 0, 0)).unwrap_err();
    assert!(
        err.to_string()
            .contains("is 32 min 15 s ahead of the server clock"),
        "{err}"
    );
}
