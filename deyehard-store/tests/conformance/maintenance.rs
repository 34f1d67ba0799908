//! Deleting users, retention, backend report.

use chrono::{SubsecRound, TimeDelta, Utc};
use deyehard_core::{InverterId, InverterKind, LoggerSerial, TenantScope};
use deyehard_store::{
    AdminActor, AdminStore, ApiKeyStore, BackendKind, InverterFields, InverterStore, Maintenance,
    RawFrameInput, RawFrameStore, ReadingReader, ReadingWriter, StoreError, UnclaimedLoggerStore,
    UserStore, WriteOutcome,
};

use crate::harness::{Kind, TestDb, june, minute_series, new_user, reading};

/// Every tenant-owned table (all carry `user_id`).
pub const TENANT_TABLES: [&str; 10] = [
    "api_keys",
    "inverters",
    "measurements",
    "dc_measurements",
    "daily_energy",
    "energy_state",
    "rollup_5m",
    "rollup_1h",
    "raw_frames",
    "unknown_serials",
];

/// The high-volume tables: rows per reading in [`minute_series`] (1 AC, 2 DC).
const SERIES_TABLES: [&str; 2] = ["measurements", "dc_measurements"];

fn per_reading(table: &str) -> i64 {
    if table == "dc_measurements" { 2 } else { 1 }
}

/// Gives the tenant rows in every tenant-owned table.
pub async fn populate(db: &TestDb, scope: &TenantScope, serial: &str, logger: u32) {
    let store = &db.store;
    let inverter = db.inverter(scope, serial).await;
    let readings = minute_series(june(9, 0), 20, 10_000.0, |m| 100.0 + m as f64);
    let batch: Vec<_> = readings.into_iter().map(|r| (inverter, r)).collect();
    store
        .write_readings(scope, &batch, june(10, 0))
        .await
        .unwrap();
    store
        .create_api_key(scope, "key", "dh_pref", &format!("hash-{logger}"))
        .await
        .unwrap();
    store
        .record_unknown_serial(scope, "116100000000", None, june(10, 0))
        .await
        .unwrap();
    let fields = InverterFields {
        name: "Deye".into(),
        kind: InverterKind::Solarman,
        serial: None,
        logger_serial: Some(LoggerSerial::new(logger)),
        rated_power_w: None,
        mppt_count: None,
    };
    let deye = store.create_inverter(scope, &fields).await.unwrap().id;
    let frame = RawFrameInput {
        logger_serial: LoggerSerial::new(logger),
        received_at: june(10, 0),
        control: 0x4210,
        remote_addr: None,
        bytes: b"\xa5raw",
    };
    store.store_raw_frame(scope, deye, &frame).await.unwrap();
}

async fn rows_of(db: &TestDb, table: &str, user: i64) -> i64 {
    db.count(&format!(
        "SELECT count(*) FROM {table} WHERE user_id = {user}"
    ))
    .await
}

pub async fn deleting_a_user_leaves_no_orphans(db: TestDb) {
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    populate(&db, &a, "114172220003", 1).await;
    populate(&db, &b, "114172220003", 2).await;
    let mut b_before = Vec::new();
    for table in TENANT_TABLES {
        let (a_rows, b_rows) = (
            rows_of(&db, table, a.user_id().get()).await,
            rows_of(&db, table, b.user_id().get()).await,
        );
        assert!(
            a_rows > 0 && b_rows > 0,
            "{table} must hold rows of both tenants"
        );
        b_before.push(b_rows);
    }

    db.store.delete_user(&a).await.unwrap();
    for (table, b_rows) in TENANT_TABLES.iter().zip(b_before) {
        assert_eq!(
            rows_of(&db, table, a.user_id().get()).await,
            0,
            "orphans in {table}"
        );
        assert_eq!(
            rows_of(&db, table, b.user_id().get()).await,
            b_rows,
            "{table} of B changed"
        );
        let dangling = format!(
            "SELECT count(*) FROM {table} WHERE user_id IS NOT NULL \
             AND user_id NOT IN (SELECT id FROM users)"
        );
        assert_eq!(db.count(&dangling).await, 0, "dangling rows in {table}");
    }
    let a_inverter_rows = "SELECT count(*) FROM measurements m \
         WHERE NOT EXISTS (SELECT 1 FROM inverters i WHERE i.id = m.inverter_id)";
    assert_eq!(db.count(a_inverter_rows).await, 0);
}

/// Rows of `table` whose inverter does not exist (any tenant).
async fn orphans_in(db: &TestDb, table: &str) -> i64 {
    db.count(&format!(
        "SELECT count(*) FROM {table} t \
         WHERE NOT EXISTS (SELECT 1 FROM inverters i WHERE i.id = t.inverter_id)"
    ))
    .await
}

/// Rows of `table` of one inverter.
async fn rows_of_inverter(db: &TestDb, table: &str, inverter: InverterId) -> i64 {
    db.count(&format!(
        "SELECT count(*) FROM {table} WHERE inverter_id = {}",
        inverter.get()
    ))
    .await
}

pub async fn deleting_an_inverter_deletes_its_series(db: TestDb) {
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    let gone = db.inverter(&a, "114172220001").await;
    let kept = db.inverter(&a, "114172220002").await;
    let other = db.inverter(&b, "114172220001").await;
    for (scope, inverter) in [(&a, gone), (&a, kept), (&b, other)] {
        let batch: Vec<_> = minute_series(june(9, 0), 30, 1_000.0, |m| 50.0 + m as f64)
            .into_iter()
            .map(|r| (inverter, r))
            .collect();
        db.store
            .write_readings(scope, &batch, june(10, 0))
            .await
            .unwrap();
    }
    for table in SERIES_TABLES {
        assert_eq!(
            rows_of_inverter(&db, table, gone).await,
            30 * per_reading(table)
        );
    }

    db.store.delete_inverter(&a, gone).await.unwrap();
    for table in SERIES_TABLES {
        assert_eq!(rows_of_inverter(&db, table, gone).await, 0, "{table}");
        assert_eq!(orphans_in(&db, table).await, 0, "orphans in {table}");
        for inverter in [kept, other] {
            assert_eq!(
                rows_of_inverter(&db, table, inverter).await,
                30 * per_reading(table),
                "{table} of another inverter changed"
            );
        }
    }
}

pub async fn admin_deleting_a_user_deletes_its_series(db: TestDb) {
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    populate(&db, &a, "114172220003", 1).await;
    populate(&db, &b, "114172220003", 2).await;
    let b_rows = rows_of(&db, "measurements", b.user_id().get()).await;
    let mut root = new_user("root@example.org", None);
    root.is_superuser = true;
    let root = TenantScope::for_tests(db.store.create_user(&root).await.unwrap().id);

    db.store
        .admin_delete_user(AdminActor::new(&root), a.user_id())
        .await
        .unwrap();
    for table in SERIES_TABLES {
        assert_eq!(rows_of(&db, table, a.user_id().get()).await, 0, "{table}");
        assert_eq!(orphans_in(&db, table).await, 0, "orphans in {table}");
    }
    assert_eq!(
        rows_of(&db, "measurements", b.user_id().get()).await,
        b_rows
    );
}

pub async fn writes_racing_an_inverter_delete_leave_no_orphans(db: TestDb) {
    let a = db.tenant("a@example.org").await;
    for round in 0..6 {
        let inverter = db.inverter(&a, &format!("11417222010{round}")).await;
        let (first_stored, stored) = tokio::sync::oneshot::channel();
        let store = db.store.clone();
        let writer = tokio::spawn(async move {
            let mut first_stored = Some(first_stored);
            // batches of 200 readings until the deletion wins: each batch is written whole
            // before it, or finds no inverter after it
            let mut batch = 0;
            loop {
                let from = june(0, 0) + TimeDelta::minutes(200 * batch);
                let readings: Vec<_> = minute_series(from, 200, 0.0, |_| 1.0)
                    .into_iter()
                    .map(|r| (inverter, r))
                    .collect();
                let outcomes = store
                    .write_readings(&a, &readings, Utc::now())
                    .await
                    .unwrap();
                if outcomes.iter().all(|o| *o == WriteOutcome::NotFound) {
                    return batch;
                }
                assert!(outcomes.iter().all(|o| *o == WriteOutcome::Stored));
                if let Some(signal) = first_stored.take() {
                    signal.send(()).unwrap();
                }
                batch += 1;
            }
        });
        stored.await.unwrap();
        db.store.delete_inverter(&a, inverter).await.unwrap();
        assert!(writer.await.unwrap() >= 1, "round {round}");
        for table in SERIES_TABLES {
            assert_eq!(
                rows_of_inverter(&db, table, inverter).await,
                0,
                "round {round}: {table}"
            );
        }
    }
}

pub async fn retention_deletes_only_old_rows(db: TestDb) {
    let store = &db.store;
    let a = db.tenant("a@example.org").await;
    let inverter = db.inverter(&a, "114172220003").await;
    let now = Utc::now().trunc_subsecs(0);
    let old = now - TimeDelta::days(800);
    let recent = now - TimeDelta::days(10);
    let batch = vec![
        (inverter, reading(old, 100.0, 1.0, 1000.0, 2)),
        (
            inverter,
            reading(old + TimeDelta::minutes(1), 100.0, 2.0, 1001.0, 2),
        ),
        (inverter, reading(recent, 100.0, 1.0, 5000.0, 2)),
    ];
    store.write_readings(&a, &batch, now).await.unwrap();
    for received_at in [old, recent] {
        let frame = RawFrameInput {
            logger_serial: LoggerSerial::new(7),
            received_at,
            control: 0x4210,
            remote_addr: None,
            bytes: b"frame",
        };
        store.record_unclaimed_frame(&frame).await.unwrap();
    }
    let mut stale = RawFrameInput {
        logger_serial: LoggerSerial::new(8),
        received_at: old,
        control: 0x4210,
        remote_addr: None,
        bytes: b"frame",
    };
    store.record_unclaimed_frame(&stale).await.unwrap();
    stale.received_at = old + TimeDelta::minutes(1);
    store.record_unclaimed_frame(&stale).await.unwrap();
    let daily_before = db.count("SELECT count(*) FROM daily_energy").await;

    assert!(matches!(
        store.apply_retention(now, 0).await,
        Err(StoreError::Invalid(_))
    ));
    let report = store.apply_retention(now, 730).await.unwrap();
    assert_eq!(
        (
            report.measurements,
            report.dc_measurements,
            report.raw_frames
        ),
        (2, 4, 3)
    );
    let left = store
        .readings(&a, inverter, old - TimeDelta::days(1), now, 10)
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|r| r.time).collect::<Vec<_>>(),
        [batch[2].1.time]
    );
    assert_eq!(left[0].dc.len(), 2);
    assert_eq!(db.count("SELECT count(*) FROM raw_frames").await, 1);
    assert_eq!(
        db.count("SELECT count(*) FROM unclaimed_loggers").await,
        1,
        "logger 8 is stale"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM daily_energy").await,
        daily_before,
        "energy is kept"
    );

    let again = store.apply_retention(now, 730).await.unwrap();
    assert_eq!(
        (again.measurements, again.dc_measurements, again.raw_frames),
        (0, 0, 0)
    );
}

pub async fn backend_info_reports_the_backend(db: TestDb) {
    let info = db.store.backend_info().await.unwrap();
    let expected = match db.kind {
        Kind::Sqlite => BackendKind::Sqlite,
        Kind::Postgres => BackendKind::Postgres,
    };
    assert_eq!(
        (info.kind, info.timescaledb, info.retention_days),
        (expected, false, 730)
    );
    db.store.ping().await.unwrap();
}
