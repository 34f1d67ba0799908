//! Open the embedded store, write readings for one tenant, and read their daily energy back.
//!
//! The store keeps users, inverters and readings of many tenants; every tenant-owned call takes
//! a `TenantScope`, the proof that the caller authenticated that tenant. An embedder that has
//! its own authentication mints it from the user id its credential lookup returned. Daily
//! energy is maintained while readings are written, in the user's time zone, from the
//! inverter's lifetime counter.
//!
//! Run it with `cargo run --example embedded_store` (SQLite in a temporary directory).

// An example is a smoke test: a failed step should stop it with its message.
#![allow(clippy::expect_used)]

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use deyehard::core::{InverterKind, Reading, Source, TenantScope};
use deyehard::store::{
    InverterFields, InverterStore, NewUser, ReadingReader, ReadingWriter, Store, StoreOptions,
    UserStore,
};

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("deyehard.db");
    let store = Store::connect(&path.to_string_lossy(), &StoreOptions::default())
        .await
        .expect("open the embedded store");

    let user = store
        .create_user(&NewUser {
            email: "sunny@example.com".into(),
            password_hash: deyehard::core::auth::password::hash_password("Sunshine2024")
                .expect("hash")
                .into_string(),
            display_name: "Sunny".into(),
            time_zone: Some("Europe/Berlin".into()),
            locale: None,
            is_verified: true,
            is_superuser: false,
        })
        .await
        .expect("create the user");
    // Our "authentication" is that we just created this user.
    let scope = TenantScope::from_credential_lookup(user.id);

    let inverter = store
        .create_inverter(
            &scope,
            &InverterFields {
                name: "Garage roof".into(),
                kind: InverterKind::Opendtu,
                serial: Some("114172220003".parse().expect("serial")),
                logger_serial: None,
                rated_power_w: Some(800.0),
                mppt_count: Some(2),
            },
        )
        .await
        .expect("register the inverter");

    // Four hours at 600 W, one reading a minute, lifetime counter +10 Wh a minute.
    let start = Utc.with_ymd_and_hms(2025, 6, 21, 8, 0, 0).unwrap(); // 10:00 in Berlin
    let batch: Vec<_> = (0..=240)
        .map(|minute| {
            let mut reading = Reading::new(start + Duration::minutes(minute), Source::Opendtu);
            reading.power_ac_w = Some(600.0);
            reading.yield_total_wh = Some(1_000_000.0 + 10.0 * minute as f64);
            reading.producing = true;
            (inverter.id, reading)
        })
        .collect();
    store
        .write_readings(&scope, &batch, Utc::now())
        .await
        .expect("write");
    // Writing the same readings again changes nothing.
    store
        .write_readings(&scope, &batch, Utc::now())
        .await
        .expect("write again");

    let day = NaiveDate::from_ymd_opt(2025, 6, 21).expect("date");
    let days = store
        .daily_energy(&scope, inverter.id, day, day)
        .await
        .expect("daily energy");
    for d in &days {
        println!(
            "{}: {:.0} Wh, peak {:?} W",
            d.day, d.energy_wh, d.peak_power_w
        );
    }

    assert_eq!(days.len(), 1);
    assert!(
        (days[0].energy_wh - 2_400.0).abs() < 1e-6,
        "240 minutes × 10 Wh"
    );
    assert_eq!(days[0].peak_power_w, Some(600.0));
}
