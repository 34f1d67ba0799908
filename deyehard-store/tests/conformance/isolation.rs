//! PostgreSQL isolation proved below the store: raw SQL as `deyehard_app`, with the
//! application's `WHERE` clauses gone, after the same transaction setup the store uses.

use sqlx::{Connection, PgConnection, Row};

use crate::harness::TestDb;
use crate::maintenance::{TENANT_TABLES, populate};

/// Opens a transaction exactly as the store does: role switch plus tenant setting.
async fn as_app<'c>(
    conn: &'c mut PgConnection,
    tenant: &str,
) -> sqlx::Transaction<'c, sqlx::Postgres> {
    let mut tx = conn.begin().await.unwrap();
    sqlx::query(
        "SELECT set_config('role', 'deyehard_app', true), \
         set_config('app.current_user_id', $1, true), set_config('app.cross_tenant', 'off', true)",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await
    .unwrap();
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(role, "deyehard_app", "a real role switch");
    tx
}

pub async fn rls_shows_each_tenant_only_its_rows(db: TestDb) {
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    populate(&db, &a, "114172220003", 1).await;
    populate(&db, &b, "114172220003", 2).await;
    let (a_id, b_id) = (a.user_id().get(), b.user_id().get());
    let mut conn = db.pg_connection().await;

    // tenant A set: plain SELECT * with no WHERE returns A's rows only, in every table
    let mut tx = as_app(&mut conn, &a_id.to_string()).await;
    for table in TENANT_TABLES {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert!(!rows.is_empty(), "{table}: A sees its own rows");
        for row in &rows {
            let owner: i64 = row.try_get("user_id").unwrap();
            assert_eq!(owner, a_id, "{table}: A sees a row of user {owner}");
        }
    }
    let unclaimed: i64 = sqlx::query_scalar("SELECT count(*) FROM unclaimed_loggers")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(unclaimed, 0);

    // WITH CHECK: writing a row for B, or moving A's row to B, fails
    let insert = sqlx::query(
        "INSERT INTO api_keys (user_id, name, prefix, key_hash, created_at) \
         VALUES ($1, 'planted', 'dh_x', 'planted-hash', now())",
    )
    .bind(b_id)
    .execute(&mut *tx)
    .await;
    let err = insert.expect_err("inserting a row for B must fail");
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42501"),
        "{err}"
    );
    tx.rollback().await.unwrap();

    let mut tx = as_app(&mut conn, &a_id.to_string()).await;
    let moved = sqlx::query("UPDATE inverters SET user_id = $1")
        .bind(b_id)
        .execute(&mut *tx)
        .await;
    assert!(moved.is_err(), "moving A's inverters to B must fail");
    tx.rollback().await.unwrap();

    // B's rows cannot be touched by A
    let mut tx = as_app(&mut conn, &a_id.to_string()).await;
    let hidden = sqlx::query("DELETE FROM measurements WHERE user_id = $1")
        .bind(b_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(hidden.rows_affected(), 0);
    tx.commit().await.unwrap();

    // no tenant set (and the reset value ''): every tenant table reads as empty
    for tenant in ["", "not-set"] {
        let mut tx = if tenant.is_empty() {
            as_app(&mut conn, "").await
        } else {
            let mut tx = conn.begin().await.unwrap();
            sqlx::query("SET LOCAL ROLE deyehard_app")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx
        };
        for table in TENANT_TABLES {
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
            assert_eq!(n, 0, "{table} without a tenant");
        }
        tx.rollback().await.unwrap();
    }

    // and the data is really there
    for table in TENANT_TABLES {
        let sql = format!("SELECT count(*) FROM {table} WHERE user_id = {b_id}");
        assert!(db.count(&sql).await > 0, "{table} holds B's rows");
    }
}

pub async fn series_rows_must_name_an_inverter_of_their_tenant(db: TestDb) {
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    let a_inverter = db.inverter(&a, "114172220001").await.get();
    let b_inverter = db.inverter(&b, "114172220002").await.get();
    let (a_id, b_id) = (a.user_id().get(), b.user_id().get());
    let mut conn = db.pg_connection().await;
    let insert_ac = "INSERT INTO measurements (inverter_id, time, user_id, reachable, producing, \
         source, received_at) VALUES ($1, now(), $2, true, true, 'opendtu', now())";
    let insert_dc = "INSERT INTO dc_measurements (inverter_id, time, channel, user_id) \
         VALUES ($1, now(), 1, $2)";

    // tenant A naming B's inverter (with A's or B's id), or a missing one: refused
    for statement in [insert_ac, insert_dc] {
        for (inverter, owner) in [
            (b_inverter, a_id),
            (b_inverter, b_id),
            (b_inverter + 100, a_id),
        ] {
            let mut tx = as_app(&mut conn, &a_id.to_string()).await;
            assert_refused_by_policy(&mut tx, statement, inverter, owner).await;
            tx.rollback().await.unwrap();
        }
        // the same row for A's own inverter is accepted
        let mut tx = as_app(&mut conn, &a_id.to_string()).await;
        sqlx::query(statement)
            .bind(a_inverter)
            .bind(a_id)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
    }

    // cross-tenant (as the admin's reassign runs): the row must still name the inverter's owner
    let mut tx = as_app(&mut conn, "").await;
    sqlx::query("SELECT set_config('app.cross_tenant', 'on', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_refused_by_policy(&mut tx, insert_dc, b_inverter, a_id).await;
    tx.rollback().await.unwrap();
}

/// Runs `statement` with (`inverter`, `owner`) and asserts that a row-level security policy
/// refused it (SQLSTATE 42501).
async fn assert_refused_by_policy(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    statement: &'static str,
    inverter: i64,
    owner: i64,
) {
    let err = sqlx::query(statement)
        .bind(inverter)
        .bind(owner)
        .execute(&mut **tx)
        .await
        .expect_err("a row naming an inverter that is not its owner's must fail");
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42501"),
        "{inverter} / {owner}: {err}"
    );
}

pub async fn app_role_cannot_bypass_rls(db: TestDb) {
    let mut conn = db.pg_connection().await;
    let role = sqlx::query(
        "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = 'deyehard_app'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let flags: (bool, bool, bool) = (role.get(0), role.get(1), role.get(2));
    assert_eq!(
        flags,
        (false, false, false),
        "deyehard_app: no superuser, no BYPASSRLS, no login"
    );

    for table in TENANT_TABLES.iter().chain(&["unclaimed_loggers"]) {
        let rls = sqlx::query(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class \
             WHERE oid = to_regclass($1)",
        )
        .bind(*table)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let (enabled, forced): (bool, bool) = (rls.get(0), rls.get(1));
        assert!(enabled && forced, "{table}: RLS enabled and forced");
        let policies: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_policies WHERE tablename = $1 AND cmd = 'ALL' \
             AND qual IS NOT NULL AND with_check IS NOT NULL",
        )
        .bind(*table)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(
            policies, 1,
            "{table}: one FOR ALL policy with USING and WITH CHECK"
        );
    }
}
