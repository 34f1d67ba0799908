//! Users, API keys and admin access.

use deyehard_core::{ApiKeyId, TenantScope};
use deyehard_store::{
    AdminActor, AdminStore, ApiKeyStore, InverterStore, ProfileUpdate, StoreError, UserFlags,
    UserStore, constraint,
};

use crate::harness::{TestDb, new_user};

pub async fn user_email_is_unique_case_insensitively(db: TestDb) {
    let store = &db.store;
    let alice = store
        .create_user(&new_user("Alice@Example.org", None))
        .await
        .unwrap();
    assert_eq!(alice.time_zone, "Europe/Berlin");
    assert_eq!(alice.locale, "en");
    assert!(alice.is_active && !alice.is_verified && !alice.is_superuser);

    let err = store
        .create_user(&new_user("alice@EXAMPLE.org", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(c) if c == constraint::USER_EMAIL),
        "{err:?}"
    );

    let found = store
        .user_by_email_unscoped("ALICE@example.ORG")
        .await
        .unwrap();
    assert_eq!(found.map(|u| u.id), Some(alice.id));
    assert!(
        store
            .user_by_email_unscoped("bob@example.org")
            .await
            .unwrap()
            .is_none()
    );

    let bob = store
        .create_user(&new_user("bob@example.org", Some("America/Santiago")))
        .await
        .unwrap();
    assert_eq!(bob.time_zone, "America/Santiago");
    let bob_scope = TenantScope::for_tests(bob.id);
    let err = store
        .set_email(&bob_scope, "ALICE@example.org")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(c) if c == constraint::USER_EMAIL),
        "{err:?}"
    );

    let err = store
        .create_user(&new_user("carol@example.org", Some("Mars/Olympus")))
        .await;
    assert!(matches!(err, Err(StoreError::Invalid(_))), "{err:?}");
}

pub async fn profile_password_and_session_version(db: TestDb) {
    let store = &db.store;
    let scope = db.tenant("dora@example.org").await;
    let user = store.user(&scope).await.unwrap();
    assert_eq!(user.session_version, 1);

    let updated = store
        .update_profile(
            &scope,
            &ProfileUpdate {
                display_name: "Dora".into(),
                time_zone: "Asia/Kathmandu".into(),
                locale: "de".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            updated.display_name.as_str(),
            updated.time_zone.as_str(),
            updated.locale.as_str()
        ),
        ("Dora", "Asia/Kathmandu", "de")
    );
    let bad_zone = ProfileUpdate {
        display_name: "Dora".into(),
        time_zone: "Europe/Atlantis".into(),
        locale: "de".into(),
    };
    assert!(matches!(
        store.update_profile(&scope, &bad_zone).await,
        Err(StoreError::Invalid(_))
    ));

    assert_eq!(
        store
            .set_password_hash(&scope, "$argon2id$new")
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.bump_session_version(&scope).await.unwrap(), 3);
    store.set_verified(&scope, true).await.unwrap();
    store.set_active(&scope, false).await.unwrap();
    store.set_email(&scope, "dora@example.com").await.unwrap();
    let user = store
        .user_by_id_unscoped(scope.user_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.password_hash, "$argon2id$new");
    assert_eq!(user.session_version, 3);
    assert!(user.is_verified);
    assert!(!user.is_active);
    assert_eq!(user.email, "dora@example.com");
    assert!(
        !format!("{user:?}").contains("argon2id"),
        "Debug must redact the hash"
    );

    // An upgrade of the hash keeps the sessions, and only replaces the hash it was computed for.
    assert!(
        store
            .upgrade_password_hash(&scope, "$argon2id$new", "$argon2id$stronger")
            .await
            .unwrap()
    );
    assert!(
        !store
            .upgrade_password_hash(&scope, "$argon2id$new", "$argon2id$stale")
            .await
            .unwrap()
    );
    let user = store.user(&scope).await.unwrap();
    assert_eq!(user.password_hash, "$argon2id$stronger");
    assert_eq!(user.session_version, 3);

    store.delete_user(&scope).await.unwrap();
    assert!(
        store
            .user_by_id_unscoped(scope.user_id())
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.user(&scope).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_user(&scope).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn api_key_resolution(db: TestDb) {
    let store = &db.store;
    let scope = db.tenant("erin@example.org").await;
    let key = store
        .create_api_key(&scope, "DTU roof", "dh_abcd1234", "hash-ok")
        .await
        .unwrap();
    assert_eq!(
        (key.name.as_str(), key.prefix.as_str()),
        ("DTU roof", "dh_abcd1234")
    );
    assert!(key.last_used_at.is_none() && key.revoked_at.is_none());

    let resolved = store.resolve_api_key_unscoped("hash-ok").await.unwrap();
    assert_eq!(resolved, Some((scope, key.id)));
    let listed = store.api_keys(&scope).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].last_used_at.is_some(),
        "resolution records the use"
    );

    assert_eq!(
        store
            .resolve_api_key_unscoped("hash-unknown")
            .await
            .unwrap(),
        None
    );

    let err = store
        .create_api_key(&scope, "again", "dh_x", "hash-ok")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(c) if c == constraint::API_KEY_HASH),
        "{err:?}"
    );

    store.revoke_api_key(&scope, key.id).await.unwrap();
    store.revoke_api_key(&scope, key.id).await.unwrap(); // idempotent
    assert_eq!(
        store.resolve_api_key_unscoped("hash-ok").await.unwrap(),
        None
    );
    assert!(
        store.api_keys(&scope).await.unwrap()[0]
            .revoked_at
            .is_some()
    );

    // keys of deactivated users resolve to nothing
    let second = store
        .create_api_key(&scope, "DTU garage", "dh_efgh5678", "hash-2")
        .await
        .unwrap();
    let admin = superuser(&db, "root@example.org").await;
    let flags = UserFlags {
        is_active: false,
        is_verified: true,
        is_superuser: false,
    };
    store
        .admin_set_user_flags(AdminActor::new(&admin), scope.user_id(), flags)
        .await
        .unwrap();
    assert_eq!(
        store.resolve_api_key_unscoped("hash-2").await.unwrap(),
        None
    );

    store.delete_api_key(&scope, second.id).await.unwrap();
    assert!(matches!(
        store.delete_api_key(&scope, second.id).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn api_keys_of_other_tenants_are_not_found(db: TestDb) {
    let store = &db.store;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    let key = store
        .create_api_key(&a, "A's DTU", "dh_aaaa", "hash-a")
        .await
        .unwrap();
    assert!(store.api_keys(&b).await.unwrap().is_empty());
    assert!(matches!(
        store.revoke_api_key(&b, key.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_api_key(&b, key.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .delete_api_key(&b, ApiKeyId::new(key.id.get() + 1000))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .resolve_api_key_unscoped("hash-a")
            .await
            .unwrap()
            .map(|r| r.0),
        Some(a)
    );
}

pub async fn admin_methods_recheck_superuser(db: TestDb) {
    let store = &db.store;
    let plain = db.tenant("plain@example.org").await;
    let victim = db.tenant("victim@example.org").await;
    db.inverter(&victim, "114100000001").await;
    let actor = AdminActor::new(&plain);
    assert!(matches!(
        store.admin_users(actor, None, 10, 0).await,
        Err(StoreError::Forbidden)
    ));
    assert!(matches!(
        store.admin_inverters(actor).await,
        Err(StoreError::Forbidden)
    ));
    assert!(matches!(
        store.admin_unclaimed_loggers(actor).await,
        Err(StoreError::Forbidden)
    ));
    assert!(matches!(
        store.admin_delete_user(actor, victim.user_id()).await,
        Err(StoreError::Forbidden)
    ));

    let root = superuser(&db, "root@example.org").await;
    let actor = AdminActor::new(&root);
    let all = store.admin_users(actor, None, 10, 0).await.unwrap();
    assert_eq!(all.len(), 3);
    let found = store.admin_users(actor, Some("VICT"), 10, 0).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].user.id, found[0].inverter_count),
        (victim.user_id(), 1)
    );
    assert!(
        store
            .admin_users(actor, Some("%"), 10, 0)
            .await
            .unwrap()
            .is_empty(),
        "% is literal"
    );
    assert_eq!(store.admin_users(actor, None, 1, 1).await.unwrap().len(), 1);
    assert_eq!(store.admin_inverters(actor).await.unwrap().len(), 1);

    store
        .admin_delete_user(actor, victim.user_id())
        .await
        .unwrap();
    assert!(
        store
            .user_by_id_unscoped(victim.user_id())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.admin_inverters(actor).await.unwrap().is_empty());

    // a demoted superuser loses access at once (checked in the database on every call)
    let flags = UserFlags {
        is_active: true,
        is_verified: true,
        is_superuser: false,
    };
    store
        .admin_set_user_flags(actor, root.user_id(), flags)
        .await
        .unwrap();
    assert!(matches!(
        store.admin_inverters(actor).await,
        Err(StoreError::Forbidden)
    ));
    assert!(store.inverters(&root).await.unwrap().is_empty());
}

/// Creates a superuser and returns its scope.
async fn superuser(db: &TestDb, email: &str) -> TenantScope {
    let mut new = new_user(email, None);
    new.is_superuser = true;
    TenantScope::for_tests(db.store.create_user(&new).await.unwrap().id)
}
