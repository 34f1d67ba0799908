//! Writing and reading readings: precision, duplicates, tenancy, downsampling, concurrency.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use deyehard_core::energy::{self, EnergyRules, EnergySample};
use deyehard_core::{InverterId, Reading, Source};
use deyehard_store::{
    InverterStore, RawFrameStore, ReadingReader, ReadingWriter, StoreError, WriteOutcome,
};

use crate::harness::{Kind, TestDb, june, minute_series, reading};

fn batch_of(inverter: InverterId, readings: &[Reading]) -> Vec<(InverterId, Reading)> {
    readings.iter().map(|r| (inverter, r.clone())).collect()
}

/// Row counts of everything a write touches, for "nothing changed" assertions.
async fn footprint(db: &TestDb) -> Vec<i64> {
    let mut counts = Vec::new();
    for sql in [
        "SELECT count(*) FROM measurements",
        "SELECT count(*) FROM dc_measurements",
        "SELECT coalesce(sum(samples), 0) FROM rollup_5m",
        "SELECT coalesce(sum(samples), 0) FROM rollup_1h",
        "SELECT count(*) FROM daily_energy",
    ] {
        counts.push(db.count(&format!("SELECT CAST(({sql}) AS BIGINT)")).await);
    }
    counts
}

pub async fn readings_round_trip_at_full_precision(db: TestDb) {
    let store = &db.store;
    let scope = db.tenant("a@example.org").await;
    let inverter = db.inverter(&scope, "114172220003").await;
    let mut readings: Vec<Reading> = (0..5)
        .map(|m| {
            reading(
                june(12, m),
                123.456_789_012_345 + f64::from(m),
                1234.5678,
                987_654.321_012_3,
                4,
            )
        })
        .collect();
    readings[2].reachable = false;
    readings[3].source = Source::SolarmanBuffered;
    readings[3].dc.clear();
    let received = june(12, 10) + TimeDelta::microseconds(1_234_567);
    let outcomes = store
        .write_readings(&scope, &batch_of(inverter, &readings), received)
        .await
        .unwrap();
    assert_eq!(outcomes, vec![WriteOutcome::Stored; 5]);

    let back = store
        .readings(&scope, inverter, june(0, 0), june(23, 0), 100)
        .await
        .unwrap();
    assert_eq!(
        back, readings,
        "every value comes back exactly, DC channels attached"
    );

    // paging: `from` = last time + 1 ms
    let first = store
        .readings(&scope, inverter, june(0, 0), june(23, 0), 2)
        .await
        .unwrap();
    let next_from = first[1].time + TimeDelta::milliseconds(1);
    let second = store
        .readings(&scope, inverter, next_from, june(23, 0), 2)
        .await
        .unwrap();
    assert_eq!(
        second.iter().map(|r| r.time).collect::<Vec<_>>(),
        [june(12, 2), june(12, 3)]
    );

    let latest = store.latest_readings(&scope).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].inverter_id, inverter);
    assert_eq!(latest[0].reading.time, june(12, 4));
    assert_eq!(latest[0].reading.power_ac_w, readings[4].power_ac_w);
    assert_eq!(
        latest[0].received_at,
        june(12, 10) + TimeDelta::milliseconds(1_234)
    );
    let seen = store.inverter(&scope, inverter).await.unwrap().last_seen_at;
    assert_eq!(seen, Some(june(12, 10) + TimeDelta::milliseconds(1_234)));

    // values that are not finite are stored as absent
    let mut odd = reading(june(13, 0), f64::NAN, 1.0, 2.0, 1);
    odd.temperature_c = Some(f64::INFINITY);
    odd.dc[0].power_w = Some(f64::NEG_INFINITY);
    store
        .write_readings(&scope, &[(inverter, odd)], received)
        .await
        .unwrap();
    let back = store
        .readings(&scope, inverter, june(13, 0), june(14, 0), 10)
        .await
        .unwrap();
    assert_eq!(
        (
            back[0].power_ac_w,
            back[0].temperature_c,
            back[0].dc[0].power_w
        ),
        (None, None, None)
    );
}

pub async fn duplicates_change_nothing(db: TestDb) {
    let store = &db.store;
    let scope = db.tenant("a@example.org").await;
    let inverter = db.inverter(&scope, "114172220003").await;
    let readings = minute_series(june(8, 0), 30, 500_000.0, |m| 200.0 + 10.0 * m as f64);
    let batch = batch_of(inverter, &readings);
    assert_eq!(
        store
            .write_readings(&scope, &batch, june(9, 0))
            .await
            .unwrap(),
        vec![WriteOutcome::Stored; 30]
    );
    let before = footprint(&db).await;
    let energy_before = store
        .daily_energy(
            &scope,
            inverter,
            june(0, 0).date_naive(),
            june(0, 0).date_naive(),
        )
        .await
        .unwrap();
    let series_before = store
        .power_series(&scope, inverter, june(0, 0), june(23, 0), 50)
        .await
        .unwrap();

    // the same push again, and a push with other values at the same times
    assert_eq!(
        store
            .write_readings(&scope, &batch, june(9, 5))
            .await
            .unwrap(),
        vec![WriteOutcome::Duplicate; 30]
    );
    let changed: Vec<Reading> = readings
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.power_ac_w = Some(9999.0);
            r.yield_total_wh = Some(1.0);
            r
        })
        .collect();
    let outcomes = store
        .write_readings(&scope, &batch_of(inverter, &changed), june(9, 6))
        .await
        .unwrap();
    assert_eq!(outcomes, vec![WriteOutcome::Duplicate; 30]);

    assert_eq!(footprint(&db).await, before);
    let energy_after = store
        .daily_energy(
            &scope,
            inverter,
            june(0, 0).date_naive(),
            june(0, 0).date_naive(),
        )
        .await
        .unwrap();
    assert_eq!(energy_after, energy_before);
    assert_eq!(
        store
            .power_series(&scope, inverter, june(0, 0), june(23, 0), 50)
            .await
            .unwrap(),
        series_before
    );
    assert_eq!(
        store
            .readings(&scope, inverter, june(0, 0), june(23, 0), 100)
            .await
            .unwrap(),
        readings
    );

    // a repeat inside one batch: the first wins
    let fresh = reading(june(10, 0), 100.0, 1.0, 500_100.0, 2);
    let mut other = fresh.clone();
    other.power_ac_w = Some(5.0);
    let outcomes = store
        .write_readings(
            &scope,
            &[(inverter, fresh.clone()), (inverter, other)],
            june(10, 1),
        )
        .await
        .unwrap();
    assert_eq!(outcomes, [WriteOutcome::Stored, WriteOutcome::Duplicate]);
    let back = store
        .readings(&scope, inverter, june(10, 0), june(10, 1), 10)
        .await
        .unwrap();
    assert_eq!(back, [fresh]);

    // a channel repeated inside one reading: its first row wins
    let mut repeated = reading(june(10, 2), 100.0, 1.0, 500_101.0, 2);
    let mut again = repeated.dc[0].clone();
    again.power_w = Some(1.0);
    repeated.dc.push(again);
    let outcomes = store
        .write_readings(&scope, &[(inverter, repeated.clone())], june(10, 3))
        .await
        .unwrap();
    assert_eq!(outcomes, [WriteOutcome::Stored]);
    repeated.dc.pop();
    let back = store
        .readings(&scope, inverter, june(10, 2), june(10, 3), 10)
        .await
        .unwrap();
    assert_eq!(back, [repeated.clone()]);

    // DC rows that outlived their AC row (e.g. chunks dropped at different times) are kept, and
    // the reading is stored again around them
    db.execute(&format!(
        "DELETE FROM measurements WHERE inverter_id = {} AND time = {}",
        inverter.get(),
        time_literal(&db, june(10, 2))
    ))
    .await;
    let mut newer = repeated.clone();
    newer.power_ac_w = Some(150.0);
    for dc in &mut newer.dc {
        dc.power_w = Some(75.0);
    }
    let outcomes = store
        .write_readings(&scope, &[(inverter, newer.clone())], june(10, 4))
        .await
        .unwrap();
    assert_eq!(outcomes, [WriteOutcome::Stored]);
    newer.dc = repeated.dc;
    let back = store
        .readings(&scope, inverter, june(10, 2), june(10, 3), 10)
        .await
        .unwrap();
    assert_eq!(back, [newer]);
}

/// `time` as a literal of the backend's time column (PostgreSQL `timestamptz`, SQLite epoch
/// milliseconds).
fn time_literal(db: &TestDb, time: DateTime<Utc>) -> String {
    match db.kind {
        Kind::Postgres => format!("'{}'::timestamptz", time.to_rfc3339()),
        Kind::Sqlite => time.timestamp_millis().to_string(),
    }
}

pub async fn foreign_inverters_store_nothing(db: TestDb) {
    let store = &db.store;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    let a_inverter = db.inverter(&a, "114172220003").await;
    let b_inverter = db.inverter(&b, "114172220003").await;
    let r = reading(june(12, 0), 300.0, 10.0, 1000.0, 2);
    let batch = vec![
        (a_inverter, r.clone()),
        (b_inverter, r.clone()),
        (InverterId::new(b_inverter.get() + 100), r.clone()),
    ];
    let outcomes = store.write_readings(&b, &batch, june(12, 1)).await.unwrap();
    assert_eq!(
        outcomes,
        [
            WriteOutcome::NotFound,
            WriteOutcome::Stored,
            WriteOutcome::NotFound
        ]
    );
    let a_rows = format!(
        "SELECT count(*) FROM measurements WHERE inverter_id = {}",
        a_inverter.get()
    );
    assert_eq!(db.count(&a_rows).await, 0);
    assert_eq!(db.count("SELECT count(*) FROM dc_measurements").await, 2);
    assert!(
        store
            .inverter(&a, a_inverter)
            .await
            .unwrap()
            .last_seen_at
            .is_none()
    );
    assert!(store.latest_readings(&a).await.unwrap().is_empty());
}

pub async fn other_tenants_readings_are_not_found(db: TestDb) {
    let store = &db.store;
    let a = db.tenant("a@example.org").await;
    let b = db.tenant("b@example.org").await;
    let inverter = db.inverter(&a, "114172220003").await;
    let readings = minute_series(june(8, 0), 60, 1000.0, |_| 300.0);
    store
        .write_readings(&a, &batch_of(inverter, &readings), june(9, 0))
        .await
        .unwrap();
    let (from, to) = (june(0, 0), june(23, 0));
    let day = from.date_naive();

    assert!(store.latest_readings(&b).await.unwrap().is_empty());
    assert!(matches!(
        store.readings(&b, inverter, from, to, 10).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.power_series(&b, inverter, from, to, 10).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.dc_series(&b, inverter, from, to, 10).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.daily_energy(&b, inverter, day, day).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.raw_frames(&b, inverter, from, to, 10).await,
        Err(StoreError::NotFound)
    ));
    // the owner still sees everything
    assert_eq!(
        store
            .readings(&a, inverter, from, to, 100)
            .await
            .unwrap()
            .len(),
        60
    );
}

/// Brute-force mean/min/max per bucket of the reachable readings with power.
fn expected_buckets(
    readings: &[Reading],
    anchor: DateTime<Utc>,
    width: TimeDelta,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> BTreeMap<DateTime<Utc>, (f64, f64, f64)> {
    let mut sums: BTreeMap<DateTime<Utc>, (f64, usize, f64, f64)> = BTreeMap::new();
    let w = width.num_milliseconds();
    for r in readings
        .iter()
        .filter(|r| r.reachable && r.time >= from && r.time < to)
    {
        let Some(p) = r.power_ac_w else { continue };
        let index = (r.time - anchor).num_milliseconds().div_euclid(w);
        let start = anchor + TimeDelta::milliseconds(index * w);
        let e = sums.entry(start).or_insert((0.0, 0, f64::MAX, f64::MIN));
        *e = (e.0 + p, e.1 + 1, e.2.min(p), e.3.max(p));
    }
    sums.into_iter()
        .map(|(t, (s, n, lo, hi))| (t, (s / n as f64, lo, hi)))
        .collect()
}

fn assert_series_matches(
    readings: &[Reading],
    series: &deyehard_store::PowerSeries,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) {
    let anchor = series.points.first().expect("points").time;
    let expected = expected_buckets(readings, anchor, series.bucket, from, to);
    let got: Vec<_> = series.points.iter().map(|p| p.time).collect();
    assert_eq!(got, expected.keys().copied().collect::<Vec<_>>());
    for p in &series.points {
        let (avg, lo, hi) = expected[&p.time];
        assert!(
            (p.avg_w - avg).abs() < 1e-9 * avg.abs().max(1.0),
            "{p:?} vs {avg}"
        );
        assert_eq!((p.min_w, p.max_w), (lo, hi));
    }
}

pub async fn power_series_is_downsampled_with_gaps(db: TestDb) {
    let store = &db.store;
    let scope = db.tenant("a@example.org").await;
    let inverter = db.inverter(&scope, "114172220003").await;
    // three days of daylight data (05:00-20:59 UTC), nothing at night, an unreachable hour
    let mut all = Vec::new();
    for day in 0..3 {
        let start = june(5, 0) + TimeDelta::days(day);
        let mut readings = minute_series(start, 16 * 60, 1000.0, |m| {
            400.0 * ((m as f64) / 960.0 * std::f64::consts::PI).sin()
        });
        for r in readings.iter_mut().skip(120).take(60) {
            r.reachable = false;
        }
        all.extend(readings);
    }
    for chunk in all.chunks(500) {
        let batch = batch_of(inverter, chunk);
        store
            .write_readings(&scope, &batch, june(23, 0) + TimeDelta::days(3))
            .await
            .unwrap();
    }

    // six hours from raw rows
    let (from, to) = (june(4, 0), june(10, 0));
    let short = store
        .power_series(&scope, inverter, from, to, 100)
        .await
        .unwrap();
    assert!(short.points.len() <= 100 && !short.points.is_empty());
    assert!(
        short.points.iter().all(|p| p.time >= june(4, 59)),
        "no points before the data starts"
    );
    let hole = |p: &&deyehard_store::SeriesPoint| p.time >= june(7, 5) && p.time < june(7, 55);
    assert!(
        short.points.iter().filter(hole).count() == 0,
        "the unreachable hour is a gap"
    );
    assert_series_matches(&all, &short, from, to);

    // three days (rollups) with gaps at night
    let (from, to) = (june(0, 0), june(0, 0) + TimeDelta::days(3));
    for max_points in [1000, 200, 30] {
        let long = store
            .power_series(&scope, inverter, from, to, max_points)
            .await
            .unwrap();
        assert!(
            long.points.len() <= max_points as usize,
            "{} points",
            long.points.len()
        );
        for p in &long.points {
            let end = p.time + long.bucket;
            assert!(
                all.iter()
                    .any(|r| r.reachable && r.time >= p.time && r.time < end),
                "{p:?}"
            );
        }
        let buckets = (to - from).num_milliseconds() / long.bucket.num_milliseconds();
        if long.bucket <= TimeDelta::hours(2) {
            assert!(
                (long.points.len() as i64) < buckets * 3 / 4,
                "nights are gaps"
            );
        }
        assert_series_matches(&all, &long, from, to);
    }

    let too_many = store.power_series(&scope, inverter, to, from, 10).await;
    assert!(matches!(too_many, Err(StoreError::Invalid(_))));
    let dc = store
        .dc_series(&scope, inverter, june(4, 0), june(10, 0), 50)
        .await
        .unwrap();
    assert_eq!(dc.channels.iter().map(|c| c.0).collect::<Vec<_>>(), [1, 2]);
    assert!(
        dc.channels
            .iter()
            .all(|(_, points)| !points.is_empty() && points.len() <= 50)
    );
}

pub async fn concurrent_writers_lose_nothing(db: TestDb) {
    const TASKS: usize = 32;
    const PER_TASK: i64 = 1_000;
    const INVERTERS: usize = 4;
    let a = db.tenant("a@example.org").await;
    let mut inverters = Vec::new();
    for n in 0..INVERTERS {
        inverters.push(db.inverter(&a, &format!("11417222000{n}")).await);
    }
    let start = june(0, 0);
    let reading_at = move |minute: i64| {
        reading(
            start + TimeDelta::minutes(minute),
            250.0,
            0.0,
            minute as f64 * 4.0,
            2,
        )
    };
    // 8 tasks per inverter, each writing its own block of 1,000 minutes in batches of 100: the
    // blocks land in any order, so later blocks often arrive first (late readings, recomputed)
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let store = db.store.clone();
        let inverter = inverters[task % INVERTERS];
        let block = (task / INVERTERS) as i64;
        handles.push(tokio::spawn(async move {
            let readings: Vec<(InverterId, Reading)> = (0..PER_TASK)
                .map(|i| (inverter, reading_at(block * PER_TASK + i)))
                .collect();
            let mut stored = 0;
            for chunk in readings.chunks(100) {
                let outcomes = store.write_readings(&a, chunk, Utc::now()).await.unwrap();
                stored += outcomes
                    .iter()
                    .filter(|o| **o == WriteOutcome::Stored)
                    .count();
            }
            stored
        }));
    }
    let mut stored = 0;
    for handle in handles {
        stored += handle.await.unwrap();
    }
    let total = TASKS as i64 * PER_TASK;
    assert_eq!(stored as i64, total);
    assert_eq!(db.count("SELECT count(*) FROM measurements").await, total);
    assert_eq!(
        db.count("SELECT count(*) FROM dc_measurements").await,
        2 * total
    );
    assert_eq!(
        db.count("SELECT CAST(sum(samples) AS BIGINT) FROM rollup_5m")
            .await,
        total
    );
    assert_eq!(
        db.count("SELECT CAST(sum(samples) AS BIGINT) FROM rollup_1h")
            .await,
        total
    );
    let last_minute = (TASKS / INVERTERS) as i64 * PER_TASK - 1;
    let last = start + TimeDelta::minutes(last_minute);
    let latest = db.store.latest_readings(&a).await.unwrap();
    let times: Vec<_> = latest
        .iter()
        .map(|l| (l.inverter_id, l.reading.time))
        .collect();
    let expected_times: Vec<_> = inverters.iter().map(|i| (*i, last)).collect();
    assert_eq!(times, expected_times);

    // however the batches interleaved, daily energy equals one in-order pass over all samples
    let all: Vec<EnergySample> = (0..=last_minute)
        .map(|m| EnergySample::from(&reading_at(m)))
        .collect();
    let rules = EnergyRules::for_rated_power(Some(800.0));
    let expected = energy::daily_energy(&all, chrono_tz::Europe::Berlin, &rules);
    let want: Vec<_> = expected
        .iter()
        .map(|(day, e)| (*day, e.energy_wh, e.samples as i64))
        .collect();
    let (from, to) = (
        start.date_naive() - TimeDelta::days(1),
        start.date_naive() + TimeDelta::days(30),
    );
    for inverter in inverters {
        let days = db.store.daily_energy(&a, inverter, from, to).await.unwrap();
        let got: Vec<_> = days
            .iter()
            .map(|d| (d.day, d.energy_wh, d.samples))
            .collect();
        assert_eq!(got, want);
    }
}
