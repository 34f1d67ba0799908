//! Backends for the suite: a fresh SQLite file or a fresh PostgreSQL database per test, so
//! tests run in parallel and clean up after themselves.

use std::future::Future;
#[cfg(feature = "sqlite")]
use std::path::PathBuf;
#[cfg(feature = "sqlite")]
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use deyehard_core::{InverterId, InverterKind, Reading, Source, TenantScope};
use deyehard_store::{InverterFields, InverterStore, NewUser, Store, StoreOptions, UserStore};
#[cfg(feature = "postgres")]
use rand::RngExt;
use sqlx::Connection;

#[cfg(feature = "postgres")]
/// Default for `DEYEHARD_TEST_PG_URL`: the local server as superuser (trust auth).
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Which backend a test runs on (a build with one backend constructs only one variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(all(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A store on a database of its own, plus raw access for assertions that must bypass the
/// store (row counts across tenants, RLS checks).
#[derive(Clone)]
pub struct TestDb {
    pub store: Store,
    pub kind: Kind,
    target: Target,
}

#[derive(Clone)]
enum Target {
    #[cfg(feature = "sqlite")]
    Sqlite {
        path: PathBuf,
        _dir: Arc<tempfile::TempDir>,
    },
    #[cfg(feature = "postgres")]
    Postgres {
        url: String,
        admin_url: String,
        name: String,
    },
}

/// Runs `test` on a fresh database of `kind`, then removes the database (also when the test
/// panics, after which the panic is resumed).
pub async fn run<F, Fut>(kind: Kind, test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = match kind {
        #[cfg(feature = "sqlite")]
        Kind::Sqlite => sqlite().await,
        #[cfg(feature = "postgres")]
        Kind::Postgres => postgres().await,
        #[allow(unreachable_patterns)]
        other => panic!("the {other:?} backend is not compiled in"),
    };
    let outcome = tokio::spawn(test(db.clone())).await;
    db.store.close().await;
    db.drop_database().await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

fn test_options() -> StoreOptions {
    StoreOptions {
        max_connections: 4,
        ..StoreOptions::default()
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url, &test_options())
        .await
        .expect("open SQLite store");
    TestDb {
        store,
        kind: Kind::Sqlite,
        target: Target::Sqlite {
            path,
            _dir: Arc::new(dir),
        },
    }
}

#[cfg(feature = "postgres")]
async fn postgres() -> TestDb {
    let admin_url =
        std::env::var("DEYEHARD_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
    let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(conn) => conn,
        Err(err) => panic!(
            "PostgreSQL is not reachable at {admin_url} ({err}). The PostgreSQL conformance \
             tests need a server: start the local one with `pg_ctlcluster 15 main start`, or \
             point DEYEHARD_TEST_PG_URL at a server where this login may create databases."
        ),
    };
    let name = format!("dh_test_{:016x}", rand::rng().random::<u64>());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let url = with_database(&admin_url, &name);
    let store = Store::connect(&url, &test_options())
        .await
        .expect("open PostgreSQL store");
    TestDb {
        store,
        kind: Kind::Postgres,
        target: Target::Postgres {
            url,
            admin_url,
            name,
        },
    }
}

/// `url` with its database replaced by `name`.
#[cfg(feature = "postgres")]
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{name}?{query}"),
        None => format!("{root}/{name}"),
    }
}

impl TestDb {
    /// Drops the PostgreSQL test database (SQLite's temp directory goes with the last clone).
    async fn drop_database(&self) {
        match &self.target {
            #[cfg(feature = "postgres")]
            Target::Postgres {
                admin_url, name, ..
            } => {
                let mut admin = sqlx::PgConnection::connect(admin_url)
                    .await
                    .expect("admin connection");
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await
                    .expect("drop test database");
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    /// Counts rows with raw SQL outside the store (PostgreSQL: as the login superuser, which
    /// RLS does not restrict; SQLite: a separate connection).
    pub async fn count(&self, sql: &str) -> i64 {
        match &self.target {
            #[cfg(feature = "sqlite")]
            Target::Sqlite { path, .. } => {
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .expect("raw SQLite connection");
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                    .fetch_one(&mut conn)
                    .await
                    .expect("raw count")
            }
            #[cfg(feature = "postgres")]
            Target::Postgres { url, .. } => {
                let mut conn = sqlx::PgConnection::connect(url)
                    .await
                    .expect("raw PG connection");
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                    .fetch_one(&mut conn)
                    .await
                    .expect("raw count")
            }
        }
    }

    /// Runs a statement with raw SQL outside the store (as [`Self::count`] connects).
    pub async fn execute(&self, sql: &str) {
        match &self.target {
            #[cfg(feature = "sqlite")]
            Target::Sqlite { path, .. } => {
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .expect("raw SQLite connection");
                sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut conn)
                    .await
                    .expect("raw statement");
            }
            #[cfg(feature = "postgres")]
            Target::Postgres { url, .. } => {
                let mut conn = sqlx::PgConnection::connect(url)
                    .await
                    .expect("raw PG connection");
                sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut conn)
                    .await
                    .expect("raw statement");
            }
        }
    }

    /// A raw connection to the PostgreSQL test database as the login role.
    #[cfg(feature = "postgres")]
    pub async fn pg_connection(&self) -> sqlx::PgConnection {
        match &self.target {
            Target::Postgres { url, .. } => sqlx::PgConnection::connect(url)
                .await
                .expect("raw PG connection"),
            #[allow(unreachable_patterns)]
            _ => panic!("not a PostgreSQL test"),
        }
    }

    /// Creates a user and returns its scope.
    pub async fn tenant(&self, email: &str) -> TenantScope {
        self.tenant_in(email, "Europe/Berlin").await
    }

    /// Creates a user in a time zone and returns its scope.
    pub async fn tenant_in(&self, email: &str, time_zone: &str) -> TenantScope {
        let user = self
            .store
            .create_user(&new_user(email, Some(time_zone)))
            .await
            .expect("create user");
        TenantScope::for_tests(user.id)
    }

    /// Creates an OpenDTU inverter for the tenant.
    pub async fn inverter(&self, scope: &TenantScope, serial: &str) -> InverterId {
        self.store
            .create_inverter(scope, &opendtu_fields(serial))
            .await
            .expect("create inverter")
            .id
    }
}

/// A new user with a fixed hash.
pub fn new_user(email: &str, time_zone: Option<&str>) -> NewUser {
    NewUser {
        email: email.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        display_name: email.split('@').next().unwrap_or_default().to_owned(),
        time_zone: time_zone.map(str::to_owned),
        locale: None,
        is_verified: false,
        is_superuser: false,
    }
}

/// Fields of an OpenDTU inverter with this serial.
pub fn opendtu_fields(serial: &str) -> InverterFields {
    InverterFields {
        name: format!("HM {serial}"),
        kind: InverterKind::Opendtu,
        serial: Some(serial.parse().expect("serial")),
        logger_serial: None,
        rated_power_w: Some(800.0),
        mppt_count: Some(2),
    }
}

/// A fixed instant: `2025-06-15` at `hh:mm` UTC.
pub fn june(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 15, hour, minute, 0)
        .single()
        .expect("valid time")
}

/// A reachable reading with power, both counters and `channels` DC channels.
pub fn reading(
    time: DateTime<Utc>,
    power: f64,
    day_wh: f64,
    total_wh: f64,
    channels: u8,
) -> Reading {
    let mut r = Reading::new(time, Source::Opendtu);
    r.power_ac_w = Some(power);
    r.voltage_ac_v = Some(230.1);
    r.current_ac_a = Some(power / 230.1);
    r.frequency_hz = Some(50.01);
    r.power_factor = Some(0.999);
    r.power_dc_w = Some(power * 1.04);
    r.temperature_c = Some(31.7);
    r.yield_day_wh = Some(day_wh);
    r.yield_total_wh = Some(total_wh);
    r.producing = power > 0.0;
    r.dc = (1..=channels)
        .map(|channel| {
            let mut dc = deyehard_core::DcReading::new(channel);
            dc.name = Some(format!("String {channel}"));
            dc.power_w = Some(power / f64::from(channels) * 1.04);
            dc.voltage_v = Some(31.5 + f64::from(channel));
            dc.current_a = Some(1.25);
            dc.yield_day_wh = Some(day_wh / f64::from(channels));
            dc.yield_total_wh = Some(total_wh / f64::from(channels));
            dc.irradiation_pct = Some(12.5);
            dc
        })
        .collect();
    r
}

/// One reading per minute from `start`, power following `power(minute)`, counters integrating
/// it exactly.
pub fn minute_series(
    start: DateTime<Utc>,
    minutes: i64,
    total_start_wh: f64,
    power: impl Fn(i64) -> f64,
) -> Vec<Reading> {
    let mut total = total_start_wh;
    let mut day = 0.0;
    let mut previous: Option<f64> = None;
    (0..minutes)
        .map(|m| {
            let p = power(m);
            if let Some(prev) = previous {
                let wh = (prev + p) / 2.0 / 60.0;
                total += wh;
                day += wh;
            }
            previous = Some(p);
            reading(start + TimeDelta::minutes(m), p, day, total, 2)
        })
        .collect()
}
