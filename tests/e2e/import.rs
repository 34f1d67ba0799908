//! `import-original`: a PostgreSQL database created with the original service's schema
//! (`tests/fixtures/original/`) imported into a fresh store of each backend, then checked
//! through the store and the real HTTP endpoints (login with the old passwords, an OpenDTU push
//! with the old plaintext key), then imported again: nothing new, then only rows added since.

use std::collections::HashMap;

use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use deyehard_core::{InverterId, InverterKind, LoggerSerial, TenantScope};
use deyehard_server::import::{ImportOptions, ImportReport, run};
use deyehard_store::{
    InverterStore, NewUser, ReadingReader, Store, UnclaimedLoggerStore, UserStore,
};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;

use crate::support::{Backend, TestServer, TestStore, http_client};

on_both_backends!(the_original_database_is_imported_and_reruns_add_only_what_is_new);

const SCHEMA: &str = include_str!("../fixtures/original/schema.sql");
const DATA: &str = include_str!("../fixtures/original/data.sql");
const ANNA_PASSWORD: &str = "Sonnen-Schein7";
const BERND_PASSWORD: &str = "Alt-Passwort9";
const CARLA_PASSWORD: &str = "Carla-Passwort3";
const DORA_PASSWORD: &str = "Dora-Original5";
const ANNA_KEY: &str = "AB3D-EFGH-JK4M-NP7R";
const CARLA_KEY: &str = "CC2C-DDDD-EEEE-FFFF";
const TIME_ZONE: &str = "Europe/Vienna";

/// A fresh PostgreSQL database holding the original schema and data; dropped with the value.
struct OriginalDb {
    admin: String,
    name: String,
    url: String,
}

impl OriginalDb {
    async fn new() -> Self {
        let admin = std::env::var("DEYEHARD_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is needed for this test but {admin} is unreachable ({e}). Start it \
                 with `pg_ctlcluster 15 main start`, or point DEYEHARD_TEST_PG_URL at one."
                )
            });
        let name = format!("dh_original_{:016x}", rand::random::<u64>());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin.split('?').next().unwrap();
        let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
        let data = DATA
            .replace("{{ANNA_HASH}}", &original_argon2(ANNA_PASSWORD))
            .replace("{{BERND_HASH}}", &bcrypt::hash(BERND_PASSWORD, 10).unwrap())
            .replace("{{CARLA_HASH}}", &original_argon2(CARLA_PASSWORD))
            .replace("{{DORA_HASH}}", &original_argon2(DORA_PASSWORD));
        let mut source = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("{SCHEMA}\n{data}")))
            .execute(&mut source)
            .await
            .unwrap();
        Self { admin, name, url }
    }
}

impl Drop for OriginalDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// An argon2id hash with the original service's parameters (m=65536, t=3, p=4).
fn original_argon2(password: &str) -> String {
    let params = Params::new(65536, 3, 4, None).unwrap();
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes())
        .unwrap()
        .to_string();
    assert!(hash.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"));
    hash
}

fn options() -> ImportOptions {
    // A small batch, so cursor pages and write batches split duplicate groups.
    ImportOptions {
        time_zone: TIME_ZONE.to_owned(),
        batch_size: 7,
        progress: false,
    }
}

async fn scope_of(store: &Store, email: &str) -> TenantScope {
    let user = store.user_by_email_unscoped(email).await.unwrap().unwrap();
    TenantScope::from_credential_lookup(user.id)
}

/// Every stored reading of an inverter.
async fn all_readings(
    store: &Store,
    scope: &TenantScope,
    inverter: InverterId,
) -> Vec<deyehard_core::Reading> {
    let to = Utc::now() + TimeDelta::days(1);
    store
        .readings(scope, inverter, DateTime::UNIX_EPOCH, to, 10_000)
        .await
        .unwrap()
}

async fn login(server: &TestServer, email: &str, password: &str) -> StatusCode {
    http_client()
        .post(server.url("/api/auth/token"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

async fn push(server: &TestServer, key: &str, serial: &str) -> (StatusCode, String) {
    let now = Utc::now();
    let body = json!({
        "timestamp": now.to_rfc3339(), "dtu_serial": "199980000001",
        "inverters": [{"serial": serial, "name": "Balkon", "reachable": true, "producing": true,
                       "last_update": now.timestamp(), "measurements": {"power_ac": 120.5},
                       "dc_channels": []}]
    });
    let response = http_client()
        .post(server.url("/api/opendtu/measurements"))
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

fn check_first_report(report: &ImportReport) {
    let text = report.to_string();
    assert_eq!(report.users_seen, 4, "{text}");
    assert_eq!(
        (report.users_imported, report.users_inactive),
        (3, 1),
        "{text}"
    );
    assert_eq!(report.users_left_alone, vec!["dora@example.com"], "{text}");
    assert!(
        report.users_resumed.is_empty() && report.users_failed.is_empty(),
        "{text}"
    );
    assert!(report.unusable_password_hashes.is_empty(), "{text}");
    assert_eq!(
        (report.api_keys_imported, report.api_keys_present),
        (2, 0),
        "{text}"
    );
    assert_eq!(
        (report.inverters_imported, report.inverters_present),
        (3, 0),
        "{text}"
    );
    let serials = |notes: &[deyehard_server::import::InverterNote]| -> Vec<String> {
        notes.iter().map(|n| n.serial.clone()).collect()
    };
    assert_eq!(serials(&report.ambiguous), vec!["HM-800-XY"], "{text}");
    assert_eq!(serials(&report.orphans), vec!["3000000001"], "{text}");
    assert!(report.inverters_skipped.is_empty(), "{text}");
    // 33 + 20 + 5 AC rows of the imported inverters; 3 duplicates; one DC-only reading.
    assert_eq!(report.measurement_rows_read, 58, "{text}");
    assert_eq!(report.duplicates_removed, 3, "{text}");
    assert_eq!(
        (report.measurements_imported, report.measurements_present),
        (56, 0),
        "{text}"
    );
    assert_eq!(report.dc_rows_imported, 61, "{text}");
    assert_eq!(
        (report.dc_without_ac, report.dc_bad_channel),
        (1, 1),
        "{text}"
    );
    assert!(
        text.contains("inverter 5 \"Gone\" serial \"3000000001\": no owner"),
        "{text}"
    );
    assert!(text.contains("duplicates removed:           3"), "{text}");
}

async fn check_accounts(store: &Store) {
    let anna = store
        .user_by_email_unscoped("anna@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (anna.display_name.as_str(), anna.time_zone.as_str()),
        ("Anna Sonne", TIME_ZONE)
    );
    assert!(anna.is_active && anna.is_verified && !anna.is_superuser);
    assert!(
        anna.password_hash
            .starts_with("$argon2id$v=19$m=65536,t=3,p=4$")
    );
    let bernd = store
        .user_by_email_unscoped("bernd@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bernd.display_name, "Bernd");
    assert!(bernd.is_superuser && bernd.is_active);
    assert!(bernd.password_hash.starts_with("$2b$10$"));
    let carla = store
        .user_by_email_unscoped("carla@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(!carla.is_active);
    let dora = store
        .user_by_email_unscoped("dora@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dora.display_name, "Dora here", "left alone");
    let dora_scope = TenantScope::from_credential_lookup(dora.id);
    assert!(store.inverters(&dora_scope).await.unwrap().is_empty());
}

/// Anna's inverters by name.
async fn anna_inverters(store: &Store) -> HashMap<String, deyehard_store::Inverter> {
    let scope = scope_of(store, "anna@example.com").await;
    let list = store.inverters(&scope).await.unwrap();
    list.into_iter().map(|i| (i.name.clone(), i)).collect()
}

async fn check_inverters_and_readings(store: &Store) {
    let scope = scope_of(store, "anna@example.com").await;
    let inverters = anna_inverters(store).await;
    let balkon = &inverters["Balkon"];
    assert_eq!(balkon.kind, InverterKind::Opendtu);
    assert_eq!(
        balkon.serial.as_ref().map(|s| s.as_str()),
        Some("114172220003")
    );
    assert_eq!(
        (balkon.rated_power_w, balkon.mppt_count),
        (Some(800.0), Some(2))
    );
    assert_eq!(balkon.firmware_version, None, "\"-\" is no firmware");
    let garage = &inverters["Garage"];
    assert_eq!(garage.kind, InverterKind::Solarman);
    assert_eq!(garage.logger_serial, Some(LoggerSerial::new(2_712_345_678)));
    assert_eq!(
        garage.firmware_version.as_deref(),
        Some("MW3_16U_5406_1.53")
    );
    let claim = store
        .resolve_logger_unscoped(LoggerSerial::new(2_712_345_678))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim.inverter_id, garage.id);

    let readings = all_readings(store, &scope, balkon.id).await;
    assert_eq!(
        readings.len(),
        31,
        "30 distinct AC times and one DC-only reading"
    );
    assert!(
        readings
            .iter()
            .all(|r| r.source == deyehard_core::Source::Import)
    );
    let dc_only = &readings[0];
    assert_eq!(
        dc_only.time,
        Utc.with_ymd_and_hms(2025, 6, 15, 9, 0, 0).unwrap()
    );
    assert_eq!((dc_only.power_ac_w, dc_only.dc.len()), (None, 1));
    let at_13 = readings
        .iter()
        .find(|r| r.time == Utc.with_ymd_and_hms(2025, 6, 15, 10, 13, 0).unwrap())
        .unwrap();
    assert_eq!(
        (at_13.power_ac_w, at_13.yield_day_wh),
        (Some(113.0), Some(130.0))
    );
    assert_eq!(
        at_13.yield_total_wh, None,
        "the truncated AC total is not imported"
    );
    assert_eq!(
        at_13.dc.len(),
        2,
        "DC rows 300 ms late belong to the reading"
    );
    let ch1 = &at_13.dc[0];
    assert_eq!((ch1.channel, ch1.name.as_deref()), (1, Some("Panel 1")));
    assert_eq!((ch1.power_w, ch1.voltage_v), (Some(63.0), Some(31.0)));
    assert!((ch1.current_a.unwrap() - 63.0 / 31.0).abs() < 1e-9);
    assert_eq!(
        (ch1.yield_day_wh, ch1.yield_total_wh),
        (Some(65.0), Some(601_000.0))
    );
    assert_eq!(ch1.irradiation_pct, Some(12.0));
    let at_5 = readings
        .iter()
        .find(|r| r.time == Utc.with_ymd_and_hms(2025, 6, 15, 10, 5, 0).unwrap())
        .unwrap();
    assert_eq!(at_5.dc.len(), 2, "the channel-0 row is skipped");
    assert_eq!(all_readings(store, &scope, garage.id).await.len(), 20);

    // Daily energy was maintained by the normal write path, from the day counters.
    let day = chrono::NaiveDate::from_ymd_opt(2025, 6, 15).unwrap();
    let energy = store
        .daily_energy(&scope, balkon.id, day, day)
        .await
        .unwrap();
    assert_eq!(energy.len(), 1);
    assert!((energy[0].energy_wh - 290.0).abs() < 1e-6, "{energy:?}");
    let energy = store
        .daily_energy(&scope, garage.id, day, day)
        .await
        .unwrap();
    assert!((energy[0].energy_wh - 304.0).abs() < 1e-6, "{energy:?}");
}

/// The old passwords work through the real login. Checked last: a successful login may
/// replace the hash by one with our parameters, after which a new run leaves the account alone.
async fn check_logins(server: &TestServer) {
    assert_eq!(
        login(server, "anna@example.com", ANNA_PASSWORD).await,
        StatusCode::OK
    );
    assert_eq!(
        login(server, "bernd@example.com", BERND_PASSWORD).await,
        StatusCode::OK
    );
    assert_eq!(
        login(server, "anna@example.com", BERND_PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(server, "carla@example.com", CARLA_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "inactive in the original, inactive here"
    );
    assert_eq!(
        login(server, "dora@example.com", DORA_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "dora's account here was left alone"
    );
}

/// The old plaintext keys resolve like ours (a deactivated owner's do not).
async fn check_device_keys(server: &TestServer) {
    let (status, body) = push(server, ANNA_KEY, "114172220003").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = push(server, CARLA_KEY, "114172220003").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

async fn the_original_database_is_imported_and_reruns_add_only_what_is_new(backend: Backend) {
    let original = OriginalDb::new().await;
    let db = TestStore::new(backend).await;
    // dora signed up here already, with another password.
    db.store
        .create_user(&NewUser {
            email: "dora@example.com".to_owned(),
            password_hash: deyehard_core::auth::password::hash_password("Dora-New-Pass8")
                .unwrap()
                .into_string(),
            display_name: "Dora here".to_owned(),
            time_zone: None,
            locale: None,
            is_verified: true,
            is_superuser: false,
        })
        .await
        .unwrap();

    let first = run(&db.store, &original.url, &options()).await.unwrap();
    check_first_report(&first);
    check_accounts(&db.store).await;
    check_inverters_and_readings(&db.store).await;
    // The server runs while the import is repeated, as it would during a switch-over.
    let server = TestServer::start(&db).await;
    check_device_keys(&server).await;

    let second = run(&db.store, &original.url, &options()).await.unwrap();
    let text = second.to_string();
    assert!(!second.imported_anything(), "{text}");
    assert!(text.contains("Nothing new to import"), "{text}");
    assert_eq!(second.users_resumed.len(), 3, "{text}");
    assert_eq!(second.users_left_alone, vec!["dora@example.com"], "{text}");
    assert_eq!(
        (second.api_keys_present, second.inverters_present),
        (2, 3),
        "{text}"
    );
    // The pushed inverter's newest reading is live, so its rows are read again: all there.
    // The others continue after their newest imported reading: nothing to read.
    assert_eq!(second.measurement_rows_read, 33, "{text}");
    assert_eq!(second.measurements_present, 31, "{text}");
    let scope = scope_of(&db.store, "anna@example.com").await;
    let inverters = anna_inverters(&db.store).await;
    assert_eq!(
        all_readings(&db.store, &scope, inverters["Balkon"].id)
            .await
            .len(),
        32
    );
    assert_eq!(
        all_readings(&db.store, &scope, inverters["Garage"].id)
            .await
            .len(),
        20
    );

    // Rows the original stored after the import (it kept running): a third run adds just them.
    let mut source = sqlx::PgConnection::connect(&original.url).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO inverter_measurements VALUES \
         ('2025-06-15 09:40:00+00', 1, 2, 210, 320, 55), \
         ('2025-06-15 09:45:00+00', 1, 2, 220, 336, 55), \
         ('2025-06-15 09:45:00+00', 1, 2, 220, 336, 55)",
    )
    .execute(&mut source)
    .await
    .unwrap();
    let third = run(&db.store, &original.url, &options()).await.unwrap();
    let text = third.to_string();
    assert_eq!(third.measurements_imported, 2, "{text}");
    assert_eq!(third.duplicates_removed, 3 + 1, "{text}");
    let garage = all_readings(&db.store, &scope, inverters["Garage"].id).await;
    assert_eq!(garage.len(), 22);
    assert_eq!(garage[21].power_ac_w, Some(220.0));

    check_logins(&server).await;
    server.stop().await;
}
