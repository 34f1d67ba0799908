//! Every sample body parses, validates and converts with the right values and units.

use deyehard_core::Source;
use deyehard_opendtu::{parse, validate};

use crate::{HMT, README, TWO, utc};

#[test]
fn readme_example_parses_with_every_value() {
    let push = parse(README).unwrap();
    assert_eq!(push.dtu_serial.as_str(), "145680140006");
    assert_eq!(push.timestamp.to_rfc3339(), "2025-10-19T17:54:43+02:00");
    let inv = &push.inverters[0];
    assert_eq!(
        (inv.serial.as_str(), inv.name.as_str()),
        ("116166771004", "Inverter 1")
    );
    assert!(inv.reachable && inv.producing);
    assert_eq!(inv.last_update, 1_760_889_277);
    assert_eq!(
        inv.measurements.power_dc,
        Some(17.0),
        "an integer JSON number"
    );
    assert_eq!(inv.dc_channels[0].yield_total, Some(444.671));
    validate(&push, utc(2025, 10, 19, 15, 55, 0)).unwrap();
}

#[test]
fn readme_example_converts_at_full_precision() {
    let push = parse(README).unwrap();
    let readings = push.readings();
    assert_eq!(readings.len(), 1);
    let ir = &readings[0];
    assert_eq!(ir.last_update, Some(utc(2025, 10, 19, 15, 54, 37)));
    assert_eq!(ir.offline, None);
    let r = &ir.reading;
    assert_eq!(
        r.time,
        utc(2025, 10, 19, 15, 54, 43),
        "local +02:00 becomes UTC"
    );
    assert_eq!(r.source, Source::Opendtu);
    assert_eq!(r.power_ac_w, Some(16.1));
    assert_eq!(r.voltage_ac_v, Some(229.8));
    assert_eq!(r.current_ac_a, Some(0.07));
    assert_eq!(r.frequency_hz, Some(49.99));
    assert_eq!(r.power_factor, Some(0.617));
    assert_eq!(r.power_dc_w, Some(17.0));
    assert_eq!(r.temperature_c, None);
    assert_eq!(r.yield_day_wh, Some(337.0));
    assert_eq!(r.yield_total_wh, Some(444_671.0));
    assert!(r.reachable && r.producing);
    let dc = &r.dc[0];
    assert_eq!((dc.channel, dc.name.as_deref()), (1, Some("Panel 1")));
    assert_eq!(
        (dc.power_w, dc.voltage_v, dc.current_a),
        (Some(3.4), Some(30.4), Some(0.11))
    );
    assert_eq!(
        (dc.yield_day_wh, dc.yield_total_wh),
        (Some(337.0), Some(444_671.0))
    );
    assert_eq!(dc.irradiation_pct, Some(1.545455));
}

#[test]
fn two_inverters_sum_their_channels_without_truncating() {
    let push = parse(TWO).unwrap();
    validate(&push, utc(2025, 7, 2, 8, 15, 30)).unwrap();
    let readings = push.readings();
    let serials: Vec<&str> = readings.iter().map(|r| r.serial.as_str()).collect();
    assert_eq!(serials, ["114172608815", "112183110042"]);

    let west = &readings[0].reading;
    assert_eq!(west.time, utc(2025, 7, 2, 8, 15, 0));
    assert_eq!(west.power_ac_w, Some(401.7));
    assert_eq!(west.power_factor, Some(1.0));
    assert_eq!(west.yield_day_wh, Some(1390.0));
    // The original truncated each channel's kWh before summing (6218 kWh); we keep every Wh.
    assert_eq!(west.yield_total_wh, Some(6_219_017.0));
    assert_eq!(west.dc.len(), 2);
    assert!(
        west.dc.iter().all(|dc| dc.name.is_none()),
        "empty names are absent"
    );
    assert_eq!(
        west.dc[1].irradiation_pct,
        Some(0.0),
        "0 = no max power configured"
    );

    let garden = &readings[1].reading;
    assert_eq!(readings[1].name, "Gartenhaus");
    assert_eq!(garden.power_ac_w, Some(288.0));
    assert_eq!(garden.voltage_ac_v, Some(230.0));
    assert_eq!(garden.frequency_hz, Some(50.0));
    assert_eq!(garden.yield_day_wh, Some(1011.0));
    assert_eq!(garden.yield_total_wh, Some(877_500.0));
    assert_eq!(readings[1].last_update, Some(utc(2025, 7, 2, 8, 14, 59)));
}

#[test]
fn hmt_with_six_inputs_keeps_every_channel() {
    let push = parse(HMT).unwrap();
    validate(&push, utc(2025, 8, 20, 13, 0, 2)).unwrap();
    let ir = &push.readings()[0];
    assert_eq!(ir.name, "Scheune");
    let r = &ir.reading;
    assert_eq!(r.time, utc(2025, 8, 20, 13, 0, 2));
    assert_eq!(
        r.voltage_ac_v,
        Some(401.3),
        "the L1-L2 voltage of a three-phase inverter"
    );
    assert_eq!(r.current_ac_a, Some(9.15));
    assert_eq!(r.power_dc_w, Some(2198.9));
    let channels: Vec<u8> = r.dc.iter().map(|dc| dc.channel).collect();
    assert_eq!(channels, [1, 2, 3, 4, 5, 6]);
    assert_eq!(r.dc[5].name.as_deref(), Some("S6"));
    assert_eq!(r.dc[5].yield_total_wh, Some(5_066_600.0));
    assert_eq!(r.dc[0].yield_total_wh, Some(5_120_004.0));
    assert_eq!(r.dc[2].current_a, Some(10.14));
    assert_eq!(r.yield_day_wh, Some(15_695.0));
    assert_eq!(r.yield_total_wh, Some(30_504_032.0));
    assert!(r.reachable && r.producing);
}

#[test]
fn a_push_serializes_back_into_a_body_that_parses_the_same() {
    for sample in [README, TWO, HMT] {
        let push = parse(sample).unwrap();
        let again = parse(&serde_json::to_vec(&push).unwrap()).unwrap();
        assert_eq!(again, push);
    }
}
