//! The operator's account commands as a real process, on both store backends: `user add`,
//! `user list` (tab-separated lines), `user promote` / `user demote`, and `apikey create`
//! refusing an unverified account with a message that says what to do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};

use sqlx::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_deyehard-server");

/// A data directory, and a PostgreSQL database (dropped at the end) or none.
struct Env {
    dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl Env {
    async fn new(postgres: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        if !postgres {
            return Self { dir, pg: None };
        }
        let admin = std::env::var("DEYEHARD_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is needed for this test but {admin} is unreachable ({e}). Start it \
                 with `pg_ctlcluster 15 main start`, or point DEYEHARD_TEST_PG_URL at one."
                )
            });
        let name = format!("dh_cliu_{:016x}", rand::random::<u64>());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        Self {
            dir,
            pg: Some((admin, name)),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--data-dir")
            .arg(self.dir.path())
            .env_remove("DEYEHARD_DATA_DIR")
            .env("DEYEHARD_LOG", "warn")
            .stdin(Stdio::null());
        match &self.pg {
            Some((admin, name)) => {
                let base = admin.split('?').next().unwrap();
                let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
                cmd.env("DATABASE_URL", url)
            }
            None => cmd.env_remove("DATABASE_URL"),
        };
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?} failed: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    }

    async fn drop_database(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
}

/// The tab-separated fields of the `user list` line of `email`.
fn listed(list: &str, email: &str) -> Vec<String> {
    let line = list
        .lines()
        .find(|l| l.split('\t').nth(1) == Some(email))
        .unwrap_or_else(|| panic!("{email} not in {list:?}"));
    line.split('\t').map(str::to_owned).collect()
}

async fn list_promote_demote_and_verified_keys(mut env: Env) {
    let id = env.ok(&[
        "user",
        "add",
        "--email",
        "op@example.com",
        "--password",
        "Sunny-Roof-2025",
        "--name",
        "Olga\tOperator",
    ]);
    env.ok(&[
        "user",
        "add",
        "--email",
        "second@example.com",
        "--password",
        "Sunny-Roof-2025",
        "--verified",
    ]);

    let list = env.ok(&["user", "list"]);
    assert_eq!(list.lines().count(), 2, "{list:?}");
    let fields = listed(&list, "op@example.com");
    assert_eq!(fields.len(), 8, "{fields:?}");
    assert_eq!(fields[0], id.trim());
    assert_eq!(fields[2..6], ["active", "unverified", "user", "0"]);
    assert!(
        fields[6].ends_with('Z') && fields[6].contains('T'),
        "{fields:?}"
    );
    assert_eq!(fields[7], "Olga Operator");
    let searched = env.ok(&["user", "list", "--search", "SECOND"]);
    assert_eq!(searched.lines().count(), 1, "{searched:?}");

    // An unverified account gets no API key, and the message says what to do.
    let refused = env.run(&["apikey", "create", "--user", "op@example.com"]);
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("has not confirmed")
            && stderr.contains("user verify --email op@example.com"),
        "{stderr}"
    );
    env.ok(&["user", "verify", "--email", "op@example.com"]);
    let key = env.ok(&["apikey", "create", "--user", "op@example.com"]);
    assert!(key.starts_with("dh_"), "{key:?}");

    env.ok(&["user", "promote", "--email", "op@example.com"]);
    let fields = listed(&env.ok(&["user", "list"]), "op@example.com");
    assert_eq!(fields[2..5], ["active", "verified", "admin"]);
    env.ok(&["user", "demote", "--email", "op@example.com"]);
    let fields = listed(&env.ok(&["user", "list"]), "op@example.com");
    assert_eq!(fields[4], "user");

    let unknown = env.run(&["user", "promote", "--email", "nobody@example.com"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user"));
    env.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_user_list_promote_demote_and_verified_keys() {
    list_promote_demote_and_verified_keys(Env::new(false).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_user_list_promote_demote_and_verified_keys() {
    list_promote_demote_and_verified_keys(Env::new(true).await).await;
}
