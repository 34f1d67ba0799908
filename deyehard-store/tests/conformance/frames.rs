//! The collector's batch write: frames of claimed and unclaimed loggers of several tenants in
//! one transaction.

use chrono::{DateTime, TimeDelta, Utc};
use deyehard_core::{DeviceInfo, InverterKind, LoggerSerial};
use deyehard_store::{
    AdminActor, AdminStore, InverterFields, InverterStore, LoggerFrame, LoggerFrameKind,
    LoggerFrameOutcome, LoggerFrameWriter, RawFrameInput, RawFrameStore, ReadingReader, StoreError,
    UserStore, WriteOutcome,
};

use crate::harness::{TestDb, june, new_user, reading};

const LOGGER_A: u32 = 3_939_932_716;
const LOGGER_B: u32 = 2_712_345_678;
const UNCLAIMED: u32 = 4_100_000_001;

fn claim(serial: u32) -> InverterFields {
    InverterFields {
        name: "Deye SUN600".into(),
        kind: InverterKind::Solarman,
        serial: None,
        logger_serial: Some(LoggerSerial::new(serial)),
        rated_power_w: None,
        mppt_count: None,
    }
}

fn raw(serial: u32, received_at: DateTime<Utc>, remote: &'static str) -> RawFrameInput<'static> {
    RawFrameInput {
        logger_serial: LoggerSerial::new(serial),
        received_at,
        control: 0x4210,
        remote_addr: Some(remote),
        bytes: b"\xa5frame\x15",
    }
}

fn frame<'a>(raw: RawFrameInput<'a>, kind: LoggerFrameKind<'a>) -> LoggerFrame<'a> {
    LoggerFrame { frame: raw, kind }
}

pub async fn logger_frames_are_written_in_one_batch(db: TestDb) {
    let store = &db.store;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    let mut root = new_user("root@example.org", None);
    root.is_superuser = true;
    let root = deyehard_core::TenantScope::for_tests(store.create_user(&root).await.unwrap().id);
    let admin = AdminActor::new(&root);
    let inverter_a = store
        .create_inverter(&a, &claim(LOGGER_A))
        .await
        .unwrap()
        .id;
    let inverter_b = store
        .create_inverter(&b, &claim(LOGGER_B))
        .await
        .unwrap()
        .id;

    assert!(store.write_logger_frames(&[]).await.unwrap().is_empty());

    let ms3 = TimeDelta::milliseconds(3);
    let first = reading(june(12, 0), 150.0, 100.0, 5_000.0, 2);
    let other = reading(june(12, 6), 250.0, 200.0, 7_000.0, 1);
    let info = DeviceInfo {
        firmware_version: Some("MW3_16U_5406_1.53".into()),
        rated_power_w: Some(600.0),
        mppt_count: Some(2),
    };
    let batch = [
        frame(
            raw(LOGGER_A, june(12, 0) + ms3, "198.51.100.1:1"),
            LoggerFrameKind::Reading {
                reading: &first,
                device_info: Some(&info),
            },
        ),
        frame(
            raw(LOGGER_B, june(12, 1), "203.0.113.2:2"),
            LoggerFrameKind::Seen,
        ),
        frame(
            raw(UNCLAIMED, june(12, 2), "192.0.2.3:3"),
            LoggerFrameKind::Reading {
                reading: &first,
                device_info: Some(&info),
            },
        ),
        frame(
            raw(LOGGER_A, june(12, 3), "198.51.100.1:1"),
            LoggerFrameKind::Raw,
        ),
        frame(
            raw(UNCLAIMED, june(12, 4), "192.0.2.3:4"),
            LoggerFrameKind::Seen,
        ),
        frame(
            raw(LOGGER_A, june(12, 5), "198.51.100.1:1"),
            LoggerFrameKind::Reading {
                reading: &first,
                device_info: None,
            },
        ),
        frame(
            raw(LOGGER_B, june(12, 6), "203.0.113.2:2"),
            LoggerFrameKind::Reading {
                reading: &other,
                device_info: None,
            },
        ),
    ];
    let outcomes = store.write_logger_frames(&batch).await.unwrap();
    let claimed = |inverter, reading| LoggerFrameOutcome::Claimed { inverter, reading };
    assert_eq!(
        outcomes,
        [
            claimed(inverter_a, Some(WriteOutcome::Stored)),
            claimed(inverter_b, None),
            LoggerFrameOutcome::Unclaimed,
            claimed(inverter_a, None),
            LoggerFrameOutcome::Unclaimed,
            claimed(inverter_a, Some(WriteOutcome::Duplicate)),
            claimed(inverter_b, Some(WriteOutcome::Stored)),
        ]
    );

    // Readings, with each frame's receive time, for their own tenant only.
    let latest = store.latest_readings(&a).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(
        (
            latest[0].inverter_id,
            latest[0].reading.time,
            latest[0].received_at
        ),
        (inverter_a, june(12, 0), june(12, 0) + ms3)
    );
    let stored = store
        .readings(&a, inverter_a, june(0, 0), june(23, 0), 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].dc.len(), 2);
    let latest = store.latest_readings(&b).await.unwrap();
    assert_eq!(
        latest
            .iter()
            .map(|l| (l.inverter_id, l.received_at))
            .collect::<Vec<_>>(),
        [(inverter_b, june(12, 6))]
    );
    assert_eq!(
        db.count("SELECT count(*) FROM daily_energy").await,
        2,
        "energy maintained for both"
    );

    // Device info, last seen.
    let a_inv = store.inverter(&a, inverter_a).await.unwrap();
    assert_eq!(a_inv.firmware_version, info.firmware_version);
    assert_eq!(
        (a_inv.rated_power_w, a_inv.mppt_count),
        (Some(600.0), Some(2))
    );
    assert_eq!(a_inv.last_seen_at, Some(june(12, 5)));
    let b_inv = store.inverter(&b, inverter_b).await.unwrap();
    assert_eq!(b_inv.last_seen_at, Some(june(12, 6)));
    assert_eq!(b_inv.firmware_version, None);

    // The claimed logger's raw frame, owned.
    let kept = store
        .raw_frames(&a, inverter_a, june(0, 0), june(23, 0), 10)
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].received_at, kept[0].inverter_id),
        (june(12, 3), Some(inverter_a))
    );
    assert!(
        store
            .raw_frames(&b, inverter_b, june(0, 0), june(23, 0), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // The unclaimed logger: one row summing both frames, both frames kept without owner.
    let unclaimed = store.admin_unclaimed_loggers(admin).await.unwrap();
    assert_eq!(unclaimed.len(), 1);
    let u = &unclaimed[0];
    assert_eq!(
        (
            u.logger_serial.get(),
            u.frames_seen,
            u.first_seen_at,
            u.last_seen_at
        ),
        (UNCLAIMED, 2, june(12, 2), june(12, 4))
    );
    assert_eq!(u.remote_addr.as_deref(), Some("192.0.2.3:4"));
    assert_eq!(
        db.count("SELECT count(*) FROM raw_frames WHERE user_id IS NULL")
            .await,
        2
    );

    // A later batch adds to the unclaimed row; earlier times move first_seen back.
    let later = [frame(
        raw(UNCLAIMED, june(11, 0), "192.0.2.3:5"),
        LoggerFrameKind::Raw,
    )];
    store.write_logger_frames(&later).await.unwrap();
    let u = &store.admin_unclaimed_loggers(admin).await.unwrap()[0];
    assert_eq!(
        (u.frames_seen, u.first_seen_at, u.last_seen_at),
        (3, june(11, 0), june(12, 4))
    );

    // Claims are resolved in each batch: a new claim applies at once, a deleted inverter
    // receives nothing more.
    let inverter_u = store
        .create_inverter(&b, &claim(UNCLAIMED))
        .await
        .unwrap()
        .id;
    store.delete_inverter(&b, inverter_b).await.unwrap();
    let next = reading(june(13, 0), 90.0, 300.0, 7_100.0, 0);
    let batch = [
        frame(
            raw(UNCLAIMED, june(13, 0), "192.0.2.3:6"),
            LoggerFrameKind::Reading {
                reading: &next,
                device_info: None,
            },
        ),
        frame(
            raw(LOGGER_B, june(13, 0), "203.0.113.2:2"),
            LoggerFrameKind::Reading {
                reading: &next,
                device_info: None,
            },
        ),
    ];
    let outcomes = store.write_logger_frames(&batch).await.unwrap();
    assert_eq!(
        outcomes,
        [
            claimed(inverter_u, Some(WriteOutcome::Stored)),
            LoggerFrameOutcome::Unclaimed,
        ]
    );
    let stored = store
        .readings(&b, inverter_u, june(0, 0), june(23, 59), 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
}

pub async fn a_failing_frame_fails_the_whole_batch(db: TestDb) {
    let store = &db.store;
    const POISON: u32 = 42;
    let before = [frame(
        raw(POISON, june(10, 0), "192.0.2.9:9"),
        LoggerFrameKind::Raw,
    )];
    store.write_logger_frames(&before).await.unwrap();
    // A second raw frame of this logger now breaks a unique index.
    db.execute(
        "CREATE UNIQUE INDEX poison_frames ON raw_frames (logger_serial) WHERE logger_serial = 42",
    )
    .await;
    let batch = [
        frame(
            raw(UNCLAIMED, june(11, 0), "192.0.2.3:3"),
            LoggerFrameKind::Raw,
        ),
        frame(
            raw(POISON, june(11, 1), "192.0.2.9:9"),
            LoggerFrameKind::Raw,
        ),
    ];
    let err = store.write_logger_frames(&batch).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert_eq!(
        db.count("SELECT count(*) FROM raw_frames").await,
        1,
        "nothing of the failed batch is stored"
    );
    assert_eq!(db.count("SELECT count(*) FROM unclaimed_loggers").await, 1);
    // Alone, the good frame is stored.
    store.write_logger_frames(&batch[..1]).await.unwrap();
    assert_eq!(db.count("SELECT count(*) FROM raw_frames").await, 2);
}
