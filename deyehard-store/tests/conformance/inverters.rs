//! Inverters: lifecycle, unique serials, cross-tenant access, unknown serials.

use deyehard_core::{DeviceInfo, InverterId, InverterKind, LoggerSerial};
use deyehard_store::{InverterFields, InverterStore, StoreError, constraint};

use crate::harness::{TestDb, june, opendtu_fields};

fn solarman_fields(logger: u32) -> InverterFields {
    InverterFields {
        name: "Balcony".into(),
        kind: InverterKind::Solarman,
        serial: None,
        logger_serial: Some(LoggerSerial::new(logger)),
        rated_power_w: None,
        mppt_count: None,
    }
}

pub async fn inverter_lifecycle_and_conflicts(db: TestDb) {
    let store = &db.store;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;

    let hm = store
        .create_inverter(&a, &opendtu_fields("114172220003"))
        .await
        .unwrap();
    assert_eq!(
        (hm.owner, hm.kind, hm.mppt_count),
        (a.user_id(), InverterKind::Opendtu, Some(2))
    );
    assert_eq!(hm.serial.as_ref().map(|s| s.as_str()), Some("114172220003"));
    assert!(hm.last_seen_at.is_none());

    // OpenDTU serials are unique per tenant only
    let err = store
        .create_inverter(&a, &opendtu_fields("114172220003"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(c) if c == constraint::INVERTER_SERIAL),
        "{err:?}"
    );
    store
        .create_inverter(&b, &opendtu_fields("114172220003"))
        .await
        .unwrap();

    // logger serials are unique across all tenants
    let deye = store
        .create_inverter(&a, &solarman_fields(3_939_932_716))
        .await
        .unwrap();
    assert_eq!(deye.logger_serial, Some(LoggerSerial::new(3_939_932_716)));
    let err = store
        .create_inverter(&b, &solarman_fields(3_939_932_716))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(c) if c == constraint::INVERTER_LOGGER_SERIAL),
        "{err:?}"
    );

    let mut fields = opendtu_fields("114172220004");
    fields.name = "Roof west".into();
    fields.rated_power_w = Some(1600.0);
    let updated = store.update_inverter(&a, hm.id, &fields).await.unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.rated_power_w),
        ("Roof west", Some(1600.0))
    );
    assert_eq!(store.inverter(&a, hm.id).await.unwrap(), updated);
    let by_serial = store
        .inverter_by_serial(&a, &"114172220004".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(by_serial.map(|i| i.id), Some(hm.id));
    assert!(
        store
            .inverter_by_serial(&a, &"114172220003".parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );

    let info = DeviceInfo {
        firmware_version: Some("V01.00.22".into()),
        rated_power_w: None,
        mppt_count: Some(4),
    };
    store.update_device_info(&a, hm.id, &info).await.unwrap();
    let after = store.inverter(&a, hm.id).await.unwrap();
    assert_eq!(after.firmware_version.as_deref(), Some("V01.00.22"));
    assert_eq!(
        (after.rated_power_w, after.mppt_count),
        (Some(1600.0), Some(4)),
        "absent keeps"
    );

    store.touch_inverter(&a, hm.id, june(12, 0)).await.unwrap();
    store.touch_inverter(&a, hm.id, june(11, 0)).await.unwrap();
    assert_eq!(
        store.inverter(&a, hm.id).await.unwrap().last_seen_at,
        Some(june(12, 0))
    );

    let ids: Vec<InverterId> = store
        .inverters(&a)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, vec![hm.id, deye.id]);
    store.delete_inverter(&a, hm.id).await.unwrap();
    assert!(matches!(
        store.inverter(&a, hm.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_inverter(&a, hm.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.inverters(&a).await.unwrap().len(), 1);
}

pub async fn other_tenants_inverters_are_not_found(db: TestDb) {
    let store = &db.store;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    let id = db.inverter(&a, "114172220003").await;

    assert!(store.inverters(&b).await.unwrap().is_empty());
    assert!(matches!(
        store.inverter(&b, id).await,
        Err(StoreError::NotFound)
    ));
    let serial = "114172220003".parse().unwrap();
    assert!(
        store
            .inverter_by_serial(&b, &serial)
            .await
            .unwrap()
            .is_none()
    );
    let fields = opendtu_fields("999999999999");
    assert!(matches!(
        store.update_inverter(&b, id, &fields).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .update_device_info(&b, id, &DeviceInfo::default())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.touch_inverter(&b, id, june(12, 0)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_inverter(&b, id).await,
        Err(StoreError::NotFound)
    ));
    // guessed ids behave the same
    let guessed = InverterId::new(id.get() + 1);
    assert!(matches!(
        store.inverter(&b, guessed).await,
        Err(StoreError::NotFound)
    ));

    let intact = store.inverter(&a, id).await.unwrap();
    assert_eq!(
        intact.serial.map(|s| s.to_string()).as_deref(),
        Some("114172220003")
    );
    assert!(intact.last_seen_at.is_none());
}

pub async fn unknown_serials_until_registered(db: TestDb) {
    let store = &db.store;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    store
        .record_unknown_serial(&a, "116180000001", Some("199980000001"), june(10, 0))
        .await
        .unwrap();
    store
        .record_unknown_serial(&a, "116180000001", None, june(10, 1))
        .await
        .unwrap();
    store
        .record_unknown_serial(&a, "116180000002", None, june(9, 0))
        .await
        .unwrap();

    let seen = store.unknown_serials(&a).await.unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].inverter_serial, "116180000001");
    assert_eq!(seen[0].dtu_serial.as_deref(), Some("199980000001"));
    assert_eq!(
        (
            seen[0].times_seen,
            seen[0].first_seen_at,
            seen[0].last_seen_at
        ),
        (2, june(10, 0), june(10, 1))
    );
    assert!(store.unknown_serials(&b).await.unwrap().is_empty());

    db.inverter(&a, "116180000001").await;
    let seen = store.unknown_serials(&a).await.unwrap();
    assert_eq!(
        seen.iter()
            .map(|s| s.inverter_serial.as_str())
            .collect::<Vec<_>>(),
        ["116180000002"]
    );
}
