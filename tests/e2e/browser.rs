//! The whole product in a real browser: headless Chromium driven over WebDriver (fantoccini),
//! against the in-process server on SQLite. One user signs up, confirms the address from the
//! mail, logs in, adds an OpenDTU inverter and an API key through the pages, pushes readings
//! with that key, and then sees them: live power on the start page, the dashboard's chart
//! (drawn, and reloaded for another range), the CSV export, the German pages, a phone-wide
//! window without horizontal scrolling, and logging out.
//!
//! Light and dark screenshots of the start page and the dashboard are written to
//! `target/tmp/screenshots/`, and to `docs/screenshots/` with `UPDATE_SCREENSHOTS=1`.
//!
//! Only built with `--features browser-tests`; needs `chromedriver` (on `PATH`, or
//! `DEYEHARD_CHROMEDRIVER`) and Chromium (`/usr/bin/chromium`, or `DEYEHARD_CHROMIUM`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::dashboard::push;
use crate::support::{Backend, STEP, TestServer, TestStore, http_client, link_in};

const EMAIL: &str = "erika@example.com";
const PASSWORD: &str = "Sunny-Roof-42";
const SERIAL: &str = "116180000042";
/// Readings every 10 minutes over the past six hours.
const PUSHES: i64 = 37;
/// How long a page may take to show what a step waits for.
const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_from_signup_to_export_in_chromium() {
    let db = TestStore::new(Backend::Sqlite).await;
    let srv = TestServer::start(&db).await;
    let mut driver = Chromedriver::start().await;
    let b = driver.open_browser().await;
    let started = Instant::now();
    let now = Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap();
    // A zone where it is now late afternoon: the six hours of readings fall on one day and
    // look like one (in the screenshots, too).
    let zone = afternoon_zone(now);

    sign_up(&b, &srv, zone).await;
    confirm_and_log_in(&b, &srv).await;
    let id = add_inverter(&b).await;
    let key = create_api_key(&b).await;
    let pushes = push_readings(&srv, &key, now).await;
    let last_power = format!("{:.0} W", pushes[pushes.len() - 1].1);
    start_page_shows_the_live_power(&b, id, &last_power).await;
    dashboard_draws_the_chart(&b, id, &pushes, &last_power).await;
    another_range_draws_again(&b).await;
    screenshots_in_both_themes(&b, id).await;
    export_has_every_reading(&b, id, now, &pushes).await;
    german_pages(&b, id, &last_power).await;
    pages_fit_a_phone(&b, &srv, id).await;
    log_out(&b, &srv).await;

    eprintln!("browser journey took {:?}", started.elapsed());
    driver.close(b).await;
    srv.stop().await;
}

/// Signs up with the form on /signup.
async fn sign_up(b: &Client, srv: &TestServer, zone: &str) {
    goto(b, srv, "/signup").await;
    fill(b, "#signup-email", EMAIL).await;
    fill(b, "#signup-name", "Erika").await;
    fill(b, "#password", PASSWORD).await;
    find(b, "#signup-tz", "signup: the time zone select")
        .await
        .select_by_value(zone)
        .await
        .unwrap_or_else(|e| panic!("signup: choose the time zone {zone}: {e}"));
    click(
        b,
        "form[action='/signup'] button[type=submit]",
        "signup: submit",
    )
    .await;
    heading(
        b,
        "Check your inbox",
        "signup: the page asks to check the inbox",
    )
    .await;
}

/// Opens the link from the mail in the browser, then logs in with the form.
async fn confirm_and_log_in(b: &Client, srv: &TestServer) {
    let mails = srv.wait_for_mails(EMAIL, 1).await;
    let link = link_in(&mails[0], &srv.url("/verify?token="))
        .unwrap_or_else(|| panic!("verification link in the mail:\n{}", mails[0]));
    b.goto(&link).await.expect("open the verification link");
    heading(
        b,
        "Email confirmed",
        "the verification link confirms the address",
    )
    .await;

    click(
        b,
        "main a.btn[href='/login']",
        "confirmation page: on to the login",
    )
    .await;
    fill(b, "input[name=email]", EMAIL).await;
    fill(b, "input[name=password]", PASSWORD).await;
    click(
        b,
        "form[action='/login'] button[type=submit]",
        "login: submit",
    )
    .await;
    heading(b, "Welcome, Erika", "the login leads to the start page").await;
    find(
        b,
        "[data-testid='no-inverters']",
        "start page: a new user has no inverters",
    )
    .await;
}

/// Adds an OpenDTU inverter with the form on the inverters page (HTMX); returns its id.
async fn add_inverter(b: &Client) -> i64 {
    click(b, "nav a[href='/inverters']", "nav: Inverters").await;
    heading(b, "Inverters", "the inverters page").await;
    find(b, "#new-kind", "inverter form: the kind select")
        .await
        .select_by_value("opendtu")
        .await
        .expect("inverter form: choose OpenDTU");
    fill(b, "#new-name", "Balcony west").await;
    fill(b, "#new-serial", SERIAL).await;
    fill(b, "#new-rated_power_w", "800").await;
    fill(b, "#new-mppt_count", "2").await;
    click(
        b,
        "form[hx-post='/inverters'] button[type=submit]",
        "inverter form: Add",
    )
    .await;
    let added = find(
        b,
        "#inverter-list li a.link",
        "inverters: the new one in the list",
    )
    .await;
    assert_eq!(
        added.text().await.unwrap(),
        "Balcony west",
        "inverters: the list shows the name"
    );
    assert_eq!(
        text(b, "#inverter-list .badge-outline").await,
        "OpenDTU",
        "inverters: the list shows the kind"
    );
    let href = added.attr("href").await.unwrap().unwrap_or_default();
    href.strip_prefix("/inverters/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("inverters: the link {href:?} has the id"))
}

/// Creates an API key on the account's keys tab; returns the secret the page shows once.
async fn create_api_key(b: &Client) -> String {
    click(b, "nav a[href='/account']", "nav: Account").await;
    click(
        b,
        "a[role=tab][href='/account/keys']",
        "account: the API keys tab",
    )
    .await;
    fill(b, "#key-name", "DTU balcony").await;
    click(
        b,
        "form[action='/account/keys'] button[type=submit]",
        "keys: Create",
    )
    .await;
    let key = text(b, "#new-key").await;
    assert!(
        key.starts_with("dh_"),
        "keys: the page shows the new key ({key:?})"
    );
    key
}

/// The DTU pushes with `key` over HTTP: every 10 minutes over the past six hours, the last one
/// a minute ago. Returns the times and powers.
async fn push_readings(
    srv: &TestServer,
    key: &str,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, f64)> {
    let pushes: Vec<(DateTime<Utc>, f64)> = (0..PUSHES)
        .map(|i| {
            (
                now - TimeDelta::minutes(1 + 10 * (PUSHES - 1 - i)),
                power_at(i),
            )
        })
        .collect();
    let mut day_wh = 0.0;
    for (at, power) in &pushes {
        day_wh += power / 6.0; // 10 minutes
        push(srv, key, opendtu_push(*at, *power, day_wh)).await;
    }
    pushes
}

async fn start_page_shows_the_live_power(b: &Client, id: i64, last_power: &str) {
    click(b, "nav a[href='/']", "nav: Start").await;
    let live = find(
        b,
        &format!("#live-power-{id}"),
        "start page: the inverter's live power",
    )
    .await;
    assert_eq!(
        live.text().await.unwrap(),
        last_power,
        "start page: the latest pushed power"
    );
    find(
        b,
        &format!("[data-testid='inverter-card'][data-inverter-id='{id}'][data-state='producing']"),
        "start page: the inverter's card says producing",
    )
    .await;
    assert_eq!(
        text(b, "[data-testid='total-power']").await,
        last_power,
        "start page: the total"
    );
}

/// Opens the dashboard from the start page's card: the power chart is drawn with the pushes.
async fn dashboard_draws_the_chart(
    b: &Client,
    id: i64,
    pushes: &[(DateTime<Utc>, f64)],
    last_power: &str,
) {
    click(
        b,
        &format!("[data-testid='inverter-card'][data-inverter-id='{id}']"),
        "start page: open the inverter",
    )
    .await;
    heading(b, "Balcony west", "the inverter's dashboard").await;
    let canvas = find(
        b,
        "#power-chart[data-chart-state='ready'] canvas",
        "dashboard: the power chart is drawn",
    )
    .await;
    let (_, _, width, height) = canvas.rectangle().await.unwrap();
    assert!(
        width > 300.0 && height > 100.0,
        "dashboard: the chart has a size ({width}×{height})"
    );
    let data = js(
        b,
        "return JSON.parse(document.querySelector('#power-chart script[type=\"application/json\"]').textContent)",
    )
    .await;
    let values: Vec<f64> = data["series"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("dashboard: the chart data has a series ({data})"))
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let peak = pushes.iter().map(|(_, p)| *p).fold(0.0, f64::max);
    assert!(
        values.len() >= 20 && values.iter().all(|v| (0.0..=peak + 0.5).contains(v)),
        "dashboard: the chart has the pushed power ({values:?})"
    );
    assert!(
        painted_pixels(b, "#power-chart canvas").await > 1000,
        "dashboard: the chart's canvas is painted"
    );
    assert_eq!(
        text(b, "[data-testid='current-power']").await,
        last_power,
        "dashboard: the current power"
    );
}

/// 7D: the chart asks the server for seven days and is drawn anew.
async fn another_range_draws_again(b: &Client) {
    js(
        b,
        "document.querySelector('#power-chart canvas').dataset.before = '1'",
    )
    .await;
    click(b, "[data-testid='range-7D']", "dashboard: 7D").await;
    find(
        b,
        "[data-testid='range-7D'][aria-pressed='true']",
        "dashboard: 7D is pressed",
    )
    .await;
    wait_js(
        b,
        "const el = document.getElementById('power-chart');
         const c = el.querySelector('canvas');
         return el.dataset.chartState === 'ready' && c !== null && c.dataset.before === undefined;",
        "dashboard: the chart is drawn anew after choosing 7D",
    )
    .await;
    let spans = js(
        b,
        "return performance.getEntriesByType('resource').map(r => new URL(r.name))
           .filter(u => u.pathname.endsWith('/power') && u.searchParams.has('from'))
           .map(u => (Date.parse(u.searchParams.get('to')) - Date.parse(u.searchParams.get('from'))) / 1000);",
    )
    .await;
    assert!(
        spans.as_array().is_some_and(|s| s
            .iter()
            .any(|s| s.as_f64().is_some_and(|s| s > 7.0 * 86_400.0))),
        "dashboard: 7D asked the server for 7 days of power (spans asked: {spans})"
    );
    assert!(
        painted_pixels(b, "#power-chart canvas").await > 1000,
        "dashboard: the 7-day chart is painted"
    );
}

/// The start page and the dashboard in light and dark, switched with the page's own toggle.
async fn screenshots_in_both_themes(b: &Client, id: i64) {
    click(b, "nav a[href='/']", "nav: Start").await;
    find(b, &format!("#live-power-{id}"), "the start page").await;
    set_theme(b, "light").await;
    screenshot(b, "start-light").await;
    set_theme(b, "dark").await;
    screenshot(b, "start-dark").await;
    click(
        b,
        &format!("[data-testid='inverter-card'][data-inverter-id='{id}']"),
        "start page: open the inverter",
    )
    .await;
    chart_ready(b, "dashboard: the chart in dark").await;
    assert_eq!(
        js(b, "return document.documentElement.dataset.theme").await,
        "dark",
        "the theme stays dark on the next page"
    );
    screenshot(b, "dashboard-dark").await;
    set_theme(b, "light").await;
    chart_ready(b, "dashboard: the chart in light").await;
    screenshot(b, "dashboard-light").await;
}

/// The export page's CSV, downloaded with the browser's session: a header and every push.
async fn export_has_every_reading(
    b: &Client,
    id: i64,
    now: DateTime<Utc>,
    pushes: &[(DateTime<Utc>, f64)],
) {
    click(b, "nav a[href='/export']", "nav: Export").await;
    let checkbox = find(
        b,
        &format!("input[name=inverter][value='{id}']"),
        "export: the inverter's checkbox",
    )
    .await;
    assert!(
        checkbox.is_selected().await.unwrap(),
        "export: the inverter is ticked"
    );
    // The first day defaults to the 1st of the month. Date inputs take typed keys differently
    // in every locale: set it directly, to before the first push.
    let first_day = (now - TimeDelta::days(2)).date_naive().to_string();
    b.execute(
        "document.getElementById('export-from').value = arguments[0]",
        vec![json!(first_day)],
    )
    .await
    .expect("export: set the first day");
    let url = js(
        b,
        "const f = document.querySelector('form[action=\"/export/download\"]');
         return f.action + '?' + new URLSearchParams(new FormData(f)).toString();",
    )
    .await;
    let url = url.as_str().expect("export: the form's URL");
    let cookie = b
        .get_all_cookies()
        .await
        .expect("the browser's cookies")
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ");
    let answer = http_client()
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .expect("export: download");
    assert_eq!(answer.status(), reqwest::StatusCode::OK, "export: {url}");
    let csv = answer.text().await.expect("export: the CSV");
    let header = csv.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("\u{feff}time,time_local,inverter_serial,"),
        "export: the CSV header ({header})"
    );
    for (at, power) in pushes {
        let time = at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let row = csv
            .lines()
            .find(|line| line.starts_with(&time))
            .unwrap_or_else(|| panic!("export: a row for {time}:\n{csv}"));
        assert!(
            row.contains(SERIAL) && row.contains(&format!(",{power}")),
            "export: the row of {time} has the serial and {power} W: {row}"
        );
    }
    assert_eq!(
        csv.lines().count(),
        pushes.len() + 1,
        "export: one row per push"
    );
}

/// The language switch turns the pages German (and it stays so on the next page).
async fn german_pages(b: &Client, id: i64, last_power: &str) {
    click(b, "a[hreflang='de']", "switch to German").await;
    find(b, "html[lang='de']", "the page is German").await;
    click(b, "nav a[href='/']", "nav: Start, in German").await;
    heading(b, "Willkommen, Erika", "the start page in German").await;
    assert!(
        b.source().await.unwrap().contains("Leistung jetzt"),
        "the German start page says Leistung jetzt"
    );
    assert_eq!(
        text(b, &format!("#live-power-{id}")).await,
        last_power,
        "the German start page: live power"
    );
}

/// At 390 px, no page scrolls sideways.
async fn pages_fit_a_phone(b: &Client, srv: &TestServer, id: i64) {
    b.set_window_size(390, 844)
        .await
        .expect("a phone-sized window");
    let inner = js(b, "return window.innerWidth")
        .await
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        (300.0..=400.0).contains(&inner),
        "the window is phone-wide (innerWidth {inner})"
    );
    for path in [
        "/".to_owned(),
        format!("/inverters/{id}"),
        format!("/inverters/{id}/dc"),
        "/inverters".to_owned(),
        "/summary".to_owned(),
        "/export".to_owned(),
        "/account".to_owned(),
        "/account/keys".to_owned(),
    ] {
        goto(b, srv, &path).await;
        wait_js(
            b,
            "return document.readyState === 'complete' &&
               [...document.querySelectorAll('[data-chart]')]
                 .every(c => c.dataset.chartState === 'ready' || c.dataset.chartState === 'empty');",
            &format!("{path}: loaded, charts drawn"),
        )
        .await;
        let overflow = js(
            b,
            "const w = window.innerWidth;
             const wide = [...document.querySelectorAll('body *')]
               .filter(e => e.getBoundingClientRect().right > w + 0.5)
               .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + [...e.classList].join('.'));
             return { scroll: document.documentElement.scrollWidth, inner: w, wide: wide.slice(0, 5) };",
        )
        .await;
        let name = format!("phone{}", path.replace('/', "-"));
        save_screenshot(b, name.trim_end_matches('-'), false).await;
        let (scroll, inner) = (overflow["scroll"].as_f64(), overflow["inner"].as_f64());
        assert!(
            scroll.is_some() && scroll <= inner,
            "{path}: the page scrolls sideways on a phone: {overflow}"
        );
    }
    b.set_window_size(1280, 900)
        .await
        .expect("the desktop window again");
}

/// Logging out with the header's button; the start page then sends to the login.
async fn log_out(b: &Client, srv: &TestServer) {
    goto(b, srv, "/").await;
    click(b, "form[action='/logout'] button[type=submit]", "log out").await;
    find(
        b,
        "header a[href='/login']",
        "logged out: the header offers to log in",
    )
    .await;
    goto(b, srv, "/").await;
    find(
        b,
        "form[action='/login']",
        "after logging out, / shows the login form",
    )
    .await;
    let at = b.current_url().await.unwrap();
    assert_eq!(
        at.path(),
        "/login",
        "after logging out, / redirects to the login ({at})"
    );
}

/// Of a few zones around the world, the one where it is now closest to 17:00.
fn afternoon_zone(now: DateTime<Utc>) -> &'static str {
    use chrono::Timelike;
    const ZONES: [&str; 22] = [
        "Pacific/Honolulu",
        "America/Anchorage",
        "America/Los_Angeles",
        "America/Denver",
        "America/Chicago",
        "America/New_York",
        "America/Halifax",
        "America/Sao_Paulo",
        "Atlantic/South_Georgia",
        "Atlantic/Azores",
        "Europe/London",
        "Europe/Berlin",
        "Europe/Athens",
        "Europe/Moscow",
        "Asia/Dubai",
        "Asia/Karachi",
        "Asia/Dhaka",
        "Asia/Bangkok",
        "Asia/Shanghai",
        "Asia/Tokyo",
        "Australia/Brisbane",
        "Pacific/Noumea",
    ];
    let distance = |zone: &str| {
        let tz: chrono_tz::Tz = zone.parse().expect("a zone name");
        let local = now.with_timezone(&tz);
        let minutes = i64::from(local.hour() * 60 + local.minute());
        (minutes - 17 * 60).abs()
    };
    ZONES
        .into_iter()
        .min_by_key(|zone| distance(zone))
        .expect("zones")
}

/// An OpenDTU push of the inverter: `power` W, `day_wh` produced today, two DC channels.
fn opendtu_push(at: DateTime<Utc>, power: f64, day_wh: f64) -> String {
    let channel = |n: u8, name: &str, share: f64| {
        json!({"channel": n, "name": name, "power": power * share * 1.04, "voltage": 31.0 + f64::from(n),
               "current": power * share / 31.0, "yield_day": (day_wh * share).round(),
               "yield_total": 2_150.0 + day_wh * share / 1000.0, "irradiation": 100.0 * power / 800.0})
    };
    json!({"timestamp": at.to_rfc3339(), "dtu_serial": "199980140256", "inverters": [{
        "serial": SERIAL, "name": "HMS-800W-2T", "reachable": true, "producing": power > 0.0,
        "last_update": at.timestamp() - 3,
        "measurements": {"power_ac": power, "voltage_ac": 230.0, "current_ac": power / 230.0,
                         "frequency": 50.0, "power_factor": 0.99, "power_dc": power * 1.04},
        "dc_channels": [channel(1, "South", 0.55), channel(2, "West", 0.45)]}]})
    .to_string()
}

/// A daylight curve: low, up to about 600 W, down again; whole watts.
fn power_at(i: i64) -> f64 {
    let x = i as f64 / (PUSHES - 1) as f64;
    (40.0 + 560.0 * (std::f64::consts::PI * (0.15 + 0.8 * x)).sin()).round()
}

// ---- chromedriver -------------------------------------------------------------------------------

/// A chromedriver of this test on a free port. Dropping it ends the browser session (if still
/// open) and the chromedriver process, also when the test fails.
struct Chromedriver {
    child: Child,
    port: u16,
    session: Option<String>,
}

impl Chromedriver {
    async fn start() -> Self {
        let program =
            std::env::var("DEYEHARD_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned());
        // A free port: bind port 0, read it, let chromedriver take it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let output = std::fs::File::create(tmp_dir().join("chromedriver.out"))
            .expect("a file for chromedriver's output");
        let mut command = Command::new(&program);
        command
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                tmp_dir().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("chromedriver's output file"))
            .stderr(output);
        // Its own process group, so the browsers it starts can be ended with it.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {program} ({e}): install chromium and chromium-driver \
                 (apt-get install chromium chromium-driver) or set DEYEHARD_CHROMEDRIVER"
            )
        });
        let mut driver = Self {
            child,
            port,
            session: None,
        };
        driver.wait_ready().await;
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Polls `/status` until chromedriver says it is ready.
    async fn wait_ready(&mut self) {
        let client = http_client();
        let deadline = Instant::now() + STEP;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "chromedriver exited at once ({status}); see {}",
                    tmp_dir().join("chromedriver.out").display()
                );
            }
            let answer = client.get(format!("{}/status", self.url())).send().await;
            if let Ok(answer) = answer
                && let Ok(body) = answer.json::<Value>().await
                && body["value"]["ready"] == true
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver on port {} is not ready after {STEP:?}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A headless Chromium session, 1280×900, English.
    async fn open_browser(&mut self) -> Client {
        let binary =
            std::env::var("DEYEHARD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--hide-scrollbars", "--lang=en-US",
                    "--force-device-scale-factor=1", "--force-color-profile=srgb",
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("start Chromium ({binary}) through chromedriver: {e}"));
        self.session = client.session_id().await.expect("session id");
        client
            .set_window_size(1280, 900)
            .await
            .expect("window size");
        client
    }

    /// Ends the session (closing the browser).
    async fn close(&mut self, client: Client) {
        client.close().await.expect("close the browser");
        self.session = None;
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // No async here: a plain HTTP DELETE ends the session and its browser.
            let _ = (|| -> std::io::Result<()> {
                let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
                stream.set_read_timeout(Some(STEP))?;
                write!(
                    stream,
                    "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n",
                    self.port
                )?;
                let mut answer = Vec::new();
                stream.read_to_end(&mut answer).map(|_| ())
            })();
        }
        // Whatever is left of the group (a browser that did not quit), then chromedriver.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- page helpers -------------------------------------------------------------------------------

fn tmp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

async fn goto(b: &Client, srv: &TestServer, path: &str) {
    b.goto(&srv.url(path))
        .await
        .unwrap_or_else(|e| panic!("open {path}: {e}"));
}

/// Waits for the element `css`; `what` says what the step expected.
async fn find(b: &Client, css: &str, what: &str) -> Element {
    match b.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
        Ok(element) => element,
        Err(e) => {
            let url = b
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let page = b.find(Locator::Css("main")).await;
            let shown = match page {
                Ok(main) => main.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            panic!("{what}: no `{css}` after {WAIT:?} ({e}) on {url}; the page shows:\n{shown}")
        }
    }
}

/// Waits for an `<h1>` containing `text`.
async fn heading(b: &Client, text: &str, what: &str) {
    let xpath = format!("//h1[contains(normalize-space(.), '{text}')]");
    if let Err(e) = b
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(&xpath))
        .await
    {
        let url = b
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let h1 = match b.find(Locator::Css("h1")).await {
            Ok(h) => h.text().await.unwrap_or_default(),
            Err(_) => "(none)".to_owned(),
        };
        panic!("{what}: no heading {text:?} after {WAIT:?} ({e}) on {url}; the heading is {h1:?}");
    }
}

async fn text(b: &Client, css: &str) -> String {
    find(b, css, css)
        .await
        .text()
        .await
        .unwrap_or_else(|e| panic!("text of {css}: {e}"))
}

async fn fill(b: &Client, css: &str, value: &str) {
    let input = find(b, css, &format!("the field {css}")).await;
    input
        .clear()
        .await
        .unwrap_or_else(|e| panic!("clear {css}: {e}"));
    input
        .send_keys(value)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

async fn click(b: &Client, css: &str, what: &str) {
    find(b, css, what)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("{what}: click {css}: {e}"));
}

/// Runs `script` (a function body that returns a value) in the page.
async fn js(b: &Client, script: &str) -> Value {
    b.execute(script, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// Polls `script` until it returns `true`.
async fn wait_js(b: &Client, script: &str, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if js(b, script).await == true {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not so after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the dashboard's power chart is drawn.
async fn chart_ready(b: &Client, what: &str) {
    find(b, "#power-chart[data-chart-state='ready'] canvas", what).await;
}

/// How many pixels of the canvas are not transparent.
async fn painted_pixels(b: &Client, css: &str) -> u64 {
    let script = format!(
        "const c = document.querySelector('{css}');
         const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
         let n = 0;
         for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) n++;
         return n;"
    );
    js(b, &script).await.as_u64().unwrap_or(0)
}

/// Switches to `theme` with the header's toggle button (if the page is not in it already:
/// without a stored choice it follows the system's, light in headless Chromium).
async fn set_theme(b: &Client, theme: &str) {
    let current = js(
        b,
        "return document.documentElement.dataset.theme ||
           (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light')",
    )
    .await;
    if current != theme {
        click(b, "[data-theme-toggle]", "the theme toggle").await;
        find(
            b,
            &format!("html[data-theme='{theme}']"),
            &format!("the toggle switches to the {theme} theme"),
        )
        .await;
    }
}

/// A screenshot for the docs (see [`save_screenshot`]).
async fn screenshot(b: &Client, name: &str) {
    save_screenshot(b, name, true).await;
}

/// A screenshot of the window to `target/tmp/screenshots/`, and with `docs` and
/// `UPDATE_SCREENSHOTS=1` also to `docs/screenshots/`.
async fn save_screenshot(b: &Client, name: &str, docs: bool) {
    // Buttons fade to the new theme's colours: wait for every finite animation (CSS
    // transitions included) of a shown element to end, then for two frames to be painted.
    // Hidden ones (a closed menu's content) are never played, so never end.
    b.execute_async(
        "const done = arguments[arguments.length - 1];
         const running = document.getAnimations()
           .filter(a => a.playState === 'running' && a.effect !== null &&
                        a.effect.getComputedTiming().iterations !== Infinity &&
                        a.effect.target && a.effect.target.checkVisibility())
           .map(a => a.finished.catch(() => null));
         Promise.all(running).then(() => requestAnimationFrame(() => requestAnimationFrame(() => done(true))));",
        Vec::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("screenshot {name}: waiting for the page to settle: {e}"));
    let png = b
        .screenshot()
        .await
        .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
    let mut dirs = vec![tmp_dir().join("screenshots")];
    if docs && std::env::var("UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots"));
    }
    for dir in dirs {
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}
