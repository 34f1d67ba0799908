//! The inverter API, the reading exports and the inverter and export pages against the
//! in-process server, on both store backends: CRUD and validation with messages naming the
//! field, unverified accounts, another tenant's ids (404 everywhere, like a missing id),
//! paged readings, CSV streamed past one page, logger claims with backfill, form errors next
//! to their field (plain and HTMX), inline editing, deletion after confirmation, one-click
//! registration, and escaping of names from users and devices.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use deyehard_core::{DcReading, InverterId, InverterKind, Reading, Source, TenantScope};
use deyehard_store::{InverterStore, NewUser, ReadingWriter, UserStore};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    Backend, FakeLogger, STEP, TestCollector, TestServer, TestStore, handshake, live_data,
};

const PASSWORD: &str = "Sunny-Roof-42";
const HOSTILE: &str = "<script>alert(1)</script>";
const CHANNEL_NAME: &str = "<b>West</b>, \"big\"";

on_both_backends!(
    api_adds_lists_changes_and_deletes_with_field_messages,
    unverified_accounts_get_a_clear_403_and_a_notice,
    another_tenants_ids_are_not_found_on_every_route,
    readings_come_in_pages_with_export_field_names,
    csv_export_streams_past_one_page_with_bom_and_local_time,
    claiming_a_logger_through_the_api_backfills_its_frames,
    inverters_page_escapes_names_and_helps_to_connect,
    form_errors_are_shown_next_to_their_field,
    inline_edit_and_delete_after_confirmation,
    pushed_serials_are_offered_for_one_click_registration,
    export_page_downloads_csv_for_chosen_inverters_and_days,
);

/// An answer: status, headers, body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    headers: reqwest::header::HeaderMap,
    pub(crate) text: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or(""))
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        text: response.text().await.expect("body"),
    }
}

/// A user with a session: a bearer token for the API and a browser-like client (session and
/// CSRF cookies) for the pages.
pub(crate) struct Session {
    pub(crate) scope: TenantScope,
    token: String,
    web: reqwest::Client,
    base: String,
}

pub(crate) async fn session(
    db: &TestStore,
    srv: &TestServer,
    email: &str,
    verified: bool,
) -> Session {
    let hash = deyehard_core::auth::password::hash_password(PASSWORD)
        .unwrap()
        .into_string();
    let user = db
        .store
        .create_user(&NewUser {
            email: email.to_owned(),
            password_hash: hash,
            display_name: "Ann".to_owned(),
            time_zone: Some("Europe/Berlin".to_owned()),
            locale: None,
            is_verified: verified,
            is_superuser: false,
        })
        .await
        .unwrap();
    let login = crate::support::http_client()
        .post(srv.url("/api/auth/token"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let token = login.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let url: reqwest::Url = srv.base.parse().unwrap();
    jar.add_cookie_str(&format!("deyehard_session={token}; Path=/"), &url);
    let web = reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(STEP)
        .build()
        .unwrap();
    Session {
        scope: TenantScope::for_tests(user.id),
        token,
        web,
        base: srv.base.clone(),
    }
}

impl Session {
    pub(crate) async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = crate::support::http_client()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.expect("request")).await
    }

    async fn page(&self, path: &str) -> Answer {
        let r = self.web.get(format!("{}{path}", self.base)).send();
        answer(r.await.expect("request")).await
    }

    async fn htmx(&self, path: &str) -> Answer {
        let r = self
            .web
            .get(format!("{}{path}", self.base))
            .header("hx-request", "true")
            .send();
        answer(r.await.expect("request")).await
    }

    /// The CSRF token of this client (from the meta tag of a page).
    async fn csrf(&self) -> String {
        let page = self.page("/inverters").await;
        let at = page
            .text
            .find("name=\"csrf-token\" content=\"")
            .expect("meta")
            + 27;
        page.text[at..at + 64].to_owned()
    }

    /// Posts a form with the CSRF token, as a plain form or as HTMX.
    async fn post(&self, path: &str, fields: &[(&str, &str)], htmx: bool) -> Answer {
        let token = self.csrf().await;
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", &token)];
        form.extend_from_slice(fields);
        let mut request = self.web.post(format!("{}{path}", self.base)).form(&form);
        if htmx {
            request = request.header("hx-request", "true");
        }
        answer(request.send().await.expect("request")).await
    }
}

fn june(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 15, hour, minute, 0).unwrap()
}

/// `n` minute readings from `start` with two named DC channels.
fn series(start: DateTime<Utc>, n: i64) -> Vec<Reading> {
    (0..n)
        .map(|m| {
            let mut r = Reading::new(start + Duration::minutes(m), Source::Opendtu);
            let power = 100.0 + (m % 50) as f64;
            r.power_ac_w = Some(power);
            r.voltage_ac_v = Some(230.5);
            r.yield_total_wh = Some(1_000.0 + m as f64);
            r.producing = true;
            r.dc = (1..=2)
                .map(|channel| {
                    let mut dc = DcReading::new(channel);
                    dc.name = Some(if channel == 1 {
                        CHANNEL_NAME.to_owned()
                    } else {
                        "East".to_owned()
                    });
                    dc.power_w = Some(power / 2.0);
                    dc
                })
                .collect();
            r
        })
        .collect()
}

/// Stores `readings`, received a second after each chunk's last one (`last_seen_at`).
async fn store_readings(db: &TestStore, scope: &TenantScope, id: InverterId, readings: &[Reading]) {
    for chunk in readings.chunks(500) {
        let batch: Vec<_> = chunk.iter().map(|r| (id, r.clone())).collect();
        let received = chunk[chunk.len() - 1].time + Duration::seconds(1);
        db.store
            .write_readings(scope, &batch, received)
            .await
            .unwrap();
    }
}

/// The API body registering an OpenDTU inverter.
pub(crate) fn opendtu(serial: &str, name: &str) -> Value {
    json!({"kind": "opendtu", "name": name, "serial": serial, "rated_power_w": 800, "mppt_count": 2})
}

async fn api_adds_lists_changes_and_deletes_with_field_messages(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann = session(&db, &srv, "ann@example.com", true).await;

    let created = ann
        .api(
            Method::POST,
            "/api/inverters",
            Some(opendtu("116166771004", "Roof")),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let inv = created.json();
    let id = inv["id"].as_i64().unwrap();
    assert_eq!(
        (
            &inv["kind"],
            &inv["serial"],
            &inv["rated_power_w"],
            &inv["mppt_count"]
        ),
        (
            &json!("opendtu"),
            &json!("116166771004"),
            &json!(800.0),
            &json!(2)
        )
    );
    assert_eq!(inv["status"]["state"], "no_data");

    store_readings(
        &db,
        &ann.scope,
        InverterId::new(id),
        &series(Utc::now() - Duration::seconds(30), 1),
    )
    .await;
    let list = ann.api(Method::GET, "/api/inverters", None).await;
    assert_eq!(list.status, StatusCode::OK);
    let list = list.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["status"]["state"], "producing");
    assert_eq!(list[0]["status"]["power_ac_w"], 100.0);
    assert!(list[0]["last_seen_at"].is_string());

    let patched = ann
        .api(
            Method::PATCH,
            &format!("/api/inverters/{id}"),
            Some(json!({"name": "Garage", "mppt_count": null})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let patched = patched.json();
    assert_eq!(
        (&patched["name"], &patched["mppt_count"]),
        (&json!("Garage"), &Value::Null)
    );
    assert_eq!(
        patched["rated_power_w"], 800.0,
        "absent fields keep their value"
    );
    let got = ann
        .api(Method::GET, &format!("/api/inverters/{id}"), None)
        .await
        .json();
    assert_eq!(got["name"], "Garage");

    // Conflicts and bad values: 409/422 with the field named, never a 500.
    let dup = ann
        .api(
            Method::POST,
            "/api/inverters",
            Some(opendtu("116166771004", "Again")),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.json()["error"], "conflict");
    assert!(
        dup.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("serial: "),
        "{}",
        dup.text
    );
    for (body, field) in [
        (json!({"kind": "opendtu", "name": "x"}), "serial: "),
        (json!({"kind": "solarman", "name": "x"}), "logger_serial: "),
        (
            json!({"kind": "victron", "name": "x", "serial": "HQ1", "logger_serial": 5}),
            "logger_serial: ",
        ),
        (
            json!({"kind": "opendtu", "name": " ", "serial": "1"}),
            "name: ",
        ),
        (
            json!({"kind": "opendtu", "name": "x", "serial": "11 61"}),
            "serial: ",
        ),
        (
            json!({"kind": "opendtu", "name": "x", "serial": "1", "rated_power_w": -3}),
            "rated_power_w: ",
        ),
        (
            json!({"kind": "opendtu", "name": "x", "serial": "1", "mppt_count": 0}),
            "mppt_count: ",
        ),
    ] {
        let bad = ann
            .api(Method::POST, "/api/inverters", Some(body.clone()))
            .await;
        assert_eq!(
            bad.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            bad.text
        );
        let message = bad.json()["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with(field), "{body}: {message}");
    }
    let bad_kind = ann
        .api(
            Method::POST,
            "/api/inverters",
            Some(json!({"kind": "sma", "name": "x"})),
        )
        .await;
    assert_eq!(bad_kind.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_kind.json()["error"],
        "bad_request",
        "JSON errors, also from the parser"
    );
    let bad_patch = ann
        .api(
            Method::PATCH,
            &format!("/api/inverters/{id}"),
            Some(json!({"kind": "solarman"})),
        )
        .await;
    assert_eq!(bad_patch.status, StatusCode::UNPROCESSABLE_ENTITY);
    let not_a_number = ann.api(Method::GET, "/api/inverters/abc", None).await;
    assert_eq!(not_a_number.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_a_number.json()["error"], "bad_request");

    let anonymous = crate::support::http_client()
        .get(srv.url("/api/inverters"))
        .send()
        .await
        .unwrap();
    let anonymous = answer(anonymous).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.json()["error"], "unauthorized");

    let deleted = ann
        .api(Method::DELETE, &format!("/api/inverters/{id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = ann
        .api(Method::GET, &format!("/api/inverters/{id}"), None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.json()["error"], "not_found");
    srv.stop().await;
}

async fn unverified_accounts_get_a_clear_403_and_a_notice(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let new = session(&db, &srv, "new@example.com", false).await;
    let refused = new
        .api(
            Method::POST,
            "/api/inverters",
            Some(opendtu("1161", "Roof")),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("confirm your email address"),
        "{}",
        refused.text
    );
    let page = new.page("/inverters").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text
            .contains("Please confirm your email address first")
    );
    assert!(!page.text.contains("id=\"new-serial\""), "no add form");
    let posted = new
        .post(
            "/inverters",
            &[("kind", "opendtu"), ("name", "Roof"), ("serial", "1161")],
            false,
        )
        .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    assert!(
        posted
            .text
            .contains("Please confirm your email address first")
    );
    assert!(db.store.inverters(&new.scope).await.unwrap().is_empty());
    srv.stop().await;
}

async fn another_tenants_ids_are_not_found_on_every_route(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann = session(&db, &srv, "ann@example.com", true).await;
    let bob = session(&db, &srv, "bob@example.com", true).await;
    let id = db
        .inverter(&ann.scope, InverterKind::Opendtu, "116166771004")
        .await;
    store_readings(&db, &ann.scope, id, &series(june(10, 0), 3)).await;
    let missing = 987_654;
    let range = "from=2025-06-15T00:00:00Z&to=2025-06-16T00:00:00Z";

    let mut bodies = Vec::new();
    for target in [id.get(), missing] {
        for (method, path, body) in [
            (Method::GET, format!("/api/inverters/{target}"), None),
            (
                Method::PATCH,
                format!("/api/inverters/{target}"),
                Some(json!({"name": "mine"})),
            ),
            (Method::DELETE, format!("/api/inverters/{target}"), None),
            (
                Method::GET,
                format!("/api/inverters/{target}/readings?{range}"),
                None,
            ),
            (
                Method::GET,
                format!("/api/inverters/{target}/export.csv?{range}"),
                None,
            ),
            (
                Method::GET,
                format!("/api/inverters/{target}/export.csv?{range}&kind=daily"),
                None,
            ),
        ] {
            let a = bob.api(method.clone(), &path, body).await;
            assert_eq!(
                a.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                a.text
            );
            bodies.push(a.text);
        }
        for path in [
            format!("/inverters/{target}/edit"),
            format!("/inverters/{target}/delete"),
            format!("/inverters/{target}/item"),
            format!("/export/download?inverter={target}&from=2025-06-15&to=2025-06-15"),
        ] {
            assert_eq!(
                bob.page(&path).await.status,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
        let fields = [("kind", "opendtu"), ("name", "mine"), ("serial", "999")];
        for path in [
            format!("/inverters/{target}/edit"),
            format!("/inverters/{target}/delete"),
        ] {
            assert_eq!(
                bob.post(&path, &fields, false).await.status,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
    }
    let (theirs, absent) = bodies.split_at(bodies.len() / 2);
    assert_eq!(
        theirs, absent,
        "another tenant's id answers like a missing one"
    );
    // Ann's inverter and readings are untouched.
    let inv = db.store.inverter(&ann.scope, id).await.unwrap();
    assert_eq!(inv.name, "Inverter 116166771004");
    let page = ann
        .api(
            Method::GET,
            &format!("/api/inverters/{}/readings?{range}", id.get()),
            None,
        )
        .await;
    assert_eq!(page.json()["readings"].as_array().unwrap().len(), 3);
    srv.stop().await;
}

async fn readings_come_in_pages_with_export_field_names(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann = session(&db, &srv, "ann@example.com", true).await;
    let id = db
        .inverter(&ann.scope, InverterKind::Opendtu, "116166771004")
        .await;
    store_readings(&db, &ann.scope, id, &series(june(4, 0), 2500)).await;

    let mut from = "2025-06-15T00:00:00Z".to_owned();
    let mut times = Vec::new();
    let mut pages = 0;
    loop {
        let path = format!(
            "/api/inverters/{}/readings?from={from}&to=2025-06-17T00:00:00Z&limit=1000",
            id.get()
        );
        let page = ann.api(Method::GET, &path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let page = page.json();
        pages += 1;
        for r in page["readings"].as_array().unwrap() {
            times.push(r["time"].as_str().unwrap().to_owned());
        }
        match page["next_from"].as_str() {
            Some(next) => next.clone_into(&mut from),
            None => break,
        }
    }
    assert_eq!((pages, times.len()), (3, 2500));
    assert_eq!(times[0], "2025-06-15T04:00:00Z");
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "time order, no repeats"
    );

    let one = ann
        .api(
            Method::GET,
            &format!(
                "/api/inverters/{}/readings?from=2025-06-15T04:00:00%2B00:00&limit=1",
                id.get()
            ),
            None,
        )
        .await
        .json();
    let r = &one["readings"][0];
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    for field in [
        "time",
        "inverter_serial",
        "power_ac_w",
        "voltage_ac_v",
        "current_ac_a",
        "frequency_hz",
        "power_factor",
        "power_dc_w",
        "temperature_c",
        "yield_day_wh",
        "yield_total_wh",
        "reachable",
        "producing",
        "source",
        "dc",
    ] {
        assert!(keys.contains(&field), "{field} in {keys:?}");
    }
    assert_eq!(
        (&r["inverter_serial"], &r["power_ac_w"]),
        (&json!("116166771004"), &json!(100.0))
    );
    assert_eq!(r["current_ac_a"], Value::Null, "absent values are null");
    assert_eq!(
        r["dc"][0]["name"], CHANNEL_NAME,
        "device names come back verbatim in JSON"
    );

    for (query, field) in [
        ("from=yesterday", "from: "),
        ("to=2025-06-15", "to: "),
        (
            "from=2025-06-16T00:00:00Z&to=2025-06-15T00:00:00Z",
            "from: ",
        ),
        ("limit=0", "limit: "),
        ("limit=10001", "limit: "),
    ] {
        let bad = ann
            .api(
                Method::GET,
                &format!("/api/inverters/{}/readings?{query}", id.get()),
                None,
            )
            .await;
        assert_eq!(
            bad.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            bad.text
        );
        assert!(
            bad.json()["message"].as_str().unwrap().starts_with(field),
            "{query}: {}",
            bad.text
        );
    }
    srv.stop().await;
}

async fn csv_export_streams_past_one_page_with_bom_and_local_time(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann = session(&db, &srv, "ann@example.com", true).await;
    let id = db
        .inverter(&ann.scope, InverterKind::Opendtu, "116166771004")
        .await;
    store_readings(&db, &ann.scope, id, &series(june(4, 0), 2500)).await;

    let path = format!(
        "/api/inverters/{}/export.csv?from=2025-06-15T00:00:00Z&to=2025-06-17T00:00:00Z",
        id.get()
    );
    let csv = ann.api(Method::GET, &path, None).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert_eq!(csv.header("content-type"), "text/csv; charset=utf-8");
    assert_eq!(
        csv.header("content-disposition"),
        "attachment; filename=\"deyehard_116166771004_readings_2025-06-15_2025-06-17_Europe-Berlin.csv\""
    );
    assert!(
        csv.headers.get("content-length").is_none(),
        "streamed, not buffered"
    );
    assert!(
        csv.text.starts_with('\u{feff}'),
        "a BOM for spreadsheet programs"
    );
    let lines: Vec<&str> = csv.text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines.len(),
        2501,
        "header and every reading (more than one page)"
    );
    assert!(
        lines[0].starts_with("time,time_local,inverter_serial,power_ac_w,"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains(",dc1_name,dc1_power_w,"));
    assert!(
        lines[0].ends_with(",dc2_yield_total_wh,dc2_irradiation_pct"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("2025-06-15T04:00:00Z,2025-06-15 06:00:00,116166771004,100,230.5,"),
        "UTC and Berlin summer time: {}",
        lines[1]
    );
    assert!(
        lines[1].contains(",\"<b>West</b>, \"\"big\"\"\",50,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2500].starts_with("2025-06-16T21:39:00Z,2025-06-16 23:39:00,"),
        "{}",
        lines[2500]
    );

    let daily = ann
        .api(Method::GET, &format!("{path}&kind=daily"), None)
        .await;
    assert_eq!(daily.status, StatusCode::OK, "{}", daily.text);
    assert!(
        daily
            .header("content-disposition")
            .contains("_daily_2025-06-15_2025-06-17_")
    );
    let days: Vec<&str> = daily.text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        days[0],
        "day,inverter_serial,energy_wh,peak_power_w,samples"
    );
    assert_eq!(days.len(), 3, "{days:?}");
    assert!(
        days[1].starts_with("2025-06-15,116166771004,"),
        "{}",
        days[1]
    );
    assert!(
        days[2].starts_with("2025-06-16,116166771004,"),
        "{}",
        days[2]
    );

    let bad = ann
        .api(
            Method::GET,
            &format!("/api/inverters/{}/export.csv?kind=weekly", id.get()),
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["error"], "bad_request");
    srv.stop().await;
}

async fn claiming_a_logger_through_the_api_backfills_its_frames(backend: Backend) {
    const LOGGER: u32 = 2_799_999_001;
    let db = TestStore::new(backend).await;
    let collector = TestCollector::start(&db).await;
    let mut logger = FakeLogger::connect(collector.addr).await;
    let t0 = Utc.with_ymd_and_hms(2024, 6, 1, 9, 0, 0).unwrap();
    logger.send(&handshake(LOGGER, 1)).await;
    logger.reply().await;
    for i in 0..3u8 {
        logger
            .send(&live_data(
                LOGGER,
                2 + i,
                t0 + Duration::minutes(5 * i64::from(i)),
            ))
            .await;
        logger.reply().await;
    }
    collector.stop().await;

    let srv = TestServer::start(&db).await;
    let ann = session(&db, &srv, "ann@example.com", true).await;
    let bob = session(&db, &srv, "bob@example.com", true).await;
    let body = json!({"kind": "solarman", "name": "Deye", "logger_serial": LOGGER});
    let created = ann
        .api(Method::POST, "/api/inverters", Some(body.clone()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json()["id"].as_i64().unwrap();
    let path =
        format!("/api/inverters/{id}/readings?from=2024-06-01T00:00:00Z&to=2024-06-02T00:00:00Z");
    let readings = ann.api(Method::GET, &path, None).await.json();
    assert_eq!(
        readings["readings"].as_array().unwrap().len(),
        3,
        "{readings}"
    );
    assert_eq!(readings["readings"][0]["power_ac_w"], 185.0);

    let taken = bob.api(Method::POST, "/api/inverters", Some(body)).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(
        taken.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("logger_serial: ")
    );
    srv.stop().await;
}

async fn inverters_page_escapes_names_and_helps_to_connect(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let visitor = crate::support::http_client()
        .get(srv.url("/inverters"))
        .send()
        .await
        .unwrap();
    assert_eq!(visitor.status(), StatusCode::SEE_OTHER);
    assert_eq!(visitor.headers()["location"], "/login?next=%2Finverters");

    let ann = session(&db, &srv, "ann@example.com", true).await;
    let empty = ann.page("/inverters").await;
    assert_eq!(empty.status, StatusCode::OK);
    let help = &empty.text;
    assert!(help.contains("No inverters yet"));
    let push_url = format!(
        "<code class=\"font-mono\" data-connect=\"push-url\">{}/api/opendtu/measurements</code>",
        srv.base
    );
    assert!(help.contains(&push_url), "the user's own push URL");
    assert!(help.contains("<code class=\"font-mono\">X-API-Key</code>"));
    assert!(help.contains("data-connect=\"host\">127.0.0.1</code>"));
    assert!(help.contains("data-connect=\"port\">10000</code>"));
    assert!(help.contains("href=\"/account\""), "where keys come from");
    db.api_key(&ann.scope).await;
    assert!(
        ann.page("/inverters")
            .await
            .text
            .contains("<code class=\"font-mono\">dh_"),
        "the user's key prefix"
    );

    let created = ann
        .api(
            Method::POST,
            "/api/inverters",
            Some(opendtu("116166771004", HOSTILE)),
        )
        .await;
    let id = created.json()["id"].as_i64().unwrap();
    store_readings(
        &db,
        &ann.scope,
        InverterId::new(id),
        &series(june(10, 0), 2),
    )
    .await;
    let page = ann.page("/inverters").await;
    assert!(
        !page.text.contains(HOSTILE),
        "an inverter's name is escaped"
    );
    assert!(
        page.text
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{}",
        page.text
    );
    assert!(
        page.text.contains(&format!("href=\"/inverters/{id}\"")),
        "links to the dashboard"
    );
    assert!(
        page.text.contains("How to connect a device"),
        "help stays available"
    );
    assert!(page.text.contains("Rated power") && page.text.contains("800 W"));
    assert!(
        page.text.contains("2025-06-15 12:01"),
        "last data in the user's zone: {}",
        page.text
    );
    for path in [
        format!("/inverters/{id}/edit"),
        format!("/inverters/{id}/delete"),
    ] {
        for answer in [ann.page(&path).await, ann.htmx(&path).await] {
            assert_eq!(answer.status, StatusCode::OK, "{path}");
            assert!(!answer.text.contains(HOSTILE), "{path}: escaped");
        }
    }
    let german = ann.page("/inverters?lang=de").await;
    assert!(
        german.text.contains("Wechselrichter hinzufügen") && german.text.contains("Nennleistung")
    );
    srv.stop().await;
}

/// The text of the element with `id` (up to the end of its tag's line), for "next to the
/// field" checks.
fn error_of(html: &str, id: &str) -> String {
    let marker = format!("<p id=\"{id}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id} in {html}"));
    let rest = &html[at..];
    rest[..rest.find("</p>").unwrap()].to_owned()
}

async fn form_errors_are_shown_next_to_their_field(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann = session(&db, &srv, "ann@example.com", true).await;
    db.inverter(&ann.scope, InverterKind::Opendtu, "116166771004")
        .await;

    let dup = [
        ("kind", "opendtu"),
        ("name", "Second"),
        ("serial", "116166771004"),
        ("rated_power_w", "800,5"),
    ];
    for htmx in [false, true] {
        let a = ann.post("/inverters", &dup, htmx).await;
        let expected = if htmx {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!(a.status, expected, "htmx {htmx}");
        assert!(
            error_of(&a.text, "new-serial-error")
                .contains("You already have an inverter with this serial number."),
            "{}",
            a.text
        );
        assert!(
            a.text.contains("aria-describedby=\"new-serial-error\""),
            "tied to the field"
        );
        assert!(
            a.text.contains("value=\"Second\""),
            "what was entered stays"
        );
        assert!(a.text.contains("value=\"800,5\""));
        assert!(
            a.text.contains("id=\"inverters\""),
            "the section HTMX swaps"
        );
    }
    let bad = [
        ("kind", "solarman"),
        ("name", ""),
        ("logger_serial", "12ab"),
        ("mppt_count", "99"),
    ];
    let a = ann.post("/inverters", &bad, false).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(&a.text, "new-name-error").contains("Please fill in this field."));
    assert!(error_of(&a.text, "new-logger_serial-error").contains("A logger serial is a number"));
    assert!(error_of(&a.text, "new-mppt_count-error").contains("from 1 to 24"));
    assert!(
        !a.text.contains("id=\"new-serial-error\""),
        "only fields with problems"
    );
    // HTMX requests answer with the page (its #inverters section is swapped in).
    let ok = [
        ("kind", "opendtu"),
        ("name", "Balcony"),
        ("serial", "116180000001"),
    ];
    let added = ann.post("/inverters", &ok, false).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    assert!(added.header("location").starts_with("/inverters?added="));
    let second = [("kind", "victron"), ("name", "Cerbo"), ("serial", "HQ2207")];
    let added = ann.post("/inverters", &second, true).await;
    assert_eq!(added.status, StatusCode::OK);
    assert!(
        added.text.contains("The inverter was added."),
        "{}",
        added.text
    );
    assert!(added.text.contains(">Cerbo</a>"), "{}", added.text);
    assert_eq!(db.store.inverters(&ann.scope).await.unwrap().len(), 3);
    // The page's language (remembered from ?lang= in a cookie) picks the messages' language.
    let german = ann.post("/inverters?lang=de", &dup, false).await;
    assert!(
        error_of(&german.text, "new-serial-error").contains("Du hast bereits einen Wechselrichter")
    );
    srv.stop().await;
}

async fn inline_edit_and_delete_after_confirmation(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann = session(&db, &srv, "ann@example.com", true).await;
    let id = db
        .inverter(&ann.scope, InverterKind::Opendtu, "116166771004")
        .await
        .get();
    db.inverter(&ann.scope, InverterKind::Opendtu, "116180000001")
        .await;

    let form = ann.htmx(&format!("/inverters/{id}/edit")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.text
            .trim_start()
            .starts_with(&format!("<li id=\"inverter-{id}\"")),
        "a fragment: {}",
        form.text
    );
    assert!(!form.text.contains("<html"));
    assert!(
        form.text
            .contains(&format!("hx-post=\"/inverters/{id}/edit\""))
    );
    assert!(form.text.contains("value=\"116166771004\""));
    let full = ann.page(&format!("/inverters/{id}/edit")).await;
    assert!(
        full.text.contains("<html")
            && full
                .text
                .contains(&format!("action=\"/inverters/{id}/edit\""))
    );

    let changed = [
        ("kind", "opendtu"),
        ("name", "Garage"),
        ("serial", "116166771004"),
        ("rated_power_w", "600"),
    ];
    let saved = ann
        .post(&format!("/inverters/{id}/edit"), &changed, true)
        .await;
    assert_eq!(saved.status, StatusCode::OK);
    assert!(
        saved.text.contains(">Garage</a>") && saved.text.contains("600 W"),
        "{}",
        saved.text
    );
    assert!(!saved.text.contains("<html"));
    let clash = [
        ("kind", "opendtu"),
        ("name", "Garage"),
        ("serial", "116180000001"),
    ];
    let refused = ann
        .post(&format!("/inverters/{id}/edit"), &clash, true)
        .await;
    assert_eq!(refused.status, StatusCode::OK);
    assert!(
        error_of(&refused.text, &format!("{id}-serial-error")).contains("already have an inverter")
    );
    let refused = ann
        .post(&format!("/inverters/{id}/edit"), &clash, false)
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        error_of(&refused.text, &format!("{id}-serial-error")).contains("already have an inverter")
    );
    let plain = ann
        .post(&format!("/inverters/{id}/edit"), &changed, false)
        .await;
    assert_eq!(
        (plain.status, plain.header("location")),
        (StatusCode::SEE_OTHER, "/inverters")
    );
    let back = ann.htmx(&format!("/inverters/{id}/item")).await;
    assert!(
        back.text.contains(">Garage</a>"),
        "cancel swaps the item back"
    );

    // Deleting asks first, with or without JavaScript.
    let ask = ann.page(&format!("/inverters/{id}/delete")).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.text.contains("Delete „Garage“?") && ask.text.contains("cannot be undone"));
    assert!(ask.text.contains(&format!(
        "<form method=\"post\" action=\"/inverters/{id}/delete\""
    )));
    let ask = ann.htmx(&format!("/inverters/{id}/delete")).await;
    assert!(
        ask.text
            .contains(&format!("hx-post=\"/inverters/{id}/delete\""))
    );
    assert!(
        db.store
            .inverter(&ann.scope, InverterId::new(id))
            .await
            .is_ok(),
        "asking deletes nothing"
    );
    let gone = ann
        .post(&format!("/inverters/{id}/delete"), &[], true)
        .await;
    assert_eq!(
        (gone.status, gone.text.as_str()),
        (StatusCode::OK, ""),
        "HTMX removes the item"
    );
    assert_eq!(db.store.inverters(&ann.scope).await.unwrap().len(), 1);
    let other = db.store.inverters(&ann.scope).await.unwrap()[0].id.get();
    let gone = ann
        .post(&format!("/inverters/{other}/delete"), &[], false)
        .await;
    assert_eq!(
        (gone.status, gone.header("location")),
        (StatusCode::SEE_OTHER, "/inverters?deleted=1")
    );
    assert!(
        ann.page("/inverters?deleted=1")
            .await
            .text
            .contains("The inverter was deleted.")
    );
    srv.stop().await;
}

async fn pushed_serials_are_offered_for_one_click_registration(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann = session(&db, &srv, "ann@example.com", true).await;
    let bob = session(&db, &srv, "bob@example.com", true).await;
    db.store
        .record_unknown_serial(
            &ann.scope,
            "116180000009",
            Some("199980000001"),
            june(10, 0),
        )
        .await
        .unwrap();
    let page = ann.page("/inverters").await;
    assert!(page.text.contains("Seen but not registered"));
    assert!(
        page.text
            .contains("<input type=\"hidden\" name=\"serial\" value=\"116180000009\">")
    );
    assert!(page.text.contains("DTU 199980000001"));
    assert!(
        !bob.page("/inverters").await.text.contains("116180000009"),
        "only the pushing account"
    );

    let fields = [
        ("kind", "opendtu"),
        ("name", "Inverter 116180000009"),
        ("serial", "116180000009"),
    ];
    let added = ann.post("/inverters", &fields, false).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    let page = ann.page(added.header("location")).await;
    assert!(page.text.contains("The inverter was added."));
    assert!(
        !page.text.contains("Seen but not registered"),
        "no longer offered"
    );
    let all = db.store.inverters(&ann.scope).await.unwrap();
    assert_eq!(all[0].serial.as_ref().unwrap().as_str(), "116180000009");
    srv.stop().await;
}

async fn export_page_downloads_csv_for_chosen_inverters_and_days(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann = session(&db, &srv, "ann@example.com", true).await;
    let a = db
        .inverter(&ann.scope, InverterKind::Opendtu, "116166771004")
        .await;
    let b = db
        .inverter(&ann.scope, InverterKind::Opendtu, "116180000001")
        .await;
    db.store
        .update_inverter(
            &ann.scope,
            b,
            &deyehard_store::InverterFields {
                name: HOSTILE.to_owned(),
                kind: InverterKind::Opendtu,
                serial: Some(deyehard_core::DeviceSerial::parse("116180000001").unwrap()),
                logger_serial: None,
                rated_power_w: None,
                mppt_count: None,
            },
        )
        .await
        .unwrap();
    store_readings(&db, &ann.scope, a, &series(june(21, 50), 20)).await;
    store_readings(&db, &ann.scope, b, &series(june(21, 55), 2)).await;

    let page = ann.page("/export").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains(HOSTILE), "names are escaped");
    assert!(page.text.contains(&format!(
        "name=\"inverter\" value=\"{}\" class=\"checkbox checkbox-sm\" checked",
        a.get()
    )));
    assert!(
        page.text.contains("action=\"/export/download\"") && page.text.contains("Europe/Berlin")
    );

    // 21:50–22:09 UTC is 23:50–00:09 in Berlin: the local day 2025-06-15 holds the first ten.
    let query = format!(
        "inverter={}&inverter={}&from=2025-06-15&to=2025-06-15&kind=readings",
        a.get(),
        b.get()
    );
    let csv = ann.page(&format!("/export/download?{query}")).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert_eq!(csv.header("content-type"), "text/csv; charset=utf-8");
    assert!(
        csv.header("content-disposition")
            .contains("deyehard_inverters_readings_2025-06-15_2025-06-15_Europe-Berlin.csv")
    );
    let lines: Vec<&str> = csv.text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 1 + 10 + 2, "{lines:?}");
    assert!(
        lines[6].starts_with("2025-06-15T21:55:00Z,2025-06-15 23:55:00,116166771004,"),
        "{}",
        lines[6]
    );
    assert!(
        lines[7].starts_with("2025-06-15T21:55:00Z,2025-06-15 23:55:00,116180000001,"),
        "merged by time: {}",
        lines[7]
    );
    let daily = ann
        .page(&format!(
            "/export/download?inverter={}&from=2025-06-15&to=2025-06-16&kind=daily",
            a.get()
        ))
        .await;
    let days: Vec<&str> = daily.text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(days.len(), 3, "{days:?}");

    for (query, id, message) in [
        (
            "from=2025-06-15&to=2025-06-15",
            "export-inverter-error",
            "Choose at least one inverter.",
        ),
        (
            &*format!("inverter={}&from=15.06.2025&to=2025-06-15", a.get()),
            "export-from-error",
            "a date like",
        ),
        (
            &*format!("inverter={}&from=2025-06-15&to=2025-06-14", a.get()),
            "export-to-error",
            "must not be before",
        ),
    ] {
        let refused = ann.page(&format!("/export/download?{query}")).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(
            error_of(&refused.text, id).contains(message),
            "{query}: {}",
            refused.text
        );
    }
    srv.stop().await;
}
