//! The admin's fleet tools: searching inverters across tenants, moving one to another owner
//! with all its data, unknown serials, serial conflicts and the status counts.

use chrono::TimeDelta;
use deyehard_core::{InverterId, InverterKind, LoggerSerial, TenantScope};
use deyehard_store::{
    AdminActor, AdminFleet, ConflictSerial, InverterFields, InverterStore, RawFrameInput,
    RawFrameStore, ReadingReader, ReadingWriter, StoreError, UnclaimedLoggerStore, UserStore,
    constraint,
};

use crate::harness::{TestDb, june, minute_series, new_user};

/// The tables whose rows follow an inverter to its new owner.
const MOVED_TABLES: [&str; 7] = [
    "measurements",
    "dc_measurements",
    "daily_energy",
    "energy_state",
    "rollup_5m",
    "rollup_1h",
    "raw_frames",
];

async fn admin(db: &TestDb, email: &str) -> AdminActor {
    let mut user = new_user(email, None);
    user.is_superuser = true;
    let user = db.store.create_user(&user).await.unwrap();
    AdminActor::new(&TenantScope::for_tests(user.id))
}

fn solarman(logger: u32) -> InverterFields {
    InverterFields {
        name: "Deye".into(),
        kind: InverterKind::Solarman,
        serial: None,
        logger_serial: Some(LoggerSerial::new(logger)),
        rated_power_w: Some(800.0),
        mppt_count: Some(2),
    }
}

/// An OpenDTU inverter with 20 minutes of readings, and a Solarman one with a raw frame.
async fn inverters_with_data(db: &TestDb, scope: &TenantScope) -> (InverterId, InverterId) {
    let dtu = db.inverter(scope, "114172220003").await;
    let batch: Vec<_> = minute_series(june(9, 0), 20, 10_000.0, |m| 100.0 + m as f64)
        .into_iter()
        .map(|r| (dtu, r))
        .collect();
    db.store
        .write_readings(scope, &batch, june(10, 0))
        .await
        .unwrap();
    let deye = db
        .store
        .create_inverter(scope, &solarman(2_712_345_678))
        .await;
    let deye = deye.unwrap().id;
    let frame = RawFrameInput {
        logger_serial: LoggerSerial::new(2_712_345_678),
        received_at: june(10, 0),
        control: 0x4210,
        remote_addr: None,
        bytes: b"\xa5raw",
    };
    db.store.store_raw_frame(scope, deye, &frame).await.unwrap();
    (dtu, deye)
}

async fn rows(db: &TestDb, table: &str, inverter: InverterId, user: &TenantScope) -> i64 {
    db.count(&format!(
        "SELECT count(*) FROM {table} WHERE inverter_id = {} AND user_id = {}",
        inverter.get(),
        user.user_id().get()
    ))
    .await
}

pub async fn admin_searches_inverters_across_tenants(db: TestDb) {
    let root = admin(&db, "root@example.org").await;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    db.inverter(&a, "114172220003").await;
    db.inverter(&b, "116100000001").await;
    db.store
        .create_inverter(&b, &solarman(4_012_345_678))
        .await
        .unwrap();

    let all = db
        .store
        .admin_search_inverters(root, None, 100, 0)
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].owner_email, "a@example.org");
    let by_serial = db
        .store
        .admin_search_inverters(root, Some(" 11610 "), 100, 0)
        .await
        .unwrap();
    assert_eq!(by_serial.len(), 1);
    assert_eq!(by_serial[0].owner_email, "b@example.org");
    let by_logger = db
        .store
        .admin_search_inverters(root, Some("40123"), 100, 0)
        .await
        .unwrap();
    assert_eq!(by_logger.len(), 1);
    assert_eq!(
        by_logger[0].inverter.logger_serial,
        Some(LoggerSerial::new(4_012_345_678))
    );
    let wildcard = db
        .store
        .admin_search_inverters(root, Some("%"), 100, 0)
        .await
        .unwrap();
    assert!(wildcard.is_empty(), "LIKE wildcards are literal");
    let page = db
        .store
        .admin_search_inverters(root, None, 1, 2)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);

    let plain = AdminActor::new(&a);
    let err = db.store.admin_search_inverters(plain, None, 10, 0).await;
    assert!(matches!(err, Err(StoreError::Forbidden)), "{err:?}");
}

pub async fn reassigning_moves_the_inverter_with_all_its_data(db: TestDb) {
    let root = admin(&db, "root@example.org").await;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    let (dtu, deye) = inverters_with_data(&db, &a).await;
    for table in MOVED_TABLES {
        let inverter = if table == "raw_frames" { deye } else { dtu };
        assert!(
            rows(&db, table, inverter, &a).await > 0,
            "{table} has A's rows"
        );
    }

    let moved = db
        .store
        .admin_reassign_inverter(root, dtu, b.user_id())
        .await
        .unwrap();
    assert_eq!(moved.owner, b.user_id());
    db.store
        .admin_reassign_inverter(root, deye, b.user_id())
        .await
        .unwrap();
    for table in MOVED_TABLES {
        let inverter = if table == "raw_frames" { deye } else { dtu };
        assert_eq!(
            rows(&db, table, inverter, &a).await,
            0,
            "{table}: nothing left with A"
        );
        assert!(
            rows(&db, table, inverter, &b).await > 0,
            "{table}: B owns the rows"
        );
    }
    // A no longer sees it; B sees it with its history and energy.
    assert!(matches!(
        db.store.inverter(&a, dtu).await,
        Err(StoreError::NotFound)
    ));
    let history = db
        .store
        .readings(&b, dtu, june(0, 0), june(23, 0), 100)
        .await
        .unwrap();
    assert_eq!(history.len(), 20);
    let day = june(0, 0).date_naive();
    let energy = db.store.daily_energy(&b, dtu, day, day).await.unwrap();
    assert!(energy[0].energy_wh > 0.0);
    // The logger now resolves to B.
    let claim = db
        .store
        .resolve_logger_unscoped(LoggerSerial::new(2_712_345_678))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim.scope.user_id(), b.user_id());
    // B keeps writing to it.
    let next = minute_series(june(9, 20), 1, 10_100.0, |_| 120.0);
    let batch = vec![(dtu, next[0].clone())];
    db.store
        .write_readings(&b, &batch, june(10, 0))
        .await
        .unwrap();
}

pub async fn reassigning_refuses_bad_targets_and_changes_nothing(db: TestDb) {
    let root = admin(&db, "root@example.org").await;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    let (dtu, _) = inverters_with_data(&db, &a).await;
    db.inverter(&b, "114172220003").await;

    let err = db
        .store
        .admin_reassign_inverter(root, dtu, b.user_id())
        .await;
    assert!(
        matches!(&err, Err(StoreError::Conflict(c)) if c == constraint::INVERTER_SERIAL),
        "{err:?}"
    );
    let err = db
        .store
        .admin_reassign_inverter(root, dtu, deyehard_core::UserId::new(999_999))
        .await;
    assert!(matches!(err, Err(StoreError::Invalid(_))), "{err:?}");
    let err = db
        .store
        .admin_reassign_inverter(root, InverterId::new(999_999), b.user_id())
        .await;
    assert!(matches!(err, Err(StoreError::NotFound)), "{err:?}");
    let err = db
        .store
        .admin_reassign_inverter(AdminActor::new(&b), dtu, b.user_id())
        .await;
    assert!(matches!(err, Err(StoreError::Forbidden)), "{err:?}");
    // Nothing moved.
    assert_eq!(db.store.inverter(&a, dtu).await.unwrap().owner, a.user_id());
    for table in ["measurements", "daily_energy", "rollup_5m"] {
        assert!(rows(&db, table, dtu, &a).await > 0, "{table}");
    }
}

pub async fn serial_conflicts_and_unknown_serials(db: TestDb) {
    let root = admin(&db, "root@example.org").await;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    let c = db.tenant("c@example.org").await;
    assert!(
        db.store
            .admin_serial_conflicts(root)
            .await
            .unwrap()
            .is_empty()
    );

    // The same device serial registered by A and B, and pushed (unregistered) with C's key.
    let a_dtu = db.inverter(&a, "114172220003").await;
    let b_dtu = db.inverter(&b, "114172220003").await;
    let pushed = june(12, 0);
    db.store
        .record_unknown_serial(&c, "114172220003", Some("199980000001"), pushed)
        .await
        .unwrap();
    // A logger claimed by A and refused to B twice.
    let a_deye = db.store.create_inverter(&a, &solarman(4_012_345_678)).await;
    let a_deye = a_deye.unwrap().id;
    for _ in 0..2 {
        let err = db.store.create_inverter(&b, &solarman(4_012_345_678)).await;
        assert!(
            matches!(&err, Err(StoreError::Conflict(k)) if k == constraint::INVERTER_LOGGER_SERIAL),
            "{err:?}"
        );
    }
    // An update that tries to take the logger is refused and recorded too.
    let b_other = db.inverter(&b, "116100000009").await;
    let err = db
        .store
        .update_inverter(&b, b_other, &solarman(4_012_345_678))
        .await;
    assert!(
        matches!(&err, Err(StoreError::Conflict(k)) if k == constraint::INVERTER_LOGGER_SERIAL),
        "{err:?}"
    );

    let conflicts = db.store.admin_serial_conflicts(root).await.unwrap();
    assert_eq!(conflicts.len(), 2, "{conflicts:#?}");
    let device = &conflicts[0];
    assert_eq!(device.serial, ConflictSerial::Device("114172220003".into()));
    let who: Vec<_> = device.claims.iter().map(|c| c.email.as_str()).collect();
    assert_eq!(who, ["a@example.org", "b@example.org", "c@example.org"]);
    assert_eq!(device.claims[0].inverter, Some(a_dtu));
    assert_eq!(device.claims[1].inverter, Some(b_dtu));
    assert_eq!(device.claims[2].inverter, None);
    assert_eq!(device.claims[2].attempts, 1);
    assert_eq!(device.claims[2].last_seen_at, Some(pushed));
    let logger = &conflicts[1];
    assert_eq!(
        logger.serial,
        ConflictSerial::Logger(LoggerSerial::new(4_012_345_678))
    );
    assert_eq!(logger.claims.len(), 2, "{logger:#?}");
    assert_eq!(logger.claims[0].inverter, Some(a_deye));
    assert_eq!(logger.claims[0].user, a.user_id());
    assert_eq!(logger.claims[1].user, b.user_id());
    assert_eq!(logger.claims[1].attempts, 3);
    assert!(logger.claims[1].last_seen_at.is_some());

    // The unknown-serial view shows C's push with C's address.
    let unknown = db.store.admin_unknown_serials(root, 10).await.unwrap();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].owner, c.user_id());
    assert_eq!(unknown[0].owner_email, "c@example.org");
    assert_eq!(
        unknown[0].serial.dtu_serial.as_deref(),
        Some("199980000001")
    );

    // Resolving: the logger goes to B, B's duplicate DTU is deleted, C registers its serial.
    db.store
        .admin_reassign_inverter(root, a_deye, b.user_id())
        .await
        .unwrap();
    db.store.delete_inverter(&b, b_dtu).await.unwrap();
    db.inverter(&c, "114172220003").await;
    let left = db.store.admin_serial_conflicts(root).await.unwrap();
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0].claims.len(), 2, "A and C both registered it");
    db.store.delete_inverter(&a, a_dtu).await.unwrap();
    assert!(
        db.store
            .admin_serial_conflicts(root)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.store
            .admin_unknown_serials(root, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let plain = AdminActor::new(&a);
    assert!(matches!(
        db.store.admin_serial_conflicts(plain).await,
        Err(StoreError::Forbidden)
    ));
    assert!(matches!(
        db.store.admin_unknown_serials(plain, 10).await,
        Err(StoreError::Forbidden)
    ));
}

pub async fn admin_counts_users_inverters_and_keys(db: TestDb) {
    let root = admin(&db, "root@example.org").await;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    db.store.set_verified(&a, true).await.unwrap();
    let (dtu, _) = inverters_with_data(&db, &a).await;
    db.inverter(&b, "116100000001").await;
    deyehard_store::ApiKeyStore::create_api_key(&db.store, &a, "k", "p1", "h1")
        .await
        .unwrap();
    let revoked = deyehard_store::ApiKeyStore::create_api_key(&db.store, &b, "k", "p2", "h2")
        .await
        .unwrap();
    deyehard_store::ApiKeyStore::revoke_api_key(&db.store, &b, revoked.id)
        .await
        .unwrap();
    let seen = db
        .store
        .inverter(&a, dtu)
        .await
        .unwrap()
        .last_seen_at
        .unwrap();

    let counts = db
        .store
        .admin_counts(root, seen - TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(counts.users, 3);
    assert_eq!(counts.active_users, 3);
    assert_eq!(counts.verified_users, 1);
    assert_eq!(counts.superusers, 1);
    assert_eq!(counts.inverters, 3);
    assert_eq!(counts.inverters_seen, 1);
    assert_eq!(counts.api_keys, 1);
    assert_eq!(counts.unclaimed_loggers, 0);
    let later = db
        .store
        .admin_counts(root, seen + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(later.inverters_seen, 0);
    assert!(matches!(
        db.store.admin_counts(AdminActor::new(&b), seen).await,
        Err(StoreError::Forbidden)
    ));
}

/// PostgreSQL: refused claims are tenant rows like any other (RLS on `claim_conflicts`).
#[cfg(feature = "postgres")]
pub async fn claim_conflicts_are_isolated_by_rls(db: TestDb) {
    use sqlx::Connection;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    db.store.create_inverter(&a, &solarman(7)).await.unwrap();
    assert!(db.store.create_inverter(&b, &solarman(7)).await.is_err());
    let mut conn = db.pg_connection().await;
    for (tenant, expected) in [(a.user_id().get(), 0), (b.user_id().get(), 1)] {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query(
            "SELECT set_config('role', 'deyehard_app', true), \
             set_config('app.current_user_id', $1, true)",
        )
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM claim_conflicts")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(seen, expected, "tenant {tenant}");
        let forged = sqlx::query("INSERT INTO claim_conflicts VALUES ($1, 8, now(), now(), 1)")
            .bind(if tenant == a.user_id().get() {
                b.user_id().get()
            } else {
                a.user_id().get()
            })
            .execute(&mut *tx)
            .await;
        assert!(forged.is_err(), "WITH CHECK refuses another tenant's row");
        tx.rollback().await.unwrap();
    }
}

pub async fn operator_lists_users_and_sets_superuser(db: TestDb) {
    let a = db.tenant("anna@example.org").await;
    let b = db.tenant("bert@example.org").await;
    db.inverter(&b, "116100000001").await;
    db.inverter(&b, "116100000002").await;

    let all = db.store.users_unscoped(None, 100, 0).await.unwrap();
    let summary: Vec<_> = all
        .iter()
        .map(|o| (o.user.email.as_str(), o.inverter_count))
        .collect();
    assert_eq!(summary, [("anna@example.org", 0), ("bert@example.org", 2)]);
    let found = db.store.users_unscoped(Some("BERT"), 100, 0).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(db.store.users_unscoped(None, 1, 1).await.unwrap().len(), 1);

    let actor = AdminActor::new(&a);
    assert!(matches!(
        db.store.admin_counts(actor, june(0, 0)).await,
        Err(StoreError::Forbidden)
    ));
    db.store.set_superuser(&a, true).await.unwrap();
    assert!(db.store.user(&a).await.unwrap().is_superuser);
    assert_eq!(
        db.store
            .admin_counts(actor, june(0, 0))
            .await
            .unwrap()
            .superusers,
        1
    );
    db.store.set_superuser(&a, false).await.unwrap();
    assert!(matches!(
        db.store.admin_counts(actor, june(0, 0)).await,
        Err(StoreError::Forbidden)
    ));
}
