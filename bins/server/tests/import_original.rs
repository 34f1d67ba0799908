//! `import-original` as a real process: a database of the original schema imported into the
//! embedded SQLite store of a data directory, twice. The summary is on stdout; stderr carries no
//! progress bar when it is not a terminal; bad sources fail with a message naming the problem
//! and never the password. (The behaviour on both backends is covered by `tests/e2e/import.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};

use sqlx::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_deyehard-server");
const SCHEMA: &str = include_str!("../../../tests/fixtures/original/schema.sql");
const DATA: &str = include_str!("../../../tests/fixtures/original/data.sql");

fn admin_url() -> String {
    std::env::var("DEYEHARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn url_of(database: &str) -> String {
    let admin = admin_url();
    let base = admin.split('?').next().unwrap();
    format!("{}/{database}", base.rsplit_once('/').unwrap().0)
}

/// Creates a database of the original schema with the fixture data; returns its name.
async fn original_database() -> String {
    let admin = admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is needed for this test but {admin} is unreachable ({e}). Start it with \
             `pg_ctlcluster 15 main start`, or point DEYEHARD_TEST_PG_URL at one."
        )
    });
    let name = format!("dh_orig_cli_{:016x}", rand::random::<u64>());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let hash = deyehard_core::auth::password::hash_password("Sonnen-Schein7")
        .unwrap()
        .into_string();
    let data = DATA
        .replace("{{ANNA_HASH}}", &hash)
        .replace("{{BERND_HASH}}", &hash)
        .replace("{{CARLA_HASH}}", &hash)
        .replace("{{DORA_HASH}}", "not-a-hash");
    let mut source = sqlx::PgConnection::connect(&url_of(&name)).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("{SCHEMA}\n{data}")))
        .execute(&mut source)
        .await
        .unwrap();
    name
}

async fn drop_database(name: &str) {
    let mut conn = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&mut conn)
        .await
        .unwrap();
}

fn import(data_dir: &std::path::Path, from: &str) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "import-original",
            "--from",
            from,
            "--time-zone",
            "Europe/Vienna",
        ])
        .env_remove("DEYEHARD_DATA_DIR")
        .env_remove("DATABASE_URL")
        .env("DEYEHARD_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn imports_into_the_data_directory_once_and_reports_on_stdout() {
    let name = original_database().await;
    let dir = tempfile::tempdir().unwrap();

    let first = import(dir.path(), &url_of(&name));
    let (out, err) = (text(&first.stdout), text(&first.stderr));
    assert!(first.status.success(), "{out}\n{err}");
    assert!(
        out.contains("users imported:               4 (1 inactive)"),
        "{out}"
    );
    assert!(
        out.contains("measurements imported:        61 (0 already present"),
        "{out}"
    );
    assert!(out.contains("duplicates removed:           3"), "{out}");
    assert!(out.contains("DC rows imported:             61"), "{out}");
    assert!(
        out.contains("inverter 5 \"Gone\" serial \"3000000001\": no owner"),
        "{out}"
    );
    assert!(out.contains("\"HM-800-XY\""), "{out}");
    assert!(
        out.contains("(they must reset their password):\n  - dora@example.com"),
        "{out}"
    );
    assert!(
        !err.contains("measurements (") && !err.contains('\u{1b}'),
        "no progress bar when stderr is not a terminal: {err}"
    );
    assert!(dir.path().join("deyehard.db").exists());

    let second = import(dir.path(), &url_of(&name));
    let out = text(&second.stdout);
    assert!(second.status.success(), "{out}");
    assert!(out.contains("Nothing new to import"), "{out}");
    assert!(out.contains("users imported:               0"), "{out}");
    drop_database(&name).await;
}

#[tokio::test]
async fn bad_sources_fail_with_a_clear_message_and_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let missing = import(
        dir.path(),
        "postgres://postgres:s3cret-pw@127.0.0.1:5432/dh_no_such_database",
    );
    let err = text(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        err.contains("cannot connect to the original database"),
        "{err}"
    );
    assert!(!err.contains("s3cret-pw"), "{err}");

    // The server's own maintenance database has none of the original tables.
    let wrong = import(dir.path(), &admin_url());
    let err = text(&wrong.stderr);
    assert!(!wrong.status.success());
    assert!(
        err.contains("is not a database of the original service"),
        "{err}"
    );
    assert!(err.contains("inverter_measurements"), "{err}");

    let not_a_url = import(dir.path(), "mysql://x");
    assert!(!not_a_url.status.success());
    assert!(
        text(&not_a_url.stderr).contains("--from"),
        "{}",
        text(&not_a_url.stderr)
    );
}
