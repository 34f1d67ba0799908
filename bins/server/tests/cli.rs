//! The provisioning and export commands driven as a real process, on both store backends:
//! `user add` → `apikey create` → `inverter add` → `serve` → pushes over HTTP → `export` as
//! JSON lines and CSV, with `--data-dir` before and after the subcommand. Stdout carries only
//! the result.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use sqlx::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_deyehard-server");
const README: &str = include_str!("../../../deyehard-opendtu/tests/fixtures/readme-example.json");
const EMAIL: &str = "cli@example.com";

/// Where the commands keep their data: a data directory, and a PostgreSQL database or none.
struct Env {
    dir: tempfile::TempDir,
    database_url: Option<String>,
    pg: Option<(String, String)>,
}

impl Env {
    fn sqlite() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            database_url: None,
            pg: None,
        }
    }

    async fn postgres() -> Self {
        let admin = std::env::var("DEYEHARD_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is needed for this test but {admin} is unreachable ({e}). Start it with \
                 `pg_ctlcluster 15 main start`, or point DEYEHARD_TEST_PG_URL at one."
            )
        });
        let name = format!("dh_cli_{:016x}", rand::random::<u64>());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin.split('?').next().unwrap();
        let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
        Self {
            dir: tempfile::tempdir().unwrap(),
            database_url: Some(url),
            pg: Some((admin, name)),
        }
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_remove("DEYEHARD_DATA_DIR")
            .env("DEYEHARD_LOG", "warn");
        match &self.database_url {
            Some(url) => cmd.env("DATABASE_URL", url),
            None => cmd.env_remove("DATABASE_URL"),
        };
        cmd
    }

    /// Runs a command to completion.
    fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs a command that must succeed and returns its stdout.
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

/// `serve` as a child process; the port comes from its start-up line on stderr.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(env: &Env) -> Self {
        let data_dir = env.data_dir().to_str().unwrap();
        let mut child = env
            .command(&[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--collector-listen",
                "off",
                "--data-dir",
                data_dir,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("open http://127.0.0.1:").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = tx.send(port.parse::<u16>().unwrap());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server announces its address");
        Self { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn provision_push_export(mut env: Env) {
    let data_dir = env.data_dir().to_str().unwrap().to_owned();
    let d = data_dir.as_str();

    // --data-dir before the subcommand …
    let user = env.ok(&[
        "--data-dir",
        d,
        "user",
        "add",
        "--email",
        EMAIL,
        "--password",
        "Sunny-Roof-2025",
        "--verified",
    ]);
    assert!(
        user.trim().parse::<i64>().is_ok(),
        "user add prints the id alone: {user:?}"
    );
    // … and after it.
    let key = env.ok(&[
        "apikey",
        "create",
        "--user",
        EMAIL,
        "--name",
        "dtu",
        "--data-dir",
        d,
    ]);
    let key = key.strip_suffix('\n').expect("one line");
    assert!(
        key.starts_with("dh_") && key.len() == 44 && !key.contains(char::is_whitespace),
        "{key:?}"
    );
    let inverter = env.ok(&[
        "inverter",
        "add",
        "--user",
        EMAIL,
        "--kind",
        "opendtu",
        "--serial",
        "116166771004",
        "--name",
        "Roof",
        "--rated-power",
        "800",
        "--mppts",
        "1",
        "--data-dir",
        d,
    ]);
    let inverter_id: i64 = inverter
        .trim()
        .parse()
        .expect("inverter add prints the id alone");

    let server = Server::start(&env);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let later = README
        .replace("17:54:43", "17:55:43")
        .replace("1760889277", "1760889337")
        .replace("\"yield_total\": 444.671", "\"yield_total\": 444.676");
    for (body, auth) in [
        (README.to_owned(), ("X-API-Key", key.to_owned())),
        (later, ("Authorization", format!("Bearer {key}"))),
    ] {
        let response = client
            .post(server.url("/api/opendtu/measurements"))
            .header(auth.0, auth.1)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["results"][0]["inverter_id"], inverter_id);
    }
    drop(server);

    let json = env.ok(&[
        "export",
        "--user",
        EMAIL,
        "--format",
        "json",
        "--data-dir",
        d,
    ]);
    let lines: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{json}");
    assert_eq!(lines[0]["time"], "2025-10-19T15:54:43Z");
    assert_eq!(lines[1]["time"], "2025-10-19T15:55:43Z", "time order");
    assert_eq!(lines[0]["inverter_serial"], "116166771004");
    assert_eq!(lines[0]["power_ac_w"], 16.1);
    assert_eq!(lines[0]["temperature_c"], Value::Null);
    assert_eq!(lines[1]["yield_total_wh"], 444_676.0);
    assert_eq!(
        (lines[0]["reachable"].clone(), lines[0]["producing"].clone()),
        (true.into(), true.into())
    );
    assert_eq!(lines[0]["source"], "opendtu");
    assert_eq!(lines[0]["dc"][0]["name"], "Panel 1");
    assert_eq!(lines[0]["dc"][0]["irradiation_pct"], 1.545455);

    let csv = env.ok(&[
        "--data-dir",
        d,
        "export",
        "--user",
        EMAIL,
        "--inverter",
        "116166771004",
        "--from",
        "2025-10-19T17:55:00+02:00",
        "--to",
        "2025-10-20T00:00:00Z",
        "--format",
        "csv",
    ]);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2, "header and one reading in range: {csv}");
    assert!(
        rows[0].starts_with("time,inverter_serial,power_ac_w,voltage_ac_v,"),
        "{}",
        rows[0]
    );
    assert!(rows[0].ends_with(",source,dc1_name,dc1_power_w,dc1_voltage_v,dc1_current_a,dc1_yield_day_wh,dc1_yield_total_wh,dc1_irradiation_pct"));
    assert!(rows[1].starts_with("2025-10-19T15:55:43Z,116166771004,16.1,229.8,0.07,49.99,0.617,17,,337,444676,true,true,opendtu,Panel 1,3.4,30.4,0.11,337,444676,1.545455"), "{}", rows[1]);

    let unknown = env.run(&[
        "export",
        "--user",
        EMAIL,
        "--inverter",
        "999",
        "--format",
        "json",
        "--data-dir",
        d,
    ]);
    assert!(!unknown.status.success());
    assert!(unknown.stdout.is_empty(), "errors never reach stdout");
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no inverter with the serial \"999\"")
    );
    let bad_time = env.run(&[
        "export",
        "--user",
        EMAIL,
        "--from",
        "yesterday",
        "--format",
        "csv",
        "--data-dir",
        d,
    ]);
    assert!(!bad_time.status.success() && bad_time.stdout.is_empty());
    env.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_provision_push_and_export() {
    provision_push_export(Env::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_provision_push_and_export() {
    provision_push_export(Env::postgres().await).await;
}
