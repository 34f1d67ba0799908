//! Energy maintained at write time: real-shaped days, late readings, the views.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use deyehard_core::energy::{self, EnergyRules, EnergySample, Period};
use deyehard_core::{InverterId, Reading, Source, TenantScope};
use deyehard_store::{DailyEnergy, ReadingReader, ReadingWriter, StoreError};

use crate::harness::{Kind, TestDb};

const BERLIN: Tz = chrono_tz::Europe::Berlin;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

/// Local wall-clock time in Berlin as UTC.
fn berlin(y: i32, m: u32, d: u32, hh: u32, mm: u32) -> DateTime<Utc> {
    BERLIN
        .with_ymd_and_hms(y, m, d, hh, mm, 0)
        .earliest()
        .expect("local time")
        .with_timezone(&Utc)
}

fn sample_reading(
    time: DateTime<Utc>,
    power: Option<f64>,
    day: Option<f64>,
    total: Option<f64>,
    reachable: bool,
) -> Reading {
    let mut r = Reading::new(time, Source::Opendtu);
    r.power_ac_w = power;
    r.yield_day_wh = day;
    r.yield_total_wh = total;
    r.reachable = reachable;
    r.producing = reachable && power.is_some_and(|p| p > 0.0);
    r
}

/// A production day in Berlin: unreachable night samples with yesterday's stale values every 15
/// minutes, then from 05:30 one sample a minute with the day counter restarting at 0 and the
/// lifetime counter continuing from `total` (or reset to `reset_to`), until 21:00.
fn production_day(
    day: NaiveDate,
    total: &mut f64,
    reset_to: Option<f64>,
    stale_day: f64,
) -> Vec<Reading> {
    let (y, m, d) = (
        chrono::Datelike::year(&day),
        chrono::Datelike::month(&day),
        chrono::Datelike::day(&day),
    );
    let mut out = Vec::new();
    let mut t = berlin(y, m, d, 0, 5);
    while t < berlin(y, m, d, 5, 30) {
        out.push(sample_reading(
            t,
            Some(0.0),
            Some(stale_day),
            Some(*total),
            false,
        ));
        t += TimeDelta::minutes(15);
    }
    if let Some(low) = reset_to {
        *total = low;
    }
    let mut day_wh = 0.0;
    let mut minute = 0.0_f64;
    let mut t = berlin(y, m, d, 5, 30);
    while t < berlin(y, m, d, 21, 0) {
        let power = 600.0 * (minute / 930.0 * std::f64::consts::PI).sin().max(0.0) + 3.0;
        if minute > 0.0 {
            let wh = power / 60.0;
            day_wh += wh;
            *total += wh;
        }
        out.push(sample_reading(
            t,
            Some(power),
            Some(day_wh),
            Some(*total),
            true,
        ));
        t += TimeDelta::minutes(1);
        minute += 1.0;
    }
    out
}

fn samples(readings: &[Reading]) -> Vec<EnergySample> {
    readings.iter().map(EnergySample::from).collect()
}

fn rules() -> EnergyRules {
    EnergyRules::for_rated_power(Some(800.0))
}

async fn write_in_chunks(
    db: &TestDb,
    scope: &TenantScope,
    inverter: InverterId,
    readings: &[Reading],
    chunk: usize,
) {
    for part in readings.chunks(chunk) {
        let batch: Vec<_> = part.iter().map(|r| (inverter, r.clone())).collect();
        db.store
            .write_readings(scope, &batch, Utc::now())
            .await
            .unwrap();
    }
}

async fn stored_days(db: &TestDb, scope: &TenantScope, inverter: InverterId) -> Vec<DailyEnergy> {
    db.store
        .daily_energy(scope, inverter, date(2000, 1, 1), date(2100, 1, 1))
        .await
        .unwrap()
}

/// The store's days equal core's `daily_energy` over the same samples, to the bit.
fn assert_days_match_core(stored: &[DailyEnergy], readings: &[Reading], tz: Tz) {
    let expected = energy::daily_energy(&samples(readings), tz, &rules());
    let got: Vec<_> = stored
        .iter()
        .map(|d| (d.day, d.energy_wh, d.peak_power_w, d.samples))
        .collect();
    let want: Vec<_> = expected
        .iter()
        .map(|(day, e)| (*day, e.energy_wh, e.peak_power_w, e.samples as i64))
        .collect();
    assert_eq!(got, want);
}

pub async fn energy_of_real_shaped_days(db: TestDb) {
    let scope = db.tenant_in("a@example.org", "Europe/Berlin").await;
    let mut readings = Vec::new();
    let mut total = 1_000_000.0;
    // day 1: a normal day; day 2: the counter resets at dawn (restart) and a 2,113,405 kWh
    // spike shows up at noon; day 3: a normal day after a night of stale, unreachable values
    readings.extend(production_day(date(2025, 6, 14), &mut total, None, 0.0));
    let day1 = readings.last().and_then(|r| r.yield_day_wh).unwrap();
    let mut day2 = production_day(date(2025, 6, 15), &mut total, Some(120.0), day1);
    let noon = day2
        .iter_mut()
        .find(|r| r.time == berlin(2025, 6, 15, 12, 0))
        .unwrap();
    noon.yield_total_wh = Some(2_113_405_000.0);
    let day2_wh = day2.last().and_then(|r| r.yield_day_wh).unwrap();
    readings.extend(day2);
    readings.extend(production_day(date(2025, 6, 16), &mut total, None, day2_wh));
    let day3_wh = readings.last().and_then(|r| r.yield_day_wh).unwrap();

    let inverter = db.inverter(&scope, "114172220003").await;
    write_in_chunks(&db, &scope, inverter, &readings, 97).await;
    let days = stored_days(&db, &scope, inverter).await;
    assert_eq!(days.len(), 3);
    // the device's own day counter is the truth here; the first day has no baseline for its
    // first sample, later days count from the previous evening
    assert!(
        (days[0].energy_wh - day1).abs() < 1e-6,
        "{} vs {day1}",
        days[0].energy_wh
    );
    assert!(
        (days[1].energy_wh - day2_wh).abs() < 1e-6,
        "reset + spike: {} vs {day2_wh}",
        days[1].energy_wh
    );
    assert!(
        (days[2].energy_wh - day3_wh).abs() < 1e-6,
        "{} vs {day3_wh}",
        days[2].energy_wh
    );
    assert!(days[1].energy_wh < 10_000.0, "the spike is not production");
    assert_eq!(days[0].peak_power_w, Some(603.0));
    assert_days_match_core(&days, &readings, BERLIN);

    // midnight: the step from 23:59 to 00:01 belongs to the new day
    let late = vec![
        sample_reading(
            berlin(2025, 6, 16, 23, 59),
            Some(0.0),
            None,
            Some(total),
            true,
        ),
        sample_reading(
            berlin(2025, 6, 17, 0, 1),
            Some(0.0),
            None,
            Some(total + 5.0),
            true,
        ),
    ];
    write_in_chunks(&db, &scope, inverter, &late, 10).await;
    let days = stored_days(&db, &scope, inverter).await;
    assert_eq!(
        days.last().map(|d| (d.day, d.energy_wh)),
        Some((date(2025, 6, 17), 5.0))
    );
    assert!((days[2].energy_wh - day3_wh).abs() < 1e-6);
}

pub async fn dst_days_have_23_and_25_hours(db: TestDb) {
    let scope = db.tenant_in("a@example.org", "Europe/Berlin").await;
    for (day, hours) in [(date(2025, 3, 30), 23_i64), (date(2025, 10, 26), 25)] {
        let inverter = db.inverter(&scope, &format!("1141{hours:08}")).await;
        let (start, end) = energy::day_bounds(day, BERLIN);
        assert_eq!((end - start).num_hours(), hours);
        // constant 100 W, power only, from the minute before the day to its end
        let readings: Vec<Reading> = (-1..(hours * 60))
            .map(|m| sample_reading(start + TimeDelta::minutes(m), Some(100.0), None, None, true))
            .collect();
        write_in_chunks(&db, &scope, inverter, &readings, 500).await;
        let days = stored_days(&db, &scope, inverter).await;
        let this = days.iter().find(|d| d.day == day).unwrap();
        assert!(
            (this.energy_wh - 100.0 * hours as f64).abs() < 1e-6,
            "{day}: {}",
            this.energy_wh
        );

        let bars = db
            .store
            .energy_buckets(&scope, inverter, Period::Day, day)
            .await
            .unwrap();
        assert_eq!(bars.len(), hours as usize, "one bar per local hour");
        assert!(
            bars.iter().all(|b| (b.energy_wh - 100.0).abs() < 1e-6),
            "{bars:?}"
        );
        let sum: f64 = bars.iter().map(|b| b.energy_wh).sum();
        assert!((sum - this.energy_wh).abs() < 1e-6);
    }
}

/// A deterministic shuffle (no RNG needed for a reproducible failure).
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut out: Vec<T> = items.to_vec();
    let mut state = seed;
    for i in (1..out.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = (state >> 33) as usize % (i + 1);
        out.swap(i, j);
    }
    out
}

pub async fn late_readings_give_the_same_energy(db: TestDb) {
    let scope = db.tenant_in("a@example.org", "Europe/Berlin").await;
    let mut readings = Vec::new();
    let mut total = 50_000.0;
    let mut stale = 0.0;
    for d in 20..24 {
        let reset = (d == 22).then_some(10.0);
        let day = production_day(date(2025, 6, d), &mut total, reset, stale);
        stale = day.last().and_then(|r| r.yield_day_wh).unwrap();
        readings.extend(day);
    }
    // every fourth reading of a day arrives late, after the rest of the series; then a whole
    // day is shuffled into small batches
    let in_order = db.inverter(&scope, "114172220003").await;
    write_in_chunks(&db, &scope, in_order, &readings, 1000).await;
    let late = db.inverter(&scope, "114172220004").await;
    let every = |keep: fn(usize) -> bool| -> Vec<Reading> {
        readings
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, r)| r.clone())
            .collect()
    };
    let (early, later) = (every(|i| i % 4 != 0), every(|i| i % 4 == 0));
    write_in_chunks(&db, &scope, late, &early, 700).await;
    write_in_chunks(&db, &scope, late, &shuffled(&later, 7), 37).await;

    let want = stored_days(&db, &scope, in_order).await;
    assert_eq!(want.len(), 4);
    assert_days_match_core(&want, &readings, BERLIN);
    assert_eq!(
        stored_days(&db, &scope, late).await,
        want,
        "late writes, same days"
    );
    for period in [Period::Day, Period::Week, Period::Month] {
        for d in 20..24 {
            let a = db
                .store
                .energy_buckets(&scope, in_order, period, date(2025, 6, d))
                .await
                .unwrap();
            let b = db
                .store
                .energy_buckets(&scope, late, period, date(2025, 6, d))
                .await
                .unwrap();
            assert_eq!(a, b, "{period} view of June {d}");
        }
    }

    // a fully shuffled copy in another zone
    let kathmandu = db.tenant_in("k@example.org", "Asia/Kathmandu").await;
    let k_inverter = db.inverter(&kathmandu, "114172220003").await;
    write_in_chunks(&db, &kathmandu, k_inverter, &shuffled(&readings, 11), 113).await;
    let k_days = stored_days(&db, &kathmandu, k_inverter).await;
    assert_days_match_core(&k_days, &readings, chrono_tz::Asia::Kathmandu);
}

pub async fn energy_views_and_summary(db: TestDb) {
    let scope = db.tenant_in("a@example.org", "Europe/Berlin").await;
    let other = db.tenant("b@example.org").await;
    let first = db.inverter(&scope, "114172220003").await;
    let second = db.inverter(&scope, "114172220004").await;
    let mut total = 0.0;
    let mut readings = Vec::new();
    for d in [29, 30] {
        readings.extend(production_day(date(2025, 6, d), &mut total, None, 0.0));
    }
    readings.extend(production_day(date(2025, 7, 1), &mut total, None, 0.0));
    write_in_chunks(&db, &scope, first, &readings, 2000).await;
    write_in_chunks(&db, &scope, second, &readings[..1000], 2000).await;
    let days = stored_days(&db, &scope, first).await;

    let week = db
        .store
        .energy_buckets(&scope, first, Period::Week, date(2025, 7, 1))
        .await
        .unwrap();
    assert_eq!(week.len(), 7);
    assert_eq!(
        week[0].label.date(),
        date(2025, 6, 30),
        "ISO weeks start on Monday"
    );
    assert_eq!(week[0].energy_wh, days[1].energy_wh);
    assert_eq!(week[1].energy_wh, days[2].energy_wh);
    assert!(week[2..].iter().all(|b| b.energy_wh == 0.0));
    let month = db
        .store
        .energy_buckets(&scope, first, Period::Month, date(2025, 6, 10))
        .await
        .unwrap();
    assert_eq!(month.len(), 30);
    assert_eq!(
        month[28].energy_wh + month[29].energy_wh,
        days[0].energy_wh + days[1].energy_wh
    );
    let year = db
        .store
        .energy_buckets(&scope, first, Period::Year, date(2025, 1, 1))
        .await
        .unwrap();
    assert_eq!(year.len(), 12);
    let all: f64 = days.iter().map(|d| d.energy_wh).sum();
    assert!((year.iter().map(|b| b.energy_wh).sum::<f64>() - all).abs() < 1e-6);
    assert!((year[5].energy_wh - days[0].energy_wh - days[1].energy_wh).abs() < 1e-6);

    let summary = db
        .store
        .energy_summary(&scope, Period::Month, date(2025, 6, 1))
        .await
        .unwrap();
    let second_june: f64 = stored_days(&db, &scope, second)
        .await
        .iter()
        .map(|d| d.energy_wh)
        .sum();
    assert_eq!(
        summary.per_inverter.iter().map(|p| p.0).collect::<Vec<_>>(),
        [first, second]
    );
    assert!((summary.per_inverter[0].1 - days[0].energy_wh - days[1].energy_wh).abs() < 1e-6);
    assert!((summary.per_inverter[1].1 - second_june).abs() < 1e-6);
    assert!(
        (summary.total_wh - summary.per_inverter[0].1 - summary.per_inverter[1].1).abs() < 1e-9
    );

    // another tenant sees none of it
    let foreign = db
        .store
        .energy_buckets(&other, first, Period::Day, date(2025, 6, 29))
        .await;
    assert!(matches!(foreign, Err(StoreError::NotFound)));
    let theirs = db
        .store
        .energy_summary(&other, Period::Year, date(2025, 1, 1))
        .await
        .unwrap();
    assert!(theirs.per_inverter.is_empty() && theirs.total_wh == 0.0);
}

pub async fn a_late_reading_recomputes_only_nearby_days(db: TestDb) {
    let scope = db.tenant_in("a@example.org", "Europe/Berlin").await;
    let inverter = db.inverter(&scope, "114172220003").await;
    let (mut total, mut stale) = (0.0, 0.0);
    let mut readings = Vec::new();
    for d in 1..=8 {
        let day = production_day(date(2025, 7, d), &mut total, None, stale);
        stale = day.last().and_then(|r| r.yield_day_wh).unwrap();
        readings.extend(day);
    }
    let noon = readings
        .iter()
        .position(|r| r.time == berlin(2025, 7, 3, 12, 0))
        .unwrap();
    let late = readings.remove(noon);
    write_in_chunks(&db, &scope, inverter, &readings, 1000).await;
    // a fingerprint of when the days from July 5 on were last written
    let later_days = match db.kind {
        Kind::Sqlite => "SELECT sum(updated_at) FROM daily_energy WHERE day >= '2025-07-05'",
        Kind::Postgres => {
            "SELECT CAST(sum(extract(epoch FROM updated_at) * 1000) AS BIGINT) \
             FROM daily_energy WHERE day >= '2025-07-05'"
        }
    };
    let before = db.count(later_days).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await; // a later updated_at if rewritten

    write_in_chunks(&db, &scope, inverter, std::slice::from_ref(&late), 1).await;
    assert_eq!(
        db.count(later_days).await,
        before,
        "days after the late one were not rewritten"
    );
    readings.insert(noon, late);
    assert_days_match_core(&stored_days(&db, &scope, inverter).await, &readings, BERLIN);
}

/// Batches that mix several inverters (in-order ones together with one that has late readings)
/// give every inverter the same days and bars as writing its readings alone.
pub async fn batches_of_many_inverters_keep_each_inverters_energy(db: TestDb) {
    let scope = db.tenant_in("a@example.org", "Europe/Berlin").await;
    // three different series: plain days, a counter reset on the second day, the second day
    // alone
    let series: Vec<Vec<Reading>> = {
        let (mut total, mut stale) = (10_000.0, 0.0);
        let mut plain = Vec::new();
        for d in 14..=15 {
            let day = production_day(date(2025, 6, d), &mut total, None, stale);
            stale = day.last().and_then(|r| r.yield_day_wh).unwrap();
            plain.extend(day);
        }
        let (mut total, mut stale) = (70_000.0, 0.0);
        let mut reset = Vec::new();
        for d in 14..=15 {
            let reset_to = (d == 15).then_some(5.0);
            let mut day = production_day(date(2025, 6, d), &mut total, reset_to, stale);
            for r in &mut day {
                r.power_ac_w = r.power_ac_w.map(|p| p * 0.5);
            }
            stale = day.last().and_then(|r| r.yield_day_wh).unwrap();
            reset.extend(day);
        }
        let mut total = 500.0;
        let single = production_day(date(2025, 6, 15), &mut total, None, 0.0);
        vec![plain, reset, single]
    };
    let mut alone = Vec::new();
    let mut mixed = Vec::new();
    for (n, readings) in series.iter().enumerate() {
        let reference = db.inverter(&scope, &format!("11417222{n:04}")).await;
        write_in_chunks(&db, &scope, reference, readings, 1000).await;
        alone.push(reference);
        mixed.push(db.inverter(&scope, &format!("11417223{n:04}")).await);
    }
    // every 7th reading of the second series is held back and arrives late, in batches that
    // also carry in-order readings of the others
    let held_back: Vec<Reading> = series[1].iter().step_by(7).cloned().collect();
    let on_time: Vec<Vec<Reading>> = series
        .iter()
        .enumerate()
        .map(|(n, readings)| {
            readings
                .iter()
                .enumerate()
                .filter(|(i, _)| n != 1 || i % 7 != 0)
                .map(|(_, r)| r.clone())
                .collect()
        })
        .collect();
    let chunk = 40;
    let rounds = on_time
        .iter()
        .map(|r| r.len().div_ceil(chunk))
        .max()
        .unwrap();
    for round in 0..rounds {
        let mut batch = Vec::new();
        for (n, readings) in on_time.iter().enumerate() {
            let part = readings.iter().skip(round * chunk).take(chunk);
            batch.extend(part.map(|r| (mixed[n], r.clone())));
        }
        if round >= rounds / 2 {
            let late = held_back.iter().skip((round - rounds / 2) * 9).take(9);
            batch.extend(late.map(|r| (mixed[1], r.clone())));
        }
        db.store
            .write_readings(&scope, &batch, Utc::now())
            .await
            .unwrap();
    }
    let rest: Vec<_> = held_back
        .iter()
        .skip((rounds - rounds / 2) * 9)
        .map(|r| (mixed[1], r.clone()))
        .collect();
    db.store
        .write_readings(&scope, &rest, Utc::now())
        .await
        .unwrap();

    for n in 0..series.len() {
        let want = stored_days(&db, &scope, alone[n]).await;
        assert!(!want.is_empty());
        assert_eq!(
            stored_days(&db, &scope, mixed[n]).await,
            want,
            "series {n}: days"
        );
        assert_days_match_core(&want, &series[n], BERLIN);
        for d in 14..=15 {
            let bars = |inverter| {
                db.store
                    .energy_buckets(&scope, inverter, Period::Day, date(2025, 6, d))
            };
            assert_eq!(
                bars(mixed[n]).await.unwrap(),
                bars(alone[n]).await.unwrap(),
                "series {n}: bars of June {d}"
            );
        }
    }
}
