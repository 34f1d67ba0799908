//! Solarman loggers: unclaimed frames, claims, raw frames of claimed loggers.

use chrono::TimeDelta;
use deyehard_core::{InverterKind, LoggerSerial};
use deyehard_store::{
    AdminActor, AdminStore, InverterFields, InverterStore, RawFrameInput, RawFrameStore,
    StoreError, UnclaimedLoggerStore, UserStore,
};

use crate::harness::{TestDb, june, new_user};

const LOGGER: u32 = 3_939_932_716;
const OTHER_LOGGER: u32 = 2_712_345_678;

fn frame(
    serial: u32,
    minute: u32,
    remote: &'static str,
    bytes: &'static [u8],
) -> RawFrameInput<'static> {
    RawFrameInput {
        logger_serial: LoggerSerial::new(serial),
        received_at: june(12, minute),
        control: 0x4210,
        remote_addr: Some(remote),
        bytes,
    }
}

fn claim(serial: u32) -> InverterFields {
    InverterFields {
        name: "Deye SUN600".into(),
        kind: InverterKind::Solarman,
        serial: None,
        logger_serial: Some(LoggerSerial::new(serial)),
        rated_power_w: Some(600.0),
        mppt_count: Some(2),
    }
}

pub async fn unclaimed_logger_and_take_after_claim(db: TestDb) {
    let store = &db.store;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    let mut root = new_user("root@example.org", None);
    root.is_superuser = true;
    let root = deyehard_core::TenantScope::for_tests(store.create_user(&root).await.unwrap().id);
    let admin = AdminActor::new(&root);

    let serial = LoggerSerial::new(LOGGER);
    store
        .record_unclaimed_frame(&frame(LOGGER, 1, "198.51.100.7:51234", b"\xa5first"))
        .await
        .unwrap();
    store
        .record_unclaimed_frame(&frame(LOGGER, 0, "198.51.100.7:51299", b"\xa5zeroth"))
        .await
        .unwrap();
    store
        .record_unclaimed_frame(&frame(OTHER_LOGGER, 2, "203.0.113.9:4000", b"\xa5other"))
        .await
        .unwrap();
    assert_eq!(store.resolve_logger_unscoped(serial).await.unwrap(), None);

    let loggers = store.admin_unclaimed_loggers(admin).await.unwrap();
    assert_eq!(loggers.len(), 2);
    let seen = loggers.iter().find(|l| l.logger_serial == serial).unwrap();
    assert_eq!(
        (seen.frames_seen, seen.first_seen_at, seen.last_seen_at),
        (2, june(12, 0), june(12, 1))
    );
    assert_eq!(seen.remote_addr.as_deref(), Some("198.51.100.7:51299"));

    // only the tenant holding the claim may take the frames
    assert!(matches!(
        store.take_unclaimed_frames(&a, serial).await,
        Err(StoreError::NotFound)
    ));
    let inverter = store.create_inverter(&a, &claim(LOGGER)).await.unwrap();
    let resolved = store
        .resolve_logger_unscoped(serial)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (resolved.scope, resolved.inverter_id, resolved.serial),
        (a, inverter.id, None)
    );
    assert!(matches!(
        store.take_unclaimed_frames(&b, serial).await,
        Err(StoreError::NotFound)
    ));

    let frames = store.take_unclaimed_frames(&a, serial).await.unwrap();
    let bytes: Vec<&[u8]> = frames.iter().map(|f| f.bytes.as_slice()).collect();
    assert_eq!(
        bytes,
        [b"\xa5zeroth".as_slice(), b"\xa5first".as_slice()],
        "oldest first"
    );
    assert!(
        frames
            .iter()
            .all(|f| f.inverter_id == Some(inverter.id) && f.control == 0x4210)
    );
    assert!(
        !format!("{:?}", frames[0]).contains("zeroth"),
        "Debug summarises the payload"
    );
    assert!(
        store
            .take_unclaimed_frames(&a, serial)
            .await
            .unwrap()
            .is_empty()
    );

    let kept = store
        .raw_frames(&a, inverter.id, june(0, 0), june(23, 0), 10)
        .await
        .unwrap();
    assert_eq!(kept, frames);
    let loggers = store.admin_unclaimed_loggers(admin).await.unwrap();
    assert_eq!(
        loggers
            .iter()
            .map(|l| l.logger_serial.get())
            .collect::<Vec<_>>(),
        [OTHER_LOGGER]
    );
    assert_eq!(
        db.count("SELECT count(*) FROM raw_frames WHERE user_id IS NULL")
            .await,
        1
    );

    // once the owner is gone, the logger resolves to nothing
    store.delete_user(&a).await.unwrap();
    assert_eq!(store.resolve_logger_unscoped(serial).await.unwrap(), None);
}

pub async fn raw_frames_of_claimed_loggers(db: TestDb) {
    let store = &db.store;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    let inverter = store.create_inverter(&a, &claim(LOGGER)).await.unwrap().id;
    for minute in 0..5 {
        let mut f = frame(
            LOGGER,
            minute,
            "198.51.100.7:51234",
            b"\xa5\x10\x00undecodable\x15",
        );
        f.control = 0x4110;
        f.received_at += TimeDelta::milliseconds(1);
        store.store_raw_frame(&a, inverter, &f).await.unwrap();
    }
    let err = store
        .store_raw_frame(&b, inverter, &frame(LOGGER, 9, "x", b"x"))
        .await;
    assert!(matches!(err, Err(StoreError::NotFound)), "{err:?}");

    let frames = store
        .raw_frames(&a, inverter, june(12, 1), june(12, 4), 2)
        .await
        .unwrap();
    let times: Vec<_> = frames.iter().map(|f| f.received_at).collect();
    let ms = TimeDelta::milliseconds(1);
    assert_eq!(times, [june(12, 1) + ms, june(12, 2) + ms]);
    assert_eq!(frames[0].control, 0x4110);
    assert_eq!(frames[0].remote_addr.as_deref(), Some("198.51.100.7:51234"));
    assert!(matches!(
        store
            .raw_frames(&b, inverter, june(0, 0), june(23, 0), 10)
            .await,
        Err(StoreError::NotFound)
    ));
}
