//! Store benchmarks, on SQLite (a temp file) and PostgreSQL (a database of its own, from
//! `DEYEHARD_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`, dropped at the
//! end):
//!
//! - `write/<backend>`: readings written per second, in batches of 1,000 readings (10 inverters ×
//!   100 consecutive minutes), each reading 1 AC row + 4 DC rows, daily energy and rollups
//!   maintained as in production;
//! - `read/<backend>/…`: one inverter holding two years of one-minute data (~1.05M readings,
//!   seeded once per run with the batched writer): the 30-day power series (≤ 1,000 points),
//!   the 1-year daily energy (365 rows) and the year view (12 monthly bars).
//!
//! Run: `cargo bench -p deyehard-store --all-features --bench store -- --warm-up-time 1
//! --measurement-time 3`. `DEYEHARD_BENCH_BACKENDS=sqlite` (or `postgres`) limits the backends.

#![expect(
    clippy::expect_used,
    reason = "a benchmark can only abort with a message when its setup fails"
)]

use std::cell::Cell;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use criterion::{Criterion, Throughput};
use deyehard_core::energy::Period;
use deyehard_core::{DcReading, InverterId, InverterKind, Reading, Source, TenantScope};
use deyehard_store::{
    InverterFields, InverterStore, NewUser, ReadingReader, ReadingWriter, Store, StoreOptions,
    UserStore,
};
use rand::RngExt;
use sqlx::Connection;
use tokio::runtime::Runtime;

/// Readings per write batch.
const BATCH: usize = 1_000;
/// Inverters a write batch spreads over.
const BATCH_INVERTERS: usize = 10;
/// Two years of one-minute data.
const SEED_MINUTES: i64 = 2 * 365 * 24 * 60;
/// Readings per seeding batch.
const SEED_BATCH: i64 = 10_080;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// A daytime-shaped reading with 4 DC channels and consistent counters.
fn reading(minute: i64) -> Reading {
    let time = start() + TimeDelta::minutes(minute);
    let minute_of_day = (minute % 1440) as f64;
    let power = (600.0 * ((minute_of_day - 360.0) / 720.0 * std::f64::consts::PI).sin()).max(0.0);
    let mut r = Reading::new(time, Source::Opendtu);
    r.power_ac_w = Some(power);
    r.voltage_ac_v = Some(230.4);
    r.current_ac_a = Some(power / 230.4);
    r.frequency_hz = Some(50.0);
    r.power_factor = Some(1.0);
    r.power_dc_w = Some(power * 1.04);
    r.temperature_c = Some(25.0);
    r.yield_total_wh = Some(minute as f64 * 5.0);
    r.producing = power > 0.0;
    r.dc = (1..=4)
        .map(|channel| {
            let mut dc = DcReading::new(channel);
            dc.power_w = Some(power / 4.0 * 1.04);
            dc.voltage_v = Some(32.0);
            dc.current_a = Some(power / 4.0 / 32.0);
            dc.yield_total_wh = Some(minute as f64 * 1.25);
            dc
        })
        .collect();
    r
}

struct Fixture {
    name: &'static str,
    store: Store,
    scope: TenantScope,
    seeded: InverterId,
    writers: Vec<InverterId>,
    pg_cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

async fn open(name: &'static str) -> Fixture {
    let options = StoreOptions {
        max_connections: 4,
        ..StoreOptions::default()
    };
    let (store, pg_cleanup, dir) = if name == "sqlite" {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        (
            Store::connect(&url, &options).await.expect("SQLite store"),
            None,
            Some(dir),
        )
    } else {
        let admin_url = std::env::var("DEYEHARD_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("PostgreSQL unreachable at {admin_url} ({e}): start it with `pg_ctlcluster 15 main start`")
        });
        let db = format!("dh_bench_{:012x}", rand::rng().random::<u64>() >> 16);
        let sql = format!("CREATE DATABASE {db}");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .expect("create bench db");
        let (root, _) = admin_url.rsplit_once('/').expect("URL with a database");
        let url = format!("{root}/{db}");
        let store = Store::connect(&url, &options)
            .await
            .expect("PostgreSQL store");
        (store, Some((admin_url, db)), None)
    };
    let user = NewUser {
        email: "bench@example.org".into(),
        password_hash: "x".into(),
        display_name: "bench".into(),
        time_zone: Some("Europe/Berlin".into()),
        locale: None,
        is_verified: true,
        is_superuser: false,
    };
    let scope = TenantScope::for_tests(store.create_user(&user).await.expect("user").id);
    let mut ids = Vec::new();
    for n in 0..=BATCH_INVERTERS {
        let fields = InverterFields {
            name: format!("bench {n}"),
            kind: InverterKind::Opendtu,
            serial: Some(format!("1141000000{n:02}").parse().expect("serial")),
            logger_serial: None,
            rated_power_w: Some(800.0),
            mppt_count: Some(4),
        };
        ids.push(
            store
                .create_inverter(&scope, &fields)
                .await
                .expect("inverter")
                .id,
        );
    }
    let seeded = ids.remove(0);
    Fixture {
        name,
        store,
        scope,
        seeded,
        writers: ids,
        pg_cleanup,
        _dir: dir,
    }
}

impl Fixture {
    /// Two years of one-minute readings for the seeded inverter, written in week-long batches.
    async fn seed(&self) {
        let began = Instant::now();
        let mut minute = 0;
        while minute < SEED_MINUTES {
            let batch: Vec<(InverterId, Reading)> = (minute
                ..(minute + SEED_BATCH).min(SEED_MINUTES))
                .map(|m| (self.seeded, reading(m)))
                .collect();
            self.store
                .write_readings(&self.scope, &batch, Utc::now())
                .await
                .expect("seed");
            minute += SEED_BATCH;
        }
        let secs = began.elapsed().as_secs_f64();
        println!(
            "{}: seeded {SEED_MINUTES} readings (1 AC + 4 DC rows each) in {secs:.1} s ({:.0} readings/s)",
            self.name,
            SEED_MINUTES as f64 / secs
        );
    }

    async fn close(self) {
        self.store.close().await;
        if let Some((admin_url, db)) = self.pg_cleanup {
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("admin");
            let sql = format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut admin)
                .await
                .expect("drop bench db");
        }
    }
}

fn bench_writes(c: &mut Criterion, rt: &Runtime, fx: &Fixture) {
    let mut group = c.benchmark_group("write");
    group.throughput(Throughput::Elements(BATCH as u64));
    let next_minute = Cell::new(0_i64);
    let per_inverter = (BATCH / BATCH_INVERTERS) as i64;
    group.bench_function(fx.name, |b| {
        b.to_async(rt).iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let batches: Vec<Vec<(InverterId, Reading)>> = (0..iters)
                .map(|_| {
                    let first = next_minute.get();
                    next_minute.set(first + per_inverter);
                    fx.writers
                        .iter()
                        .flat_map(|id| (first..first + per_inverter).map(|m| (*id, reading(m))))
                        .collect()
                })
                .collect();
            async move {
                for batch in batches {
                    let began = Instant::now();
                    let outcomes = fx.store.write_readings(&fx.scope, &batch, Utc::now()).await;
                    elapsed += began.elapsed();
                    assert_eq!(outcomes.map(|o| o.len()).ok(), Some(BATCH));
                }
                elapsed
            }
        });
    });
    group.finish();
}

fn bench_reads(c: &mut Criterion, rt: &Runtime, fx: &Fixture) {
    let mut group = c.benchmark_group(format!("read/{}", fx.name));
    let end = start() + TimeDelta::minutes(SEED_MINUTES);
    let from = end - TimeDelta::days(30);
    group.bench_function("power_series_30d", |b| {
        b.to_async(rt).iter(|| async {
            let series = fx
                .store
                .power_series(&fx.scope, fx.seeded, from, end, 1000)
                .await;
            let points = series.map(|s| s.points.len()).unwrap_or_default();
            assert!(points > 300 && points <= 1000, "{points} points");
        });
    });
    let last_day = (end - TimeDelta::days(1)).date_naive();
    let first_day = last_day - TimeDelta::days(364);
    group.bench_function("daily_energy_1y", |b| {
        b.to_async(rt).iter(|| async {
            let days = fx
                .store
                .daily_energy(&fx.scope, fx.seeded, first_day, last_day)
                .await;
            assert_eq!(days.map(|d| d.len()).unwrap_or_default(), 365);
        });
    });
    let year = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap_or_default();
    group.bench_function("year_view", |b| {
        b.to_async(rt).iter(|| async {
            let bars = fx
                .store
                .energy_buckets(&fx.scope, fx.seeded, Period::Year, year)
                .await;
            assert_eq!(bars.map(|b| b.len()).unwrap_or_default(), 12);
        });
    });
    group.finish();
}

fn main() {
    let rt = Runtime::new().expect("tokio runtime");
    let mut c = Criterion::default().configure_from_args();
    let wanted =
        std::env::var("DEYEHARD_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    for name in ["sqlite", "postgres"]
        .into_iter()
        .filter(|n| wanted.contains(n))
    {
        let fixture = rt.block_on(open(name));
        rt.block_on(fixture.seed());
        bench_reads(&mut c, &rt, &fixture);
        bench_writes(&mut c, &rt, &fixture);
        rt.block_on(fixture.close());
    }
    c.final_summary();
}
