//! The collector through real sockets, on both store backends: replies, storage of decoded
//! data, stream framing, session replacement, unclaimed loggers and backfill, and no loss while
//! the database is unreachable.

use chrono::{Duration, TimeZone, Utc};
use deyehard::solarman::ControlCode;
use deyehard_core::{LoggerSerial, Source};
use deyehard_store::{InverterStore, ReadingReader};

use crate::support::{
    Backend, FakeLogger, TestCollector, TestStore, handshake, heartbeat, live_data,
};

const LOGGER: u32 = 3_939_932_716;

fn close(actual: Option<f64>, expected: f64) {
    let actual = actual.unwrap_or_else(|| panic!("expected {expected}, got nothing"));
    assert!(
        (actual - expected).abs() < 1e-9,
        "expected {expected}, got {actual}"
    );
}

on_both_backends!(
    claimed_logger_gets_replies_and_its_data_is_stored,
    frames_split_glued_and_between_garbage_all_get_replies,
    a_second_connection_for_the_same_serial_replaces_the_first,
    unclaimed_logger_is_recorded_and_backfilled_after_a_claim,
);

async fn claimed_logger_gets_replies_and_its_data_is_stored(backend: Backend) {
    let db = TestStore::new(backend).await;
    let scope = db.user("owner@example.com").await;
    let inverter = db.claim(&scope, LOGGER).await;
    let collector = TestCollector::start(&db).await;
    let mut logger = FakeLogger::connect(collector.addr).await;

    logger.send(&handshake(LOGGER, 1)).await;
    let reply = logger.reply().await;
    assert_eq!(reply.control, ControlCode::HandshakeReply);
    assert_eq!((reply.seq_a, reply.seq_b, reply.serial), (1, 1, LOGGER));
    assert_eq!(
        &reply.payload[..2],
        &[0x02, 0x01],
        "echoed frame type, status accepted"
    );
    let now = u32::try_from(Utc::now().timestamp()).unwrap();
    assert!(
        reply.reply_time().abs_diff(now) < 5,
        "the reply carries the current UTC time"
    );

    let time = Utc.with_ymd_and_hms(2024, 4, 8, 17, 14, 3).unwrap();
    logger.send(&live_data(LOGGER, 2, time)).await;
    let reply = logger.reply().await;
    assert_eq!(reply.control, ControlCode::DataReply);
    assert_eq!((reply.seq_a, reply.seq_b), (1, 2));
    assert_eq!(reply.payload[0], 0x01);

    logger.send(&heartbeat(LOGGER, 1, 3)).await;
    let reply = logger.reply().await;
    assert_eq!(reply.control, ControlCode::HeartbeatReply);
    assert_eq!((reply.seq_a, reply.seq_b, reply.payload[0]), (2, 3, 0x00));

    // The reply to the data frame came after it was stored: it is there now.
    let readings = db
        .store
        .readings(
            &scope,
            inverter,
            time - Duration::minutes(1),
            time + Duration::minutes(1),
            10,
        )
        .await
        .unwrap();
    assert_eq!(readings.len(), 1, "one stored reading");
    let r = &readings[0];
    assert_eq!(r.time, time);
    assert_eq!(r.source, Source::Solarman);
    close(r.power_ac_w, 185.0);
    close(r.voltage_ac_v, 240.0);
    close(r.current_ac_a, 0.7);
    close(r.frequency_hz, 50.0);
    close(r.temperature_c, 26.5);
    close(r.yield_day_wh, 3_400.0);
    close(r.yield_total_wh, 180_000.0);
    assert_eq!(r.dc.len(), 2, "only the MPPT count's channels");
    let expected = [
        (33.3, 2.6, 1_500.0, 81_800.0),
        (32.5, 2.9, 1_600.0, 89_300.0),
    ];
    for (dc, (v, a, day, total)) in r.dc.iter().zip(expected) {
        close(dc.voltage_v, v);
        close(dc.current_a, a);
        close(dc.power_w, v * a);
        close(dc.yield_day_wh, day);
        close(dc.yield_total_wh, total);
    }
    let stored = db.store.inverter(&scope, inverter).await.unwrap();
    assert_eq!(stored.rated_power_w, Some(800.0));
    assert_eq!(stored.mppt_count, Some(2));
    assert!(
        stored.firmware_version.is_some(),
        "firmware filled in from the frame"
    );
    assert!(stored.last_seen_at.is_some());
    collector.stop().await;
}

async fn frames_split_glued_and_between_garbage_all_get_replies(backend: Backend) {
    let db = TestStore::new(backend).await;
    let scope = db.user("owner@example.com").await;
    let inverter = db.claim(&scope, LOGGER).await;
    let collector = TestCollector::start(&db).await;
    let mut logger = FakeLogger::connect(collector.addr).await;

    let t0 = Utc.with_ymd_and_hms(2024, 4, 8, 10, 0, 0).unwrap();
    // Byte by byte.
    logger.send_bytewise(&live_data(LOGGER, 10, t0)).await;
    assert_eq!(logger.reply().await.seq_b, 10);
    // Three frames glued in one write, with garbage before, between and after.
    let mut glued = b"\x00\xffnoise".to_vec();
    glued.extend(live_data(LOGGER, 11, t0 + Duration::minutes(5)));
    glued.extend(b"\x15\x15\xa5garbage");
    glued.extend(heartbeat(LOGGER, 7, 12));
    glued.extend(live_data(LOGGER, 13, t0 + Duration::minutes(10)));
    glued.extend(b"\x01\x02");
    logger.send(&glued).await;
    let seqs: Vec<u8> = [
        logger.reply().await,
        logger.reply().await,
        logger.reply().await,
    ]
    .iter()
    .map(|r| r.seq_b)
    .collect();
    assert_eq!(seqs, vec![11, 12, 13], "every frame answered, in order");
    let stored = db
        .store
        .readings(&scope, inverter, t0, t0 + Duration::hours(1), 100)
        .await
        .unwrap();
    assert_eq!(stored.len(), 3, "all three data frames stored");
    collector.stop().await;
}

async fn a_second_connection_for_the_same_serial_replaces_the_first(backend: Backend) {
    let db = TestStore::new(backend).await;
    let collector = TestCollector::start(&db).await;
    let mut first = FakeLogger::connect(collector.addr).await;
    first.send(&heartbeat(LOGGER, 0, 1)).await;
    first.reply().await;
    let mut second = FakeLogger::connect(collector.addr).await;
    second.send(&heartbeat(LOGGER, 0, 2)).await;
    assert_eq!(second.reply().await.seq_b, 2);
    first.closed().await;
    // The new session keeps working.
    second.send(&heartbeat(LOGGER, 1, 3)).await;
    assert_eq!(second.reply().await.seq_b, 3);
    collector.stop().await;
}

async fn unclaimed_logger_is_recorded_and_backfilled_after_a_claim(backend: Backend) {
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
        assert_eq!(
            logger.reply().await.seq_b,
            2 + i,
            "unclaimed loggers are answered too"
        );
    }
    collector.stop().await;

    let scope = db.user("late@example.com").await;
    let inverter = db.claim(&scope, LOGGER).await;
    let report = deyehard_collector::backfill_logger(&db.store, &scope, LoggerSerial::new(LOGGER))
        .await
        .unwrap();
    assert_eq!(report.readings, 3);
    let stored = db
        .store
        .readings(&scope, inverter, t0, t0 + Duration::hours(1), 100)
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        3,
        "the frames sent before the claim became readings"
    );
    close(stored[0].power_ac_w, 185.0);
    // A second backfill finds nothing left to do.
    let again = deyehard_collector::backfill_logger(&db.store, &scope, LoggerSerial::new(LOGGER))
        .await
        .unwrap();
    assert_eq!(again.readings, 0);
    assert_eq!(db.store.inverters(&scope).await.unwrap().len(), 1);
}

/// The database goes away mid-stream: frames are spooled and still acknowledged, the collector
/// is restarted while the database is down, and once it is back everything is stored exactly
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_spools_frames_and_a_restart_replays_them() {
    use sqlx::Connection;
    let db = TestStore::new(Backend::Postgres).await;
    let scope = db.user("owner@example.com").await;
    let inverter = db.claim(&scope, LOGGER).await;
    let (admin_url, name) = db
        .pg_database()
        .map(|(a, n)| (a.to_owned(), n.to_owned()))
        .unwrap();
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    let t0 = Utc.with_ymd_and_hms(2024, 7, 1, 12, 0, 0).unwrap();

    let collector = TestCollector::start(&db).await;
    let mut logger = FakeLogger::connect(collector.addr).await;
    logger.send(&live_data(LOGGER, 1, t0)).await;
    assert_eq!(logger.reply().await.seq_b, 1);

    // Outage: no new connections, existing ones killed.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS false"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
        .bind(&name)
        .execute(&mut admin)
        .await
        .unwrap();
    for i in 2..=3u8 {
        logger
            .send(&live_data(
                LOGGER,
                i,
                t0 + Duration::minutes(5 * i64::from(i)),
            ))
            .await;
        assert_eq!(logger.reply().await.seq_b, i, "acknowledged once spooled");
    }
    collector.stop().await;

    // Back up; a new collector (same spool directory) replays what the old one left.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS true"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let collector = TestCollector::start(&db).await;
    let deadline = tokio::time::Instant::now() + crate::support::STEP * 3;
    let stored = loop {
        // The replay task has no public completion signal: poll the store with a deadline.
        if let Ok(stored) = db
            .store
            .readings(&scope, inverter, t0, t0 + Duration::hours(1), 100)
            .await
            && stored.len() >= 3
        {
            break stored;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the spool was not replayed in time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let times: Vec<_> = stored.iter().map(|r| r.time).collect();
    assert_eq!(
        times,
        vec![t0, t0 + Duration::minutes(10), t0 + Duration::minutes(15)],
        "each frame once, in order"
    );

    // A retransmission of a replayed frame changes nothing.
    let mut logger = FakeLogger::connect(collector.addr).await;
    logger
        .send(&live_data(LOGGER, 2, t0 + Duration::minutes(10)))
        .await;
    logger.reply().await;
    let again = db
        .store
        .readings(&scope, inverter, t0, t0 + Duration::hours(1), 100)
        .await
        .unwrap();
    assert_eq!(again.len(), 3);
    collector.stop().await;
}
