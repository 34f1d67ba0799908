//! The collector through real sockets, on both store backends: replies, storage of decoded
//! data, stream framing, session replacement, unclaimed loggers and backfill, and no loss while
//! the database is unreachable.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use deyehard::solarman::ControlCode;
use deyehard_core::{LoggerSerial, Source};
use deyehard_store::{InverterStore, RawFrameInput, ReadingReader, UnclaimedLoggerStore};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

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
    fifty_loggers_at_once_are_all_stored_and_answered,
    a_frame_the_database_refuses_costs_no_other_frame_its_place,
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

/// Connects one fake logger per serial, lets them all send at once (a handshake, then
/// `data_frames` data frames five minutes apart from `t0`) and checks every reply.
async fn loggers_at_once(
    collector: &TestCollector,
    serials: &[u32],
    data_frames: u8,
    t0: DateTime<Utc>,
) {
    let start = Arc::new(Barrier::new(serials.len()));
    let mut loggers = JoinSet::new();
    for &serial in serials {
        let (addr, start) = (collector.addr, start.clone());
        loggers.spawn(async move {
            let mut logger = FakeLogger::connect(addr).await;
            start.wait().await;
            logger.send(&handshake(serial, 1)).await;
            let reply = logger.reply().await;
            assert_eq!((reply.serial, reply.seq_b), (serial, 1));
            for i in 0..data_frames {
                let time = t0 + Duration::minutes(5 * i64::from(i));
                logger.send(&live_data(serial, 2 + i, time)).await;
                let reply = logger.reply().await;
                assert_eq!(reply.control, ControlCode::DataReply);
                assert_eq!((reply.serial, reply.seq_b), (serial, 2 + i));
            }
        });
    }
    while let Some(done) = loggers.join_next().await {
        done.expect("every logger got all its replies");
    }
}

/// Many loggers sending at the same moment share commits (group commit): every frame is
/// answered, and every answered frame is stored, for claimed and unclaimed loggers alike.
async fn fifty_loggers_at_once_are_all_stored_and_answered(backend: Backend) {
    const FIRST: u32 = 3_000_000_000;
    let db = TestStore::new(backend).await;
    let mut owners = Vec::new();
    for n in 0..5 {
        owners.push(db.user(&format!("owner{n}@example.com")).await);
    }
    let mut claimed = Vec::new();
    for (n, serial) in (FIRST..FIRST + 25).enumerate() {
        let scope = owners[n % owners.len()];
        let inverter = db.claim(&scope, serial).await;
        claimed.push((scope, inverter));
    }
    let serials: Vec<u32> = (FIRST..FIRST + 50).collect();
    let collector = TestCollector::start(&db).await;
    let t0 = Utc.with_ymd_and_hms(2024, 6, 1, 9, 0, 0).unwrap();
    loggers_at_once(&collector, &serials, 3, t0).await;
    collector.stop().await;

    for (scope, inverter) in &claimed {
        let stored = db
            .store
            .readings(scope, *inverter, t0, t0 + Duration::hours(1), 100)
            .await
            .unwrap();
        let times: Vec<_> = stored.iter().map(|r| r.time).collect();
        let expected: Vec<_> = (0..3).map(|i| t0 + Duration::minutes(5 * i)).collect();
        assert_eq!(times, expected, "inverter {inverter:?}");
        let inverter = db.store.inverter(scope, *inverter).await.unwrap();
        assert!(inverter.firmware_version.is_some(), "device info written");
    }
    assert_eq!(
        db.raw_count("SELECT count(*) FROM unclaimed_loggers").await,
        25
    );
    assert_eq!(
        db.raw_count("SELECT count(*) FROM raw_frames WHERE user_id IS NULL")
            .await,
        25 * 4,
        "each unclaimed logger's handshake and data frames"
    );
    assert_eq!(
        db.raw_count(
            "SELECT count(*) FROM unclaimed_loggers WHERE frames_seen = 4 AND remote_addr LIKE '127.0.0.1:%'"
        )
        .await,
        25
    );
    // What an unclaimed logger sent becomes its readings once claimed.
    let late = db.user("late@example.com").await;
    let inverter = db.claim(&late, FIRST + 49).await;
    let report =
        deyehard_collector::backfill_logger(&db.store, &late, LoggerSerial::new(FIRST + 49))
            .await
            .unwrap();
    assert_eq!((report.frames, report.readings), (4, 3));
    let stored = db
        .store
        .readings(&late, inverter, t0, t0 + Duration::hours(1), 100)
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
}

/// A frame the database refuses fails its batch; the batch is written again frame by frame,
/// so the other loggers' frames are stored all the same and the refused one is answered (it
/// can never be stored) and dropped.
async fn a_frame_the_database_refuses_costs_no_other_frame_its_place(backend: Backend) {
    const FIRST: u32 = 3_100_000_000;
    const POISON: u32 = FIRST + 7;
    let db = TestStore::new(backend).await;
    // A second raw frame of the poison logger breaks a unique index.
    db.store
        .record_unclaimed_frame(&RawFrameInput {
            logger_serial: LoggerSerial::new(POISON),
            received_at: Utc::now(),
            control: 0x4210,
            remote_addr: None,
            bytes: b"\xa5earlier",
        })
        .await
        .unwrap();
    db.raw_execute(&format!(
        "CREATE UNIQUE INDEX poison_frames ON raw_frames (logger_serial) \
         WHERE logger_serial = {POISON}"
    ))
    .await;
    let serials: Vec<u32> = (FIRST..FIRST + 20).collect();
    let collector = TestCollector::start(&db).await;
    let t0 = Utc.with_ymd_and_hms(2024, 6, 2, 9, 0, 0).unwrap();
    loggers_at_once(&collector, &serials, 2, t0).await;
    collector.stop().await;

    let per_logger =
        |serial: u32| format!("SELECT count(*) FROM raw_frames WHERE logger_serial = {serial}");
    assert_eq!(
        db.raw_count(&per_logger(POISON)).await,
        1,
        "only the earlier frame"
    );
    for serial in serials.iter().filter(|&&s| s != POISON) {
        assert_eq!(
            db.raw_count(&per_logger(*serial)).await,
            3,
            "logger {serial}"
        );
    }
    assert_eq!(
        db.raw_count("SELECT count(*) FROM unclaimed_loggers").await,
        20
    );
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
