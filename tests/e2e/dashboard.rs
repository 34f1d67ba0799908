//! The dashboards through real sockets, on both store backends: every page and JSON endpoint
//! of the dashboards (status, key content, escaping of device-supplied names in HTML and in
//! JSON data, another tenant's id answered like a missing one), energy on real-shaped data
//! (the summary's peak of the sum, DST days with 23/25 hourly bars), bad query values, the
//! start page's weight and that no page loads anything from another host.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use deyehard_core::{DcReading, InverterId, InverterKind, Reading, Source, TenantScope};
use deyehard_store::{InverterFields, InverterStore, NewUser, ReadingWriter, UserStore};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Backend, TestServer, TestStore, http_client};

on_both_backends!(
    pages_show_live_data_and_escape_device_names,
    another_tenants_ids_are_404_like_missing_ones,
    energy_and_summary_on_real_shaped_days,
    bad_query_values_get_a_4xx_naming_the_field,
    without_a_session_pages_redirect_and_the_api_says_401,
    start_page_explains_how_to_connect_and_stays_light,
);

const PASSWORD: &str = "Sunny-Day-42";
const HOSTILE: &str = "<script>alert(1)</script>";
const BERLIN: Tz = chrono_tz::Europe::Berlin;

/// A signed-in user: scope, bearer token (also the session cookie value).
struct User {
    scope: TenantScope,
    token: String,
}

async fn user(db: &TestStore, srv: &TestServer, email: &str) -> User {
    let hash = deyehard_core::auth::password::hash_password(PASSWORD).unwrap();
    let created = db
        .store
        .create_user(&NewUser {
            email: email.to_owned(),
            password_hash: hash.into_string(),
            display_name: "Ann".to_owned(),
            time_zone: Some("Europe/Berlin".to_owned()),
            locale: None,
            is_verified: true,
            is_superuser: false,
        })
        .await
        .unwrap();
    let answer = http_client()
        .post(srv.url("/api/auth/token"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    User {
        scope: TenantScope::for_tests(created.id),
        token: body["access_token"].as_str().unwrap().to_owned(),
    }
}

/// A GET with the session cookie (pages) and the bearer token (API).
async fn get(srv: &TestServer, user: &User, path: &str) -> (StatusCode, String) {
    let answer = http_client()
        .get(srv.url(path))
        .header("cookie", format!("deyehard_session={}", user.token))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    (status, answer.text().await.unwrap())
}

async fn get_ok(srv: &TestServer, user: &User, path: &str) -> String {
    let (status, body) = get(srv, user, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

async fn get_json(srv: &TestServer, user: &User, path: &str) -> Value {
    serde_json::from_str(&get_ok(srv, user, path).await).unwrap()
}

async fn inverter(db: &TestStore, scope: &TenantScope, name: &str, serial: &str) -> InverterId {
    db.store
        .create_inverter(
            scope,
            &InverterFields {
                name: name.to_owned(),
                kind: InverterKind::Opendtu,
                serial: Some(serial.parse().unwrap()),
                logger_serial: None,
                rated_power_w: Some(800.0),
                mppt_count: Some(2),
            },
        )
        .await
        .unwrap()
        .id
}

/// An OpenDTU push of one inverter with two named DC channels.
fn push_body(serial: &str, time: DateTime<Utc>, power: f64, channel_name: &str) -> String {
    let channel = |n: u8, name: &str| {
        json!({"channel": n, "name": name, "power": power / 2.0, "voltage": 30.0 + f64::from(n),
               "current": power / 60.0, "yield_day": 100.0 * f64::from(n), "yield_total": 5.0, "irradiation": 40.0})
    };
    json!({"timestamp": time.to_rfc3339(), "dtu_serial": "199980140256", "inverters": [{
        "serial": serial, "name": "device", "reachable": true, "producing": power > 0.0,
        "last_update": time.timestamp() - 3,
        "measurements": {"power_ac": power, "voltage_ac": 230.0, "current_ac": power / 230.0,
                         "frequency": 50.0, "power_factor": 1.0, "power_dc": power * 1.04},
        "dc_channels": [channel(1, channel_name), channel(2, "Nord")]}]})
    .to_string()
}

pub(crate) async fn push(srv: &TestServer, key: &str, body: String) {
    let answer = http_client()
        .post(srv.url("/api/opendtu/measurements"))
        .header("X-API-Key", key)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        StatusCode::CREATED,
        "{}",
        answer.text().await.unwrap()
    );
}

/// Every `http://` / `https://` URL of a page that is neither this server nor the SVG namespace.
fn external_urls<'a>(html: &'a str, base: &str) -> Vec<&'a str> {
    ["http://", "https://"]
        .iter()
        .flat_map(|scheme| html.match_indices(scheme))
        .map(|(at, _)| {
            let rest = &html[at..];
            let end = rest.find(|c: char| c.is_whitespace() || "\"'()<>`".contains(c));
            &rest[..end.unwrap_or(rest.len())]
        })
        .filter(|url| !url.starts_with(base) && *url != "http://www.w3.org/2000/svg")
        .collect()
}

/// What the CSP (`script-src 'self'`, no inline style) would block: inline scripts, `on…=`
/// handlers, `style` attributes or elements.
fn csp_violations(html: &str) -> Vec<&str> {
    let mut found: Vec<&str> = html
        .match_indices("<script")
        .map(|(at, _)| &html[at..at + html[at..].find('>').unwrap_or(0) + 1])
        .filter(|tag| {
            !tag.contains(" src=\"/static/") && *tag != "<script type=\"application/json\">"
        })
        .collect();
    for (at, _) in html.match_indices(" on") {
        let rest = &html[at + 3..];
        let name = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        if name > 0 && rest[name..].starts_with('=') {
            found.push(&html[at..at + 3 + name]);
        }
    }
    found.extend(
        html.match_indices(" style=")
            .map(|(at, _)| &html[at..at + 7]),
    );
    found.extend(
        html.match_indices("<style")
            .map(|(at, _)| &html[at..at + 6]),
    );
    found
}

/// The page never contains the hostile name as markup, only escaped.
fn assert_escaped(html: &str, what: &str) {
    assert!(!html.contains(HOSTILE), "{what}: unescaped device name");
    assert!(
        !html.contains("<script>alert"),
        "{what}: unescaped device name"
    );
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{what}: the name is shown, escaped"
    );
}

async fn pages_show_live_data_and_escape_device_names(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann = user(&db, &srv, "ann@example.com").await;
    let key = db.api_key(&ann.scope).await;
    let id = inverter(&db, &ann.scope, HOSTILE, "116100000001").await;
    let now = Utc::now();
    for minutes in [3, 2, 1] {
        let body = push_body(
            "116100000001",
            now - TimeDelta::minutes(minutes),
            423.0,
            HOSTILE,
        );
        push(&srv, &key, body).await;
    }

    let start = get_ok(&srv, &ann, "/").await;
    assert_escaped(&start, "start page");
    assert!(start.contains(&format!("id=\"live-power-{}\"", id.get())));
    assert!(start.contains("423 W"), "live power on the card");
    assert!(start.contains("data-state=\"producing\""));
    assert!(start.contains("hx-get=\"/start/live\"") && start.contains("hx-trigger=\"every 30s\""));
    let german = get_ok(&srv, &ann, "/?lang=de").await;
    assert!(german.contains("Leistung jetzt") && german.contains("Produziert"));
    let live = get_ok(&srv, &ann, "/start/live").await;
    assert!(live.starts_with("<section id=\"live\"") && !live.contains("<html"));
    assert_escaped(&live, "live fragment");

    let dashboard = get_ok(&srv, &ann, &format!("/inverters/{}", id.get())).await;
    assert_escaped(&dashboard, "dashboard");
    for hook in [
        "id=\"power-chart\"",
        "data-testid=\"current-power\"",
        "data-testid=\"range-1H\"",
        "data-testid=\"range-30D\"",
        "id=\"energy-chart\"",
        "data-testid=\"energy-prev\"",
    ] {
        assert!(dashboard.contains(hook), "dashboard: {hook}");
    }
    assert!(dashboard.contains(&format!(
        "data-series-url=\"/api/inverters/{}/power\"",
        id.get()
    )));
    let stats = get_ok(&srv, &ann, &format!("/inverters/{}/live", id.get())).await;
    assert!(stats.contains("423 W") && stats.starts_with("<section id=\"stats\""));
    let week = get_ok(
        &srv,
        &ann,
        &format!("/inverters/{}/energy?period=week", id.get()),
    )
    .await;
    assert!(
        week.starts_with("<section id=\"energy-card\"") && week.contains("data-period=\"week\"")
    );

    let dc = get_ok(&srv, &ann, &format!("/inverters/{}/dc", id.get())).await;
    assert_escaped(&dc, "DC page");
    assert!(dc.contains("data-testid=\"dc-channel\"") && dc.contains("Nord"));
    // the chart's JSON block has the channel name with `<` written as \u003c
    assert!(
        dc.contains("\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"),
        "{dc}"
    );

    let summary = get_ok(&srv, &ann, "/summary").await;
    assert_escaped(&summary, "summary");
    assert!(
        summary.contains("\\u003cscript\\u003ealert(1)"),
        "inverter name in the JSON block"
    );
    assert!(summary.contains("id=\"summary-power-chart\""));
    assert!(get_ok(&srv, &ann, "/summary/live").await.contains("423 W"));
    let energy = get_ok(&srv, &ann, "/summary/energy?period=month").await;
    assert!(energy.contains("data-period=\"month\""));
    assert!(
        !energy.contains("<script"),
        "swapped content carries its data in an attribute"
    );
    assert!(
        energy.contains("data-chart-json=\"{&#34;timestamps&#34;"),
        "{energy}"
    );

    // the same names in the JSON API are plain JSON strings
    let channels = get_json(
        &srv,
        &ann,
        &format!("/api/inverters/{}/dc/channels", id.get()),
    )
    .await;
    assert_eq!(channels[0]["label"], HOSTILE);
    assert_eq!(channels[0]["today_wh"], 100.0);
    let stats = get_json(&srv, &ann, &format!("/api/inverters/{}/stats", id.get())).await;
    assert_eq!(
        (stats["state"].as_str(), stats["live_power_w"].as_f64()),
        (Some("producing"), Some(423.0))
    );
    assert_eq!(stats["name"], HOSTILE);
    let power = get_json(&srv, &ann, &format!("/api/inverters/{}/power", id.get())).await;
    let values = power["series"][0]["values"].as_array().unwrap().clone();
    assert!(
        !values.is_empty() && values.iter().all(|v| v == 423.0),
        "{values:?}"
    );
    let dc_chart = get_json(
        &srv,
        &ann,
        &format!("/api/inverters/{}/dc?metric=voltage", id.get()),
    )
    .await;
    assert_eq!(dc_chart["series"][0]["label"], HOSTILE);
    assert_eq!(dc_chart["series"][1]["unit"], "V");

    for page in [start, german, live, dashboard, dc, summary, energy] {
        assert_eq!(external_urls(&page, &srv.base), Vec::<&str>::new());
        assert_eq!(csp_violations(&page), Vec::<&str>::new());
    }
    srv.stop().await;
}

async fn another_tenants_ids_are_404_like_missing_ones(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann = user(&db, &srv, "ann@example.com").await;
    let bob = user(&db, &srv, "bob@example.com").await;
    let anns = inverter(&db, &ann.scope, "Ann's", "116100000011").await;
    let reading = Reading::new(Utc::now() - TimeDelta::minutes(1), Source::Opendtu);
    db.store
        .write_readings(&ann.scope, &[(anns, reading)], Utc::now())
        .await
        .unwrap();
    let missing = anns.get() + 1000;
    for suffix in [
        "/stats",
        "/energy",
        "/power",
        "/dc",
        "/dc/channels",
        "/energy?period=year",
    ] {
        let (status, theirs) = get(
            &srv,
            &bob,
            &format!("/api/inverters/{}{suffix}", anns.get()),
        )
        .await;
        let (missing_status, nothing) =
            get(&srv, &bob, &format!("/api/inverters/{missing}{suffix}")).await;
        assert_eq!(
            (status, missing_status),
            (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND),
            "{suffix}"
        );
        assert_eq!(theirs, nothing, "{suffix}: the same body");
    }
    for suffix in ["", "/live", "/energy", "/dc"] {
        let (status, page) = get(&srv, &bob, &format!("/inverters/{}{suffix}", anns.get())).await;
        let (missing_status, _) = get(&srv, &bob, &format!("/inverters/{missing}{suffix}")).await;
        assert_eq!(
            (status, missing_status),
            (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND),
            "{suffix}"
        );
        assert!(!page.contains("Ann's"), "{suffix}");
    }
    assert_eq!(
        get(&srv, &bob, "/inverters/abc").await.0,
        StatusCode::NOT_FOUND
    );
    // Bob's own views do not show Ann's inverter
    let summary = get_json(&srv, &bob, "/api/summary").await;
    assert_eq!(summary["inverters"], json!([]));
    assert!(!get_ok(&srv, &bob, "/summary").await.contains("Ann&#39;s"));
    srv.stop().await;
}

/// One reading a minute over the whole local day, power a bell between `from` and `to`
/// (hours), counters integrating it.
fn bell_day(date: NaiveDate, peak: f64, from: f64, to: f64) -> Vec<Reading> {
    let (start, end) = deyehard_core::energy::day_bounds(date, BERLIN);
    let mut total = 10_000.0;
    let mut day = 0.0;
    let mut out = Vec::new();
    let mut t = start;
    while t < end {
        let local = t.with_timezone(&BERLIN);
        let hour =
            chrono::Timelike::hour(&local) as f64 + chrono::Timelike::minute(&local) as f64 / 60.0;
        let p = if hour > from && hour < to {
            peak * ((hour - from) / (to - from) * std::f64::consts::PI).sin()
        } else {
            0.0
        };
        total += p / 60.0;
        day += p / 60.0;
        let mut r = Reading::new(t, Source::Opendtu);
        r.power_ac_w = Some(p);
        r.yield_day_wh = Some(day);
        r.yield_total_wh = Some(total);
        r.producing = p > 0.0;
        let mut dc = DcReading::new(1);
        dc.power_w = Some(p);
        r.dc = vec![dc];
        out.push(r);
        t += TimeDelta::minutes(1);
    }
    out
}

async fn write(db: &TestStore, scope: &TenantScope, id: InverterId, readings: &[Reading]) {
    for part in readings.chunks(300) {
        let batch: Vec<_> = part.iter().map(|r| (id, r.clone())).collect();
        db.store
            .write_readings(scope, &batch, Utc::now())
            .await
            .unwrap();
    }
}

fn sum(values: &Value) -> f64 {
    values
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .sum()
}

async fn energy_and_summary_on_real_shaped_days(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann = user(&db, &srv, "ann@example.com").await;
    let east = inverter(&db, &ann.scope, "East", "116100000021").await;
    let west = inverter(&db, &ann.scope, "West", "116100000022").await;
    let june = NaiveDate::from_ymd_opt(2025, 6, 15).unwrap();
    write(&db, &ann.scope, east, &bell_day(june, 600.0, 5.0, 15.0)).await;
    write(&db, &ann.scope, west, &bell_day(june, 500.0, 10.0, 20.0)).await;

    // stacked power: the total's highest point is the peak of the sum, well below 1100 W
    let power = get_json(
        &srv,
        &ann,
        "/api/summary/power?from=2025-06-15&to=2025-06-15&points=300",
    )
    .await;
    assert_eq!(power["stacked"], true);
    let series = power["series"].as_array().unwrap();
    assert_eq!(series.len(), 3);
    assert_eq!(
        (series[0]["label"].as_str(), series[2]["total"].as_bool()),
        (Some("East"), Some(true))
    );
    let peak = series[2]["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .fold(0.0, f64::max);
    assert!(peak > 700.0 && peak < 900.0, "peak of the sum {peak}");
    for (i, total) in series[2]["values"].as_array().unwrap().iter().enumerate() {
        let parts: f64 = [&series[0], &series[1]]
            .iter()
            .filter_map(|s| s["values"][i].as_f64())
            .sum();
        assert!((total.as_f64().unwrap_or(0.0) - parts).abs() < 1e-6);
    }

    // energy bars: hours, days, months; totals and navigation
    let day = get_json(
        &srv,
        &ann,
        &format!(
            "/api/inverters/{}/energy?period=day&date=2025-06-15",
            east.get()
        ),
    )
    .await;
    assert_eq!(day["buckets"].as_array().unwrap().len(), 24);
    assert_eq!(
        (day["previous"].as_str(), day["next"].as_str()),
        (Some("2025-06-14"), Some("2025-06-16"))
    );
    assert_eq!(day["time_zone"], "Europe/Berlin");
    let bars: f64 = day["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["energy_wh"].as_f64().unwrap())
        .sum();
    assert!((bars - day["total_wh"].as_f64().unwrap()).abs() < 1e-6);
    let expected = 600.0 * 10.0 * 2.0 / std::f64::consts::PI; // ∫ of the bell, Wh
    assert!((bars - expected).abs() < 5.0, "{bars} vs {expected}");
    for (period, count) in [("week", 7), ("month", 30), ("year", 12)] {
        let view = get_json(
            &srv,
            &ann,
            &format!(
                "/api/inverters/{}/energy?period={period}&date=2025-06-15",
                east.get()
            ),
        )
        .await;
        assert_eq!(view["buckets"].as_array().unwrap().len(), count, "{period}");
        assert!(
            (view["total_wh"].as_f64().unwrap() - bars).abs() < 1e-6,
            "{period}"
        );
    }
    let summary = get_json(&srv, &ann, "/api/summary/energy?period=day&date=2025-06-15").await;
    assert_eq!(summary["inverters"].as_array().unwrap().len(), 2);
    let both: f64 = summary["inverters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| sum(&i["energy_wh"]))
        .sum();
    assert!((both - summary["total_wh"].as_f64().unwrap()).abs() < 1e-6);

    // DST days in the user's zone have 23 and 25 hourly bars
    for (date, hours) in [("2025-03-30", 23), ("2025-10-26", 25)] {
        let d: NaiveDate = date.parse().unwrap();
        write(&db, &ann.scope, west, &bell_day(d, 300.0, 8.0, 16.0)).await;
        let view = get_json(
            &srv,
            &ann,
            &format!("/api/inverters/{}/energy?date={date}", west.get()),
        )
        .await;
        let buckets = view["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), hours, "{date}");
        let labels: Vec<&str> = buckets
            .iter()
            .map(|b| b["label"].as_str().unwrap())
            .collect();
        assert_eq!(
            labels.iter().filter(|l| l.ends_with("T02:00:00")).count(),
            hours - 23,
            "{date}: {labels:?}"
        );
        let page = get_ok(
            &srv,
            &ann,
            &format!("/inverters/{}?period=day&date={date}", west.get()),
        )
        .await;
        assert!(page.contains(&format!("data-date=\"{date}\"")));
        let stacked = get_json(&srv, &ann, &format!("/api/summary/energy?date={date}")).await;
        assert_eq!(stacked["buckets"].as_array().unwrap().len(), hours);
    }

    // live: a fresh reading counts, a stale one does not
    let now = Utc::now();
    let fresh = |minutes: i64, power: f64| {
        let mut r = Reading::new(now - TimeDelta::minutes(minutes), Source::Opendtu);
        r.power_ac_w = Some(power);
        r
    };
    write(
        &db,
        &ann.scope,
        east,
        &[fresh(3, 150.0), fresh(2, 150.0), fresh(1, 150.0)],
    )
    .await;
    write(
        &db,
        &ann.scope,
        west,
        &[fresh(62, 999.0), fresh(61, 999.0), fresh(60, 999.0)],
    )
    .await;
    let live = get_json(&srv, &ann, "/api/summary").await;
    assert_eq!(live["live_power_w"], 150.0, "{live}");
    assert_eq!(live["producing"], 1);
    let states: Vec<&str> = live["inverters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["state"].as_str().unwrap())
        .collect();
    assert_eq!(states[0], "producing");
    assert!(states[1] == "offline" || states[1] == "idle", "{states:?}");
    srv.stop().await;
}

async fn bad_query_values_get_a_4xx_naming_the_field(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann = user(&db, &srv, "ann@example.com").await;
    let id = inverter(&db, &ann.scope, "East", "116100000031")
        .await
        .get();
    for (path, field) in [
        (
            format!("/api/inverters/{id}/energy?period=decade"),
            "`period`",
        ),
        (
            format!("/api/inverters/{id}/energy?date=2025-13-01"),
            "`date`",
        ),
        (
            format!("/api/inverters/{id}/power?from=yesterday"),
            "`from`",
        ),
        (
            format!("/api/inverters/{id}/power?from=2025-06-16&to=2025-06-15"),
            "`from`",
        ),
        (format!("/api/inverters/{id}/power?points=1"), "`points`"),
        (format!("/api/inverters/{id}/dc?metric=volts"), "`metric`"),
        ("/api/summary/power?to=soon".to_owned(), "`to`"),
        ("/api/summary/energy?period=hour".to_owned(), "`period`"),
    ] {
        let (status, body) = get(&srv, &ann, &path).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(
            body["message"].as_str().unwrap().contains(field),
            "{path}: {body}"
        );
    }
    let (status, body) = get(
        &srv,
        &ann,
        &format!("/api/inverters/{id}/power?points=many"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("points"));
    let (status, page) = get(&srv, &ann, &format!("/inverters/{id}?period=decade")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("`period`") || page.contains("&#96;period&#96;"),
        "{page}"
    );
    srv.stop().await;
}

async fn without_a_session_pages_redirect_and_the_api_says_401(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let client = http_client();
    for path in [
        "/api/summary",
        "/api/inverters/1/stats",
        "/api/inverters/1/power",
        "/api/summary/power",
    ] {
        let status = client.get(srv.url(path)).send().await.unwrap().status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let page = client.get(srv.url("/inverters/1/dc")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        page.headers()["location"],
        "/login?next=%2Finverters%2F1%2Fdc"
    );
    let fragment = client
        .get(srv.url("/start/live"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(
        fragment.headers()["hx-redirect"],
        "/login?next=%2Fstart%2Flive"
    );
    srv.stop().await;
}

async fn start_page_explains_how_to_connect_and_stays_light(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann = user(&db, &srv, "ann@example.com").await;
    let empty = get_ok(&srv, &ann, "/").await;
    assert!(
        empty.contains("data-testid=\"connect-help\"")
            && empty.contains("data-testid=\"no-inverters\"")
    );
    assert!(empty.contains(&format!("{}/api/opendtu/measurements", srv.base)));
    assert!(
        empty.contains("X-API-Key") && empty.contains(">127.0.0.1<") && empty.contains("10000")
    );
    assert!(!empty.contains("id=\"live\""));
    db.api_key(&ann.scope).await;
    let with_key = get_ok(&srv, &ann, "/").await;
    assert!(with_key.contains(">dh_"), "the key's prefix is shown");

    // first load: the page and everything it links, as transferred (compressed)
    let mut total = with_key.len();
    let mut assets = 0;
    for (at, _) in with_key.match_indices("\"/static/") {
        let url = with_key[at + 1..].split('"').next().unwrap();
        let answer = http_client()
            .get(srv.url(url))
            .header("accept-encoding", "br, gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{url}");
        total += answer.bytes().await.unwrap().len();
        assets += 1;
    }
    assert!(assets >= 6, "{assets} assets");
    assert!(total < 150 * 1024, "the start page transfers {total} bytes");
    srv.stop().await;
}
