//! The push endpoints through real sockets, on both store backends: sample payloads stored with
//! their values, malformed bodies, keys, tenants, duplicates, night semantics, rate limits, an
//! unreachable database and 64 concurrent clients.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, FixedOffset, NaiveDate, TimeDelta, TimeZone, Utc};
use deyehard_core::energy::{EnergyRules, EnergySample, daily_energy};
use deyehard_core::{InverterId, InverterKind, Source, TenantScope};
use deyehard_server::IngestOptions;
use deyehard_server::ratelimit::RateQuota;
use deyehard_store::{ApiKeyStore, InverterStore, ReadingReader, Store, StoreOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, TcpProxy, TestServer, TestStore, http_client};

const README: &str = include_str!("../../deyehard-opendtu/tests/fixtures/readme-example.json");
const TWO: &str =
    include_str!("../../deyehard-opendtu/tests/fixtures/two-inverters-one-unknown.json");
const HMT: &str = include_str!("../../deyehard-opendtu/tests/fixtures/hmt-six-inputs.json");
const VICTRON: &str =
    include_str!("../../deyehard-opendtu/tests/fixtures/victron/two-chargers.json");

const OPENDTU: &str = "/api/opendtu/measurements";
const VICTRON_PATH: &str = "/api/victron/measurements";

on_both_backends!(
    sample_payloads_are_stored_with_their_values,
    victron_push_is_stored_with_one_based_channels,
    malformed_bodies_get_a_4xx_naming_the_field_and_store_nothing,
    missing_wrong_and_revoked_keys_get_the_same_401,
    serials_of_another_tenant_are_unknown_and_their_data_untouched,
    a_repeated_push_is_ok_and_adds_no_rows,
    offline_and_stale_readings_do_not_corrupt_day_energy,
    a_key_over_its_budget_gets_429_with_retry_after,
    an_unreachable_database_gives_503_and_writes_nothing,
    sixty_four_concurrent_clients_lose_nothing,
    inverter_and_key_changes_through_the_server_apply_at_once,
);

/// An answer: status, `Retry-After`, body text.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// POSTs `body` with the key in `X-API-Key` and `Content-Type: application/json`.
async fn push(
    server: &TestServer,
    path: &str,
    key: &str,
    body: impl Into<reqwest::Body>,
) -> Answer {
    send(
        server,
        path,
        &[("X-API-Key", key), ("Content-Type", "application/json")],
        body,
    )
    .await
}

async fn send(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> Answer {
    let mut request = http_client().post(server.url(path)).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    assert!(!status.is_redirection(), "never a redirect");
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.expect("body");
    Answer {
        status,
        retry_after,
        text,
    }
}

fn close(actual: Option<f64>, expected: f64) {
    let actual = actual.unwrap_or_else(|| panic!("expected {expected}, got nothing"));
    assert!(
        (actual - expected).abs() < 1e-9,
        "expected {expected}, got {actual}"
    );
}

/// Every stored reading of an inverter.
async fn all_readings(
    store: &Store,
    scope: &TenantScope,
    inverter: InverterId,
) -> Vec<deyehard_core::Reading> {
    let mut out = Vec::new();
    let mut from = DateTime::UNIX_EPOCH;
    let to = Utc::now() + TimeDelta::days(1);
    loop {
        let page = store
            .readings(scope, inverter, from, to, 1000)
            .await
            .unwrap();
        let full = page.len() == 1000;
        if let Some(last) = page.last() {
            from = last.time + TimeDelta::milliseconds(1);
        }
        out.extend(page);
        if !full {
            return out;
        }
    }
}

/// A realistic push of `serials` at `time` (sent in +02:00), with two DC channels each; `seq`
/// moves the counters forward 5 Wh per channel per step.
fn opendtu_push(dtu: &str, serials: &[&str], time: DateTime<Utc>, seq: u64) -> String {
    let offset = FixedOffset::east_opt(7200).unwrap();
    let step = seq as f64;
    let inverters: Vec<Value> = serials
        .iter()
        .enumerate()
        .map(|(i, serial)| {
            let channel = |n: u8| {
                json!({"channel": n, "name": format!("String {n}"), "power": 150.5, "voltage": 33.1,
                       "current": 4.55, "yield_day": 1000.0 + 5.0 * step, "yield_total": 1500.0 + 0.005 * step,
                       "irradiation": 37.6})
            };
            json!({
                "serial": serial, "name": format!("Inverter {i}"), "reachable": true, "producing": true,
                "last_update": time.timestamp() - 4,
                "measurements": {"power_ac": 290.5 + i as f64, "voltage_ac": 230.4, "current_ac": 1.26,
                                 "frequency": 50.01, "power_factor": 0.998, "power_dc": 301.0},
                "dc_channels": [channel(1), channel(2)],
            })
        })
        .collect();
    json!({"timestamp": time.with_timezone(&offset).to_rfc3339(), "dtu_serial": dtu, "inverters": inverters})
        .to_string()
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

async fn sample_payloads_are_stored_with_their_values(backend: Backend) {
    let db = TestStore::new(backend).await;
    let scope = db.user("owner@example.com").await;
    let key = db.api_key(&scope).await;
    let readme_inv = db
        .inverter(&scope, InverterKind::Opendtu, "116166771004")
        .await;
    let west = db
        .inverter(&scope, InverterKind::Opendtu, "114172608815")
        .await;
    let hmt = db
        .inverter(&scope, InverterKind::Opendtu, "138290001234")
        .await;
    let server = TestServer::start(&db).await;

    let answer = push(&server, OPENDTU, &key, README).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["dtu_serial"], "145680140006");
    assert_eq!(body["timestamp"], "2025-10-19T17:54:43+02:00");
    assert_eq!(
        (
            body["total_inverters"].clone(),
            body["success_count"].clone(),
            body["error_count"].clone()
        ),
        (1.into(), 1.into(), 0.into())
    );
    assert_eq!(
        body["results"][0],
        json!({"serial": "116166771004", "status": "ok", "inverter_id": readme_inv.get(), "power_ac": 16.1})
    );

    let stored = all_readings(&db.store, &scope, readme_inv).await;
    assert_eq!(stored.len(), 1);
    let r = &stored[0];
    assert_eq!(r.time, utc(2025, 10, 19, 15, 54, 43));
    assert_eq!(r.source, Source::Opendtu);
    close(r.power_ac_w, 16.1);
    close(r.voltage_ac_v, 229.8);
    close(r.current_ac_a, 0.07);
    close(r.frequency_hz, 49.99);
    close(r.power_factor, 0.617);
    close(r.power_dc_w, 17.0);
    close(r.yield_day_wh, 337.0);
    close(r.yield_total_wh, 444_671.0);
    assert!(r.reachable && r.producing);
    assert_eq!(r.dc.len(), 1);
    assert_eq!(
        (r.dc[0].channel, r.dc[0].name.as_deref()),
        (1, Some("Panel 1"))
    );
    close(r.dc[0].power_w, 3.4);
    close(r.dc[0].voltage_v, 30.4);
    close(r.dc[0].current_a, 0.11);
    close(r.dc[0].yield_total_wh, 444_671.0);
    close(r.dc[0].irradiation_pct, 1.545455);
    let inverter = db.store.inverter(&scope, readme_inv).await.unwrap();
    assert!(inverter.last_seen_at.is_some(), "last_seen_at is updated");

    // Two inverters, one not registered: 207, the other is stored, the unknown one recorded.
    let answer = push(&server, OPENDTU, &key, TWO).await;
    assert_eq!(answer.status, StatusCode::MULTI_STATUS, "{}", answer.text);
    let body = answer.json();
    assert_eq!(
        (body["success_count"].clone(), body["error_count"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(body["results"][0]["status"], "ok");
    assert_eq!(body["results"][1]["status"], "error");
    assert_eq!(body["results"][1]["serial"], "112183110042");
    assert!(
        body["results"][1]["error"]
            .as_str()
            .unwrap()
            .contains("112183110042 is not registered")
    );
    assert!(
        body["results"][1].get("inverter_id").is_none(),
        "absent, not null"
    );
    let west_readings = all_readings(&db.store, &scope, west).await;
    assert_eq!(west_readings.len(), 1);
    close(west_readings[0].yield_day_wh, 1390.0);
    close(west_readings[0].yield_total_wh, 6_219_017.0);
    let unknown = db.store.unknown_serials(&scope).await.unwrap();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].inverter_serial, "112183110042");
    assert_eq!(unknown[0].dtu_serial.as_deref(), Some("199980155512"));

    // A six-input three-phase HMT.
    let answer = push(&server, OPENDTU, &key, HMT).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let r = &all_readings(&db.store, &scope, hmt).await[0];
    close(r.voltage_ac_v, 401.3);
    close(r.power_ac_w, 2110.4);
    assert_eq!(
        r.dc.iter().map(|dc| dc.channel).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    close(r.dc[0].yield_total_wh, 5_120_004.0);
    close(r.dc[0].yield_day_wh, 2650.0);
    server.stop().await;
}

async fn victron_push_is_stored_with_one_based_channels(backend: Backend) {
    let db = TestStore::new(backend).await;
    let scope = db.user("boat@example.com").await;
    let key = db.api_key(&scope).await;
    let carport = db
        .inverter(&scope, InverterKind::Victron, "HQ2311PLM4Z")
        .await;
    let server = TestServer::start(&db).await;

    let answer = send(
        &server,
        VICTRON_PATH,
        &[("Authorization", &format!("Bearer {key}"))],
        VICTRON,
    )
    .await;
    assert_eq!(answer.status, StatusCode::MULTI_STATUS, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["cerbo_serial"], "HQ2345ABCDE");
    assert_eq!(body["total_devices"], 2);
    assert_eq!(body["results"][0]["status"], "error");
    assert_eq!(
        body["results"][1],
        json!({"device_identifier": "HQ2311PLM4Z", "status": "ok", "inverter_id": carport.get(), "yield_power_w": 3120.0})
    );
    let r = &all_readings(&db.store, &scope, carport).await[0];
    assert_eq!(r.source, Source::Victron);
    close(r.power_ac_w, 3120.0);
    close(r.yield_total_wh, 18_842_125.0);
    assert_eq!(
        r.dc.iter().map(|dc| dc.channel).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(r.dc[2].name.as_deref(), Some("Süd"));
    close(r.dc[0].power_w, 1210.0);
    server.stop().await;
}

async fn malformed_bodies_get_a_4xx_naming_the_field_and_store_nothing(backend: Backend) {
    let db = TestStore::new(backend).await;
    let scope = db.user("owner@example.com").await;
    let key = db.api_key(&scope).await;
    let inverter = db
        .inverter(&scope, InverterKind::Opendtu, "116166771004")
        .await;
    let server = TestServer::start(&db).await;
    let future = opendtu_push(
        "1",
        &["116166771004"],
        Utc::now() + TimeDelta::minutes(11),
        0,
    );
    let negative = README.replace("\"power_ac\": 16.1", "\"power_ac\": -5");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "bad timestamp",
            include_bytes!("../../deyehard-opendtu/tests/fixtures/malformed/bad-timestamp.json")
                .to_vec(),
            "timestamp: \"yesterday\" is not an ISO 8601 date-time",
        ),
        (
            "clock not set",
            include_bytes!("../../deyehard-opendtu/tests/fixtures/malformed/clock-not-set.json")
                .to_vec(),
            "before the earliest accepted time 2020-01-01T00:00:00Z",
        ),
        (
            "missing timestamp",
            include_bytes!(
                "../../deyehard-opendtu/tests/fixtures/malformed/missing-timestamp.json"
            )
            .to_vec(),
            "timestamp: missing field",
        ),
        (
            "not an object",
            include_bytes!("../../deyehard-opendtu/tests/fixtures/malformed/not-an-object.json")
                .to_vec(),
            "invalid type: sequence, expected an OpenDTU push",
        ),
        (
            "truncated",
            include_bytes!("../../deyehard-opendtu/tests/fixtures/malformed/truncated.json")
                .to_vec(),
            "the body is not valid JSON: EOF while parsing",
        ),
        (
            "wrong types",
            include_bytes!("../../deyehard-opendtu/tests/fixtures/malformed/wrong-types.json")
                .to_vec(),
            "inverters[0].serial: invalid type: integer",
        ),
        (
            "in the future",
            future.into_bytes(),
            "ahead of the server clock",
        ),
        (
            "negative power",
            negative.into_bytes(),
            "inverters[0] (serial 116166771004): measurements.power_ac is -5",
        ),
        (
            "not UTF-8",
            b"{\"timestamp\": \"\xff\"}".to_vec(),
            "the body is not valid JSON",
        ),
        ("empty", Vec::new(), "the body is not valid JSON"),
    ];
    for (what, body, expected) in cases {
        let answer = push(&server, OPENDTU, &key, body).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            answer.text
        );
        assert_eq!(answer.json()["error"], "unprocessable", "{what}");
        assert!(
            answer.message().contains(expected),
            "{what}: {:?} lacks {expected:?}",
            answer.message()
        );
    }

    let form = send(
        &server,
        OPENDTU,
        &[
            ("X-API-Key", &key),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        README,
    )
    .await;
    assert_eq!(
        form.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        form.text
    );
    assert!(form.message().contains("application/json"), "{}", form.text);

    let mut big = README.trim_end().trim_end_matches('}').to_owned();
    big.push_str(&format!(", \"padding\": \"{}\"}}", "x".repeat(70 * 1024)));
    let too_large = push(&server, OPENDTU, &key, big).await;
    assert_eq!(
        too_large.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        too_large.text
    );
    assert_eq!(too_large.json()["error"], "payload_too_large");

    assert!(
        all_readings(&db.store, &scope, inverter).await.is_empty(),
        "nothing stored"
    );

    // Lenient: no content type, or text/plain, is read as JSON.
    let plain = send(&server, OPENDTU, &[("X-API-Key", &key)], README).await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.text);
    let text = send(
        &server,
        OPENDTU,
        &[("X-API-Key", &key), ("Content-Type", "text/plain")],
        README,
    )
    .await;
    assert_eq!(text.status, StatusCode::CREATED, "{}", text.text);
    server.stop().await;
}

async fn missing_wrong_and_revoked_keys_get_the_same_401(backend: Backend) {
    let db = TestStore::new(backend).await;
    let scope = db.user("owner@example.com").await;
    let key = db.api_key(&scope).await;
    let revoked = db.api_key(&scope).await;
    let used_then_revoked = db.api_key(&scope).await;
    let inverter = db
        .inverter(&scope, InverterKind::Opendtu, "116166771004")
        .await;
    let options = IngestOptions {
        api_keys: deyehard_server::api::ApiKeyOptions {
            cache_ttl: Duration::from_millis(200),
            ..Default::default()
        },
        ..Default::default()
    };
    let server = TestServer::start_on(db.store.clone(), options).await;
    let later = |seconds: i64| README.replace("17:54:43", &format!("17:54:{}", 43 + seconds));
    assert_eq!(
        push(&server, OPENDTU, &used_then_revoked, later(1))
            .await
            .status,
        StatusCode::CREATED
    );
    let keys = db.store.api_keys(&scope).await.unwrap();
    for plaintext in [&revoked, &used_then_revoked] {
        let prefix = deyehard_core::auth::api_key::parse_prefix(plaintext).unwrap();
        let id = keys.iter().find(|k| k.prefix == prefix).unwrap().id;
        db.store.revoke_api_key(&scope, id).await.unwrap();
    }

    let missing = send(
        &server,
        OPENDTU,
        &[("Content-Type", "application/json")],
        README,
    )
    .await;
    let wrong = push(
        &server,
        OPENDTU,
        "dh_aaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        README,
    )
    .await;
    let revoked_answer = push(&server, OPENDTU, &revoked, README).await;
    let basic = send(
        &server,
        OPENDTU,
        &[("Authorization", "Basic dXNlcjpwYXNz")],
        README,
    )
    .await;
    let bearer_wrong = send(
        &server,
        OPENDTU,
        &[("Authorization", "Bearer nope")],
        README,
    )
    .await;
    for answer in [&missing, &wrong, &revoked_answer, &basic, &bearer_wrong] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
        assert_eq!(answer.text, missing.text, "one body for every failure");
    }
    assert_eq!(missing.json()["error"], "unauthorized");
    // A key revoked after use stops working once the cache entry expires.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut accepted_while_cached = 0;
    loop {
        let answer = push(&server, OPENDTU, &used_then_revoked, later(2)).await;
        if answer.status == StatusCode::UNAUTHORIZED {
            assert_eq!(answer.text, missing.text);
            break;
        }
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        accepted_while_cached = 1;
        assert!(
            tokio::time::Instant::now() < deadline,
            "a revoked key kept working"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = all_readings(&db.store, &scope, inverter).await.len();
    assert_eq!(
        stored,
        1 + accepted_while_cached,
        "only the accepted pushes are stored"
    );

    // Both header forms work with a valid key.
    let bearer = send(
        &server,
        OPENDTU,
        &[("authorization", &format!("Bearer {key}"))],
        later(3),
    )
    .await;
    assert_eq!(bearer.status, StatusCode::CREATED, "{}", bearer.text);
    let header = send(&server, OPENDTU, &[("x-api-key", &key)], later(4)).await;
    assert_eq!(header.status, StatusCode::CREATED, "{}", header.text);
    server.stop().await;
}

async fn serials_of_another_tenant_are_unknown_and_their_data_untouched(backend: Backend) {
    let db = TestStore::new(backend).await;
    let alice = db.user("alice@example.com").await;
    let bob = db.user("bob@example.com").await;
    let alices_inverter = db
        .inverter(&alice, InverterKind::Opendtu, "116166771004")
        .await;
    let alices_garden = db
        .inverter(&alice, InverterKind::Opendtu, "112183110042")
        .await;
    let bobs_west = db
        .inverter(&bob, InverterKind::Opendtu, "114172608815")
        .await;
    let bobs_key = db.api_key(&bob).await;
    let server = TestServer::start(&db).await;

    // Only Alice has this serial: for Bob's key it does not exist.
    let answer = push(&server, OPENDTU, &bobs_key, README).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text);
    let body = answer.json();
    assert_eq!(
        (body["success_count"].clone(), body["error_count"].clone()),
        (0.into(), 1.into())
    );
    assert_eq!(
        body["results"][0]["error"],
        "serial 116166771004 is not registered in the account of this API key"
    );
    // Mixed: Bob's own inverter is stored, Alice's serial is unknown to him.
    let answer = push(&server, OPENDTU, &bobs_key, TWO).await;
    assert_eq!(answer.status, StatusCode::MULTI_STATUS, "{}", answer.text);
    assert_eq!(all_readings(&db.store, &bob, bobs_west).await.len(), 1);

    for inverter in [alices_inverter, alices_garden] {
        assert!(
            all_readings(&db.store, &alice, inverter).await.is_empty(),
            "Alice's data untouched"
        );
        assert_eq!(
            db.store
                .inverter(&alice, inverter)
                .await
                .unwrap()
                .last_seen_at,
            None
        );
    }
    assert!(db.store.unknown_serials(&alice).await.unwrap().is_empty());
    let bobs_unknown: Vec<String> = db
        .store
        .unknown_serials(&bob)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.inverter_serial)
        .collect();
    assert_eq!(bobs_unknown.len(), 2);
    assert!(
        bobs_unknown.contains(&"116166771004".to_owned())
            && bobs_unknown.contains(&"112183110042".to_owned())
    );
    server.stop().await;
}

async fn a_repeated_push_is_ok_and_adds_no_rows(backend: Backend) {
    let db = TestStore::new(backend).await;
    let scope = db.user("owner@example.com").await;
    let key = db.api_key(&scope).await;
    let inverter = db
        .inverter(&scope, InverterKind::Opendtu, "116166771004")
        .await;
    let server = TestServer::start(&db).await;

    let first = push(&server, OPENDTU, &key, README).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = push(&server, OPENDTU, &key, README).await;
    assert_eq!(again.status, StatusCode::CREATED, "a retry is not an error");
    assert_eq!(again.json()["results"], first.json()["results"]);
    // The same push twice at once (a retry racing the original).
    let body = README
        .replace("17:54:43", "17:55:43")
        .replace("1760889277", "1760889337");
    let (a, b) = tokio::join!(
        push(&server, OPENDTU, &key, body.clone()),
        push(&server, OPENDTU, &key, body)
    );
    assert_eq!(
        (a.status, b.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    let stored = all_readings(&db.store, &scope, inverter).await;
    assert_eq!(stored.len(), 2, "one row per distinct timestamp");
    assert_eq!(stored[0].dc.len(), 1, "no duplicate DC rows");
    server.stop().await;
}

async fn offline_and_stale_readings_do_not_corrupt_day_energy(backend: Backend) {
    let db = TestStore::new(backend).await;
    let scope = db.user("owner@example.com").await;
    let key = db.api_key(&scope).await;
    let inverter = db
        .inverter(&scope, InverterKind::Opendtu, "116166771004")
        .await;
    let server = TestServer::start(&db).await;
    // 17:54:43 live; 17:55:43 unreachable with zeroed values; 17:56:43 "reachable" but its last
    // frame is 10 minutes old (stale dusk values); 17:57:43 live again, 5 Wh later.
    let at = |minute: u32, last_update: i64| {
        README
            .replace("17:54:43", &format!("17:{minute}:43"))
            .replace("1760889277", &last_update.to_string())
    };
    let unreachable = at(55, 1_760_889_337)
        .replace("\"reachable\": true", "\"reachable\": false")
        .replace("\"power_ac\": 16.1", "\"power_ac\": 0")
        .replace("\"yield_total\": 444.671", "\"yield_total\": 0");
    let stale = at(56, 1_760_888_800);
    let live =
        at(57, 1_760_889_457).replace("\"yield_total\": 444.671", "\"yield_total\": 444.676");
    for body in [README.to_owned(), unreachable, stale, live] {
        let answer = push(&server, OPENDTU, &key, body).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    }
    let stored = all_readings(&db.store, &scope, inverter).await;
    let flags: Vec<(bool, bool)> = stored.iter().map(|r| (r.reachable, r.producing)).collect();
    assert_eq!(
        flags,
        [(true, true), (false, false), (false, false), (true, true)]
    );
    // The energy maths over the stored readings count only the 5 Wh between the live ones.
    let samples: Vec<EnergySample> = stored.iter().map(EnergySample::from).collect();
    let rules = EnergyRules {
        rated_power_w: Some(2000.0),
        ..EnergyRules::default()
    };
    let days = daily_energy(&samples, chrono_tz::Europe::Berlin, &rules);
    let day = days
        .get(&NaiveDate::from_ymd_opt(2025, 10, 19).unwrap())
        .expect("the day");
    assert!((day.energy_wh - 5.0).abs() < 1e-6, "{day:?}");
    assert_eq!(day.peak_power_w, Some(16.1));
    // The chart series leaves the offline readings out (the zeroed power would be its minimum).
    let series = db
        .store
        .power_series(
            &scope,
            inverter,
            utc(2025, 10, 19, 15, 50, 0),
            utc(2025, 10, 19, 16, 0, 0),
            100,
        )
        .await
        .unwrap();
    assert!(!series.points.is_empty());
    assert!(series.points.iter().all(|p| p.min_w > 16.0), "{series:?}");
    server.stop().await;
}

async fn a_key_over_its_budget_gets_429_with_retry_after(backend: Backend) {
    let db = TestStore::new(backend).await;
    let scope = db.user("owner@example.com").await;
    let key = db.api_key(&scope).await;
    let other_key = db.api_key(&scope).await;
    db.inverter(&scope, InverterKind::Opendtu, "116166771004")
        .await;
    let mut options = IngestOptions::default();
    options.api_keys.rate_limit = RateQuota::per_minute(3);
    let server = TestServer::start_on(db.store.clone(), options).await;
    for _ in 0..3 {
        assert_eq!(
            push(&server, OPENDTU, &key, README).await.status,
            StatusCode::CREATED
        );
    }
    let limited = push(&server, OPENDTU, &key, README).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.text
    );
    assert_eq!(limited.json()["error"], "rate_limited");
    let wait: u64 = limited.retry_after.expect("Retry-After").parse().unwrap();
    assert!(
        (1..=20).contains(&wait),
        "3 per minute: the next slot within 20 s, got {wait}"
    );
    assert_eq!(
        push(&server, OPENDTU, &other_key, README).await.status,
        StatusCode::CREATED,
        "keys have separate budgets"
    );
    server.stop().await;
}

async fn an_unreachable_database_gives_503_and_writes_nothing(backend: Backend) {
    let db = TestStore::new(backend).await;
    let scope = db.user("owner@example.com").await;
    let key = db.api_key(&scope).await;
    let cold_key = db.api_key(&scope).await;
    let a = db
        .inverter(&scope, InverterKind::Opendtu, "114172608815")
        .await;
    let b = db
        .inverter(&scope, InverterKind::Opendtu, "112183110042")
        .await;
    let outage = Outage::prepare(&db).await;
    let server = TestServer::start_on(outage.store.clone(), IngestOptions::default()).await;
    let warm = push(
        &server,
        OPENDTU,
        &key,
        opendtu_push("1", &["114172608815"], utc(2025, 7, 2, 8, 0, 0), 0),
    )
    .await;
    assert_eq!(warm.status, StatusCode::CREATED, "{}", warm.text);

    outage.begin().await;
    let body = opendtu_push(
        "1",
        &["114172608815", "112183110042"],
        utc(2025, 7, 2, 8, 1, 0),
        1,
    );
    for (what, key) in [("cached key", &key), ("key not cached yet", &cold_key)] {
        let answer = push(&server, OPENDTU, key, body.clone()).await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {}",
            answer.text
        );
        assert_eq!(answer.json()["error"], "unavailable");
        let wait: u64 = answer.retry_after.expect("Retry-After").parse().unwrap();
        assert!(wait >= 1);
    }
    outage.end().await;

    assert_eq!(
        all_readings(&db.store, &scope, a).await.len(),
        1,
        "only the push before the outage"
    );
    assert!(
        all_readings(&db.store, &scope, b).await.is_empty(),
        "nothing half-written"
    );
    // The device's retry after the outage goes through, whole.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let retry = loop {
        let answer = push(&server, OPENDTU, &key, body.clone()).await;
        if answer.status != StatusCode::SERVICE_UNAVAILABLE
            || tokio::time::Instant::now() > deadline
        {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.text);
    assert_eq!(all_readings(&db.store, &scope, a).await.len(), 2);
    assert_eq!(all_readings(&db.store, &scope, b).await.len(), 1);
    server.stop().await;
}

/// A database outage on demand: PostgreSQL behind a proxy that cuts every connection; SQLite
/// with another connection holding the write lock.
struct Outage {
    store: Arc<Store>,
    proxy: Option<TcpProxy>,
    path: Option<std::path::PathBuf>,
    lock: tokio::sync::Mutex<Option<sqlx::SqliteConnection>>,
}

impl Outage {
    async fn prepare(db: &TestStore) -> Self {
        let options = StoreOptions {
            acquire_timeout: Duration::from_secs(2),
            ..StoreOptions::default()
        };
        match db.pg_server_addr() {
            Some(server) => {
                let proxy = TcpProxy::start(server).await;
                let url = db.pg_url_via(proxy.addr).unwrap();
                let store = Store::connect(&url, &options)
                    .await
                    .expect("store through the proxy");
                Self {
                    store: Arc::new(store),
                    proxy: Some(proxy),
                    path: None,
                    lock: tokio::sync::Mutex::new(None),
                }
            }
            None => Self {
                store: db.store.clone(),
                proxy: None,
                path: Some(db.dir.path().join("deyehard.db")),
                lock: tokio::sync::Mutex::new(None),
            },
        }
    }

    async fn begin(&self) {
        if let Some(proxy) = &self.proxy {
            proxy.down();
        }
        if let Some(path) = &self.path {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut conn)
                .await
                .unwrap();
            *self.lock.lock().await = Some(conn);
        }
    }

    async fn end(&self) {
        if let Some(proxy) = &self.proxy {
            proxy.up();
        }
        if let Some(mut conn) = self.lock.lock().await.take() {
            sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
        }
    }
}

async fn sixty_four_concurrent_clients_lose_nothing(backend: Backend) {
    const CLIENTS: usize = 64;
    let db = TestStore::new(backend).await;
    let scope = db.user("fleet@example.com").await;
    let key = db.api_key(&scope).await;
    let mut serials = Vec::new();
    for client in 0..CLIENTS {
        for n in 0..2 {
            serials.push(format!("1141{:04}{:04}", client, n));
        }
    }
    for serial in &serials {
        db.inverter(&scope, InverterKind::Opendtu, serial).await;
    }
    let mut options = IngestOptions::default();
    options.api_keys.rate_limit = None;
    // As `serve` runs it: the batch writers on their own thread (and pool, on PostgreSQL).
    let server = Arc::new(TestServer::start_serving(&db, options).await);
    let client = http_client();
    let start = utc(2026, 6, 1, 4, 0, 0);
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (server, client, key) = (server.clone(), client.clone(), key.clone());
        let mine = [serials[2 * c].clone(), serials[2 * c + 1].clone()];
        tasks.spawn(async move {
            let mut created = 0u64;
            let mut seq = 0u64;
            while tokio::time::Instant::now() < until {
                let time = start + TimeDelta::minutes(i64::try_from(seq).unwrap());
                let body = opendtu_push(&format!("1999{c:08}"), &[&mine[0], &mine[1]], time, seq);
                let response = client
                    .post(server.url(OPENDTU))
                    .header("X-API-Key", &key)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("request");
                assert_eq!(
                    response.status(),
                    StatusCode::CREATED,
                    "{}",
                    response.text().await.unwrap_or_default()
                );
                created += 1;
                seq += 1;
            }
            (mine, created)
        });
    }
    let mut total = 0;
    while let Some(result) = tasks.join_next().await {
        let (mine, created) = result.expect("client task");
        for serial in &mine {
            let inverter = db
                .store
                .inverter_by_serial(&scope, &deyehard_core::DeviceSerial::parse(serial).unwrap())
                .await
                .unwrap()
                .unwrap();
            let stored = all_readings(&db.store, &scope, inverter.id).await;
            assert_eq!(
                stored.len() as u64,
                created,
                "{serial}: every 201 is stored, nothing more"
            );
            assert!(stored.iter().all(|r| r.dc.len() == 2));
            // The day energy kept by the concurrent batches is the energy of the stored series.
            let samples: Vec<EnergySample> = stored.iter().map(EnergySample::from).collect();
            let rules = EnergyRules {
                rated_power_w: Some(2000.0),
                ..EnergyRules::default()
            };
            let want: Vec<_> = daily_energy(&samples, chrono_tz::Europe::Berlin, &rules)
                .into_iter()
                .map(|(day, e)| (day, e.energy_wh, e.peak_power_w, e.samples as i64))
                .collect();
            let day = |d| NaiveDate::from_ymd_opt(2026, 6, d).unwrap();
            let got: Vec<_> = db
                .store
                .daily_energy(&scope, inverter.id, day(1), day(30))
                .await
                .unwrap()
                .into_iter()
                .map(|d| (d.day, d.energy_wh, d.peak_power_w, d.samples))
                .collect();
            assert_eq!(got, want, "{serial}: day energy");
        }
        total += created;
    }
    assert!(
        total >= CLIENTS as u64,
        "every client got through at least once ({total} pushes)"
    );
    if matches!(backend, Backend::Postgres) {
        // The writers' own pool is on /metrics, sized like the main one.
        let metrics = client
            .get(server.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        assert!(
            metrics.contains("deyehard_db_pool_max_connections{pool=\"ingest\"} 8"),
            "{metrics}"
        );
    }
    Arc::try_unwrap(server)
        .ok()
        .expect("sole owner")
        .stop()
        .await;
}

/// A push `minutes` after a fixed recent start, for the serials given.
fn push_at(serials: &[&str], minutes: i64) -> String {
    let start = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap() - TimeDelta::hours(2);
    let seq = u64::try_from(minutes).unwrap();
    opendtu_push(
        "199912345678",
        serials,
        start + TimeDelta::minutes(minutes),
        seq,
    )
}

async fn inverter_and_key_changes_through_the_server_apply_at_once(backend: Backend) {
    let db = TestStore::new(backend).await;
    // The default caches (10 s): nothing below may wait for an entry to expire.
    let server = TestServer::start(&db).await;
    let ann = crate::inverters::session(&db, &server, "ann@example.com", true).await;
    let key = db.api_key(&ann.scope).await;
    let (first, second, renamed) = ("116166771001", "116166771002", "116166771003");
    let status = |answer: Answer| (answer.status, answer.text);

    let (code, text) = status(push(&server, OPENDTU, &key, push_at(&[first], 0)).await);
    assert_eq!(code, StatusCode::NOT_FOUND, "not registered yet: {text}");

    // Registered through the API: accepted by the next push.
    let created = ann
        .api(
            Method::POST,
            "/api/inverters",
            Some(crate::inverters::opendtu(first, "Roof")),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json()["id"].as_i64().unwrap();
    let (code, text) = status(push(&server, OPENDTU, &key, push_at(&[first], 1)).await);
    assert_eq!(code, StatusCode::CREATED, "{text}");

    // Registered behind the server's back (another process): accepted as well.
    let other = db.inverter(&ann.scope, InverterKind::Opendtu, second).await;
    let (code, text) = status(push(&server, OPENDTU, &key, push_at(&[first, second], 2)).await);
    assert_eq!(code, StatusCode::CREATED, "{text}");
    assert_eq!(all_readings(&db.store, &ann.scope, other).await.len(), 1);

    // A serial changed through the API: the old one is unknown at once, the new one is the
    // same inverter.
    let patched = ann
        .api(
            Method::PATCH,
            &format!("/api/inverters/{id}"),
            Some(json!({"serial": renamed})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let (code, text) = status(push(&server, OPENDTU, &key, push_at(&[first], 3)).await);
    assert_eq!(code, StatusCode::NOT_FOUND, "the old serial: {text}");
    let (code, text) = status(push(&server, OPENDTU, &key, push_at(&[renamed], 4)).await);
    assert_eq!(code, StatusCode::CREATED, "{text}");
    let id = InverterId::new(id);
    assert_eq!(all_readings(&db.store, &ann.scope, id).await.len(), 3);

    // Deleted through the API: refused at once.
    let deleted = ann
        .api(
            Method::DELETE,
            &format!("/api/inverters/{}", id.get()),
            None,
        )
        .await;
    assert!(deleted.status.is_success(), "{}", deleted.text);
    let (code, text) = status(push(&server, OPENDTU, &key, push_at(&[renamed], 5)).await);
    assert_eq!(code, StatusCode::NOT_FOUND, "deleted: {text}");

    // Revoked through the API: refused at once, with the same body as a wrong key.
    let keys = db.store.api_keys(&ann.scope).await.unwrap();
    let key_id = keys[0].id;
    let revoked = ann
        .api(Method::DELETE, &format!("/api/keys/{}", key_id.get()), None)
        .await;
    assert!(revoked.status.is_success(), "{}", revoked.text);
    let refused = push(&server, OPENDTU, &key, push_at(&[second], 6)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    assert_eq!(refused.json()["error"], "unauthorized");
    assert_eq!(all_readings(&db.store, &ann.scope, other).await.len(), 1);
    server.stop().await;
}
