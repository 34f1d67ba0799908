//! Operations through real sockets, on both store backends: Prometheus `/metrics` moves after a
//! push and a collector frame, every response carries a request id that the request's log line
//! shares (with the DTU serial of a push), `/readyz` answers 503 when the database is gone or
//! its schema is behind, and the health endpoints on a listener of their own.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use deyehard_core::InverterKind;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;

use crate::support::{
    Backend, FakeLogger, STEP, TestCollector, TestServer, TestStore, captured_logs, handshake,
    http_client, live_data, with_database,
};

const README: &str = include_str!("../../deyehard-opendtu/tests/fixtures/readme-example.json");
const LOGGER: u32 = 2_710_000_017;
const PUSH_ROUTE: &str = "/api/opendtu/measurements";

on_both_backends!(
    metrics_move_after_a_push_and_a_collector_frame,
    readyz_is_503_when_the_database_is_gone,
    readyz_is_503_while_migrations_are_missing,
);

/// The sum of the samples of `name` whose labels include all of `labels` (`None` when there
/// is no such sample).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let matches = series_name == name
            && labels
                .iter()
                .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")));
        if matches {
            let value: f64 = value.parse().unwrap();
            found = Some(found.unwrap_or(0.0) + value);
        }
    }
    found
}

async fn get_text(server: &TestServer, path: &str) -> (StatusCode, String) {
    let response = http_client().get(server.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Counters are process-wide and other tests run at the same time: assert growth, not values.
fn grew(before: &str, after: &str, name: &str, labels: &[(&str, &str)], by: f64) {
    let old = sample(before, name, labels).unwrap_or(0.0);
    let new = sample(after, name, labels)
        .unwrap_or_else(|| panic!("{name}{labels:?} missing from /metrics:\n{after}"));
    assert!(new >= old + by, "{name}{labels:?}: {old} -> {new}");
}

async fn metrics_move_after_a_push_and_a_collector_frame(backend: Backend) {
    let db = TestStore::new(backend).await;
    let scope = db.user("metrics@example.com").await;
    let key = db.api_key(&scope).await;
    db.inverter(&scope, InverterKind::Opendtu, "116166771004")
        .await;
    db.claim(&scope, LOGGER).await;
    let server = TestServer::start(&db).await;
    // The first scrape installs the process's metrics recorder: the collector starts after it,
    // or what it records while starting (the spool depth gauge) would go nowhere.
    let (status, before) = get_text(&server, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let collector = TestCollector::start(&db).await;

    let response = http_client()
        .post(server.url(PUSH_ROUTE))
        .header("X-API-Key", &key)
        .header("Content-Type", "application/json")
        .body(README)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let unknown = http_client()
        .get(server.url("/no-such-page/12345"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.headers().contains_key("x-request-id"));

    let mut logger = FakeLogger::connect(collector.addr).await;
    logger.send(&handshake(LOGGER, 1)).await;
    logger.reply().await;
    let time = Utc.with_ymd_and_hms(2024, 4, 8, 17, 14, 3).unwrap();
    logger.send(&live_data(LOGGER, 2, time)).await;
    logger.reply().await;

    let (_, after) = get_text(&server, "/metrics").await;
    let push = [("route", PUSH_ROUTE), ("method", "POST"), ("status", "201")];
    grew(&before, &after, "deyehard_http_requests_total", &push, 1.0);
    let latency = [("route", PUSH_ROUTE), ("le", "+Inf")];
    grew(
        &before,
        &after,
        "deyehard_http_request_duration_seconds_bucket",
        &latency,
        1.0,
    );
    let unmatched = [("route", "unmatched"), ("status", "404")];
    grew(
        &before,
        &after,
        "deyehard_http_requests_total",
        &unmatched,
        1.0,
    );
    // Only the series (name and labels) count: a value may hold these digits by chance.
    let mut series = after
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series));
    assert!(
        series.all(|s| !s.contains("12345") && !s.contains("no-such-page")),
        "raw paths never become labels"
    );
    let ingested = "deyehard_readings_ingested_total";
    grew(&before, &after, ingested, &[("source", "opendtu")], 1.0);
    grew(&before, &after, ingested, &[("source", "solarman")], 1.0);
    grew(
        &before,
        &after,
        "solarman_frames_total",
        &[("kind", "data")],
        1.0,
    );
    grew(&before, &after, "solarman_connections_total", &[], 1.0);
    assert!(
        sample(&after, "solarman_spool_depth", &[]).is_some(),
        "spool depth gauge"
    );
    let pool = match backend {
        Backend::Sqlite => "reader",
        Backend::Postgres => "main",
    };
    let idle = sample(
        &after,
        "deyehard_db_pool_connections",
        &[("pool", pool), ("state", "idle")],
    );
    assert!(idle.is_some(), "pool gauges:\n{after}");
    assert!(
        sample(
            &after,
            "deyehard_db_pool_max_connections",
            &[("pool", pool)]
        )
        .unwrap()
            >= 1.0
    );

    // The request's log line carries its id and the DTU's serial.
    let logs = captured_logs();
    let line = logs
        .lines()
        .find(|l| l.contains(&format!("id={request_id}")) && l.contains("status=201"))
        .unwrap_or_else(|| panic!("no log line for request {request_id}"));
    assert!(line.contains("dtu_serial=145680140006"), "{line}");
    assert!(line.contains(PUSH_ROUTE), "{line}");
    collector.stop().await;
    server.stop().await;
}

async fn readyz_is_503_when_the_database_is_gone(backend: Backend) {
    let db = TestStore::new(backend).await;
    let server = TestServer::start(&db).await;
    let (status, body) = get_text(&server, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "ready"
    );
    let (status, _) = get_text(&server, "/healthz").await;
    assert_eq!(status, StatusCode::OK);

    match db.pg_database() {
        None => db.store.close().await,
        Some((admin, name)) => {
            let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
            let drop = format!("DROP DATABASE {name} WITH (FORCE)");
            sqlx::query(sqlx::AssertSqlSafe(drop))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
    let (status, body) = get_text(&server, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "unavailable"
    );
    let (status, _) = get_text(&server, "/healthz").await;
    assert_eq!(status, StatusCode::OK, "alive, though not ready");
    server.stop().await;
}

async fn readyz_is_503_while_migrations_are_missing(backend: Backend) {
    let db = TestStore::new(backend).await;
    let server = TestServer::start(&db).await;
    let (status, _) = get_text(&server, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    let forget =
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)";
    match db.pg_database() {
        None => {
            let path = db.dir.path().join("deyehard.db");
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            sqlx::query(forget).execute(&mut conn).await.unwrap();
        }
        Some((admin, name)) => {
            let mut conn = sqlx::PgConnection::connect(&with_database(admin, name))
                .await
                .unwrap();
            sqlx::query(forget).execute(&mut conn).await.unwrap();
        }
    }
    let (status, body) = get_text(&server, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let reason = serde_json::from_str::<Value>(&body).unwrap()["reason"].to_string();
    assert!(reason.contains("schema is at version"), "{reason}");
    server.stop().await;
}

/// `deyehard-collector --metrics-listen`: the three endpoints on a listener of their own, with
/// the collector's own counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_on_a_listener_of_their_own() {
    let db = TestStore::new(Backend::Sqlite).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(deyehard_collector::ops::serve(
        listener,
        Arc::clone(&db.store),
        Vec::new(),
        async move {
            let _ = stopped.await;
        },
    ));
    let client = http_client();
    for (path, expect) in [
        ("/healthz", "ok"),
        ("/readyz", "ready"),
        ("/metrics", "deyehard_build_info"),
    ] {
        let response = client
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(response.text().await.unwrap().contains(expect), "{path}");
    }
    deyehard_collector::ops::probe(addr, Some("/readyz"))
        .await
        .unwrap();
    assert!(
        deyehard_collector::ops::probe(addr, Some("/nowhere"))
            .await
            .is_err()
    );
    let _ = stop.send(());
    tokio::time::timeout(STEP, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        deyehard_collector::ops::probe(addr, None).await.is_err(),
        "closed after shutdown"
    );
}
