//! The response bodies keep the original backend's shape.

use deyehard_core::{DeviceSerial, InverterId};
use deyehard_opendtu::{
    DeviceResult, InverterResult, Outcome, PushResponse, ResultStatus, VictronResponse, parse,
    victron,
};
use serde_json::json;

use crate::TWO;

fn serial(s: &str) -> DeviceSerial {
    DeviceSerial::parse(s).unwrap()
}

#[test]
fn a_mixed_push_has_the_original_shape() {
    let push = parse(TWO).unwrap();
    let results = vec![
        InverterResult::ok(serial("114172608815"), InverterId::new(7), Some(401.7)),
        InverterResult::error(
            serial("112183110042"),
            "Inverter 112183110042 is not registered",
        ),
    ];
    let response = PushResponse::new(&push, results);
    assert_eq!(response.outcome(), Outcome::SomeStored);
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({
            "dtu_serial": "199980155512",
            "timestamp": "2025-07-02T10:15:00+02:00",
            "total_inverters": 2,
            "success_count": 1,
            "error_count": 1,
            "results": [
                { "serial": "114172608815", "status": "ok", "inverter_id": 7, "power_ac": 401.7 },
                { "serial": "112183110042", "status": "error", "error": "Inverter 112183110042 is not registered" }
            ]
        })
    );
    let back: PushResponse =
        serde_json::from_value(serde_json::to_value(&response).unwrap()).unwrap();
    assert_eq!(back, response);
}

#[test]
fn outcomes_follow_the_counts() {
    let push = parse(TWO).unwrap();
    let ok = |s: &str| InverterResult::ok(serial(s), InverterId::new(1), None);
    let err = |s: &str| InverterResult::error(serial(s), "Unauthorized");
    let all = PushResponse::new(&push, vec![ok("114172608815"), ok("112183110042")]);
    assert_eq!(
        (all.outcome(), all.success_count, all.error_count),
        (Outcome::AllStored, 2, 0)
    );
    let none = PushResponse::new(&push, vec![err("114172608815"), err("112183110042")]);
    assert_eq!(
        (none.outcome(), none.success_count, none.error_count),
        (Outcome::NoneStored, 0, 2)
    );
    assert_eq!(none.results[0].status, ResultStatus::Error);
    let mut empty_push = push.clone();
    empty_push.inverters.clear();
    assert_eq!(
        PushResponse::new(&empty_push, Vec::new()).outcome(),
        Outcome::AllStored
    );
}

#[test]
fn the_victron_response_has_the_original_shape() {
    let push = victron::parse(include_bytes!("../fixtures/victron/two-chargers.json")).unwrap();
    let response = VictronResponse::new(
        &push,
        vec![
            DeviceResult::ok(serial("HQ22345ABCD"), InverterId::new(3), Some(245.5)),
            DeviceResult::error(serial("HQ2311PLM4Z"), "Device HQ2311PLM4Z not found"),
        ],
    );
    assert_eq!(response.outcome(), Outcome::SomeStored);
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({
            "cerbo_serial": "HQ2345ABCDE",
            "timestamp": "2025-10-30T14:32:15+01:00",
            "total_devices": 2,
            "success_count": 1,
            "error_count": 1,
            "results": [
                { "device_identifier": "HQ22345ABCD", "status": "ok", "inverter_id": 3, "yield_power_w": 245.5 },
                { "device_identifier": "HQ2311PLM4Z", "status": "error", "error": "Device HQ2311PLM4Z not found" }
            ]
        })
    );
}
