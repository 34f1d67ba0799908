//! The dashboard reads: live status and its state rule, the summary over all inverters (the
//! peak of the sum), summary energy on DST days, DC channels and metric series.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use deyehard_core::energy::Period;
use deyehard_core::{InverterId, Reading, TenantScope};
use deyehard_store::{
    DashboardReader, DcMetric, LiveState, ReadingReader, ReadingWriter, StoreError,
};

use crate::harness::{TestDb, minute_series, reading};

const BERLIN: Tz = chrono_tz::Europe::Berlin;

/// Local wall-clock time in Berlin as UTC.
fn berlin(m: u32, d: u32, hh: u32, mm: u32) -> DateTime<Utc> {
    BERLIN
        .with_ymd_and_hms(2025, m, d, hh, mm, 0)
        .earliest()
        .expect("local time")
        .with_timezone(&Utc)
}

fn date(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, m, d).expect("date")
}

async fn write(db: &TestDb, scope: &TenantScope, inverter: InverterId, readings: &[Reading]) {
    for part in readings.chunks(200) {
        let batch: Vec<_> = part.iter().map(|r| (inverter, r.clone())).collect();
        db.store
            .write_readings(scope, &batch, Utc::now())
            .await
            .unwrap();
    }
}

/// A bell of `peak` W between `from` and `to` (local hours), zero outside.
fn bell(peak: f64, from: f64, to: f64) -> impl Fn(f64) -> f64 {
    move |hour: f64| {
        if hour <= from || hour >= to {
            0.0
        } else {
            peak * ((hour - from) / (to - from) * std::f64::consts::PI).sin()
        }
    }
}

/// One reading a minute over a local day from 05:00 to 21:00, power following `power(hour)`.
fn day_of(day: (u32, u32), total: f64, power: impl Fn(f64) -> f64) -> Vec<Reading> {
    let start = berlin(day.0, day.1, 5, 0);
    minute_series(start, 16 * 60, total, |m| power(5.0 + m as f64 / 60.0))
}

pub async fn status_of_a_real_shaped_day(db: TestDb) {
    let scope = db.tenant("ann@example.org").await;
    let inverter = db.inverter(&scope, "114100000001").await;
    // yesterday produced 06:00 – 20:00; today until 12:00
    let yesterday = day_of((6, 14), 1000.0, bell(600.0, 6.0, 20.0));
    let total = yesterday.last().and_then(|r| r.yield_total_wh).unwrap();
    let today: Vec<Reading> = day_of((6, 15), total, bell(600.0, 6.0, 20.0))
        .into_iter()
        .filter(|r| r.time <= berlin(6, 15, 12, 0))
        .collect();
    write(&db, &scope, inverter, &yesterday).await;
    write(&db, &scope, inverter, &today).await;
    let newest = today.last().unwrap();

    let now = berlin(6, 15, 12, 1);
    let status = db
        .store
        .inverter_status(&scope, inverter, now)
        .await
        .unwrap();
    assert_eq!(status.inverter.id, inverter);
    assert_eq!(status.today, date(6, 15));
    assert_eq!(status.interval, TimeDelta::minutes(1));
    assert_eq!(status.latest.as_ref().map(|r| r.time), Some(newest.time));
    assert_eq!(status.last_reachable_at, Some(newest.time));
    assert_eq!(status.state(now), LiveState::Producing);
    assert_eq!(status.live_power_w(now), newest.power_ac_w.unwrap());
    assert_eq!(status.lifetime_wh, newest.yield_total_wh);

    let days = db
        .store
        .daily_energy(&scope, inverter, date(6, 1), date(6, 30))
        .await
        .unwrap();
    let today_row = days.iter().find(|d| d.day == date(6, 15)).unwrap();
    assert_eq!(status.today_wh, today_row.energy_wh);
    assert_eq!(status.today_peak_w, today_row.peak_power_w);
    let recorded: f64 = days.iter().map(|d| d.energy_wh).sum();
    assert!((status.recorded_wh - recorded).abs() < 1e-9);

    // the mean of the readings of the last hour (11:01 … 12:00)
    let hour: Vec<f64> = today
        .iter()
        .filter(|r| r.time >= now - TimeDelta::hours(1))
        .filter_map(|r| r.power_ac_w)
        .collect();
    let mean = hour.iter().sum::<f64>() / hour.len() as f64;
    assert!((status.last_hour_avg_w.unwrap() - mean).abs() < 1e-9);

    // daylight from yesterday's producing buckets (06:00 … 20:00), 30 min margins
    assert!(status.daylight.learnt);
    assert_eq!(status.daylight.start, berlin(6, 15, 6, 30));
    assert_eq!(status.daylight.end, berlin(6, 15, 19, 30));

    // quiet for more than three intervals: offline by day, idle at night
    let later = berlin(6, 15, 12, 5);
    let status = db
        .store
        .inverter_status(&scope, inverter, later)
        .await
        .unwrap();
    assert_eq!(
        status.state(later),
        LiveState::Offline {
            since: Some(newest.time)
        }
    );
    assert_eq!(status.live_power_w(later), 0.0);
    let night = berlin(6, 15, 22, 0);
    let status = db
        .store
        .inverter_status(&scope, inverter, night)
        .await
        .unwrap();
    assert_eq!(status.state(night), LiveState::Idle);

    let all = db.store.inverter_statuses(&scope, now).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].today_wh, today_row.energy_wh);
}

pub async fn statuses_without_data_and_across_tenants(db: TestDb) {
    let ann = db.tenant("ann@example.org").await;
    let bob = db.tenant("bob@example.org").await;
    let quiet = db.inverter(&ann, "114100000002").await;
    let bobs = db.inverter(&bob, "114100000003").await;
    write(
        &db,
        &bob,
        bobs,
        &[reading(berlin(6, 15, 12, 0), 300.0, 1.0, 2.0, 2)],
    )
    .await;

    let now = berlin(6, 15, 12, 1);
    let statuses = db.store.inverter_statuses(&ann, now).await.unwrap();
    assert_eq!(statuses.len(), 1);
    let status = &statuses[0];
    assert_eq!(status.inverter.id, quiet);
    assert_eq!(status.state(now), LiveState::NoData);
    assert_eq!((status.today_wh, status.recorded_wh), (0.0, 0.0));
    assert_eq!(status.last_hour_avg_w, None);
    assert!(
        !status.daylight.learnt,
        "no earlier production day: fallback"
    );
    assert_eq!(status.daylight.start, berlin(6, 15, 8, 0));

    for result in [
        db.store.inverter_status(&ann, bobs, now).await.map(|_| ()),
        db.store.dc_channels(&ann, bobs, now).await.map(|_| ()),
        db.store
            .dc_metric_series(
                &ann,
                bobs,
                DcMetric::Power,
                now - TimeDelta::hours(1),
                now,
                100,
            )
            .await
            .map(|_| ()),
    ] {
        assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    }
    assert!(
        db.store
            .dc_channels(&ann, quiet, now)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn summary_power_is_the_peak_of_the_sum(db: TestDb) {
    let scope = db.tenant("ann@example.org").await;
    let other = db.tenant("bob@example.org").await;
    let east = db.inverter(&scope, "114100000011").await;
    let west = db.inverter(&scope, "114100000012").await;
    let foreign = db.inverter(&other, "114100000013").await;
    // east peaks at 10:00 (600 W), west at 15:00 (500 W): their peaks add up to 1100 W, but
    // the sum never gets there
    let east_day = day_of((6, 15), 0.0, bell(600.0, 5.0, 15.0));
    let west_day = day_of((6, 15), 0.0, bell(500.0, 10.0, 20.0));
    write(&db, &scope, east, &east_day).await;
    write(&db, &scope, west, &west_day).await;
    write(
        &db,
        &other,
        foreign,
        &day_of((6, 15), 0.0, bell(9000.0, 5.0, 20.0)),
    )
    .await;

    let (from, to) = (berlin(6, 15, 0, 0), berlin(6, 16, 0, 0));
    let summary = db
        .store
        .summary_power(&scope, from, to, 2000)
        .await
        .unwrap();
    assert_eq!(summary.bucket, TimeDelta::minutes(5));
    assert_eq!(summary.inverters.len(), 2, "only the tenant's inverters");
    // expected: 5-minute means of each inverter, summed, maximum
    let mean_of = |readings: &[Reading], start: DateTime<Utc>| {
        let values: Vec<f64> = readings
            .iter()
            .filter(|r| r.time >= start && r.time < start + TimeDelta::minutes(5))
            .filter_map(|r| r.power_ac_w)
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let mut expected_peak = 0.0_f64;
    for (i, time) in summary.times.iter().enumerate() {
        let east_mean = mean_of(&east_day, *time);
        let west_mean = mean_of(&west_day, *time);
        for (got, want) in [
            (summary.inverters[0].1[i], east_mean),
            (summary.inverters[1].1[i], west_mean),
        ] {
            let close = match (got, want) {
                (Some(g), Some(w)) => (g - w).abs() < 1e-9,
                (g, w) => g == w,
            };
            assert!(close, "{time}: {got:?} vs {want:?}");
        }
        let sum = east_mean.unwrap_or(0.0) + west_mean.unwrap_or(0.0);
        assert!((summary.total[i] - sum).abs() < 1e-9);
        expected_peak = expected_peak.max(sum);
    }
    assert_eq!(
        summary.times.len(),
        16 * 12,
        "05:00 – 21:00 in 5-minute buckets"
    );
    let (_, peak) = summary.peak.unwrap();
    assert!((peak - expected_peak).abs() < 1e-9);
    let sum_of_peaks = 600.0 + 500.0;
    assert!(
        peak < sum_of_peaks - 100.0,
        "peak {peak} is the peak of the sum"
    );

    // a long range reads hourly buckets, still aligned for both inverters
    let week = db
        .store
        .summary_power(&scope, from - TimeDelta::days(6), to, 200)
        .await
        .unwrap();
    assert!(week.bucket >= TimeDelta::hours(1));
    assert!(week.times.len() <= 200);

    // live: only fresh inverters count (east's 300 W at 21:00 is stale at 21:05)
    let now = berlin(6, 15, 21, 5);
    write(
        &db,
        &scope,
        east,
        &[reading(berlin(6, 15, 21, 0), 300.0, 1.0, 99_999.0, 0)],
    )
    .await;
    write(
        &db,
        &scope,
        west,
        &[reading(berlin(6, 15, 21, 4), 42.0, 1.0, 99_999.0, 0)],
    )
    .await;
    let statuses = db.store.inverter_statuses(&scope, now).await.unwrap();
    let live: f64 = statuses.iter().map(|s| s.live_power_w(now)).sum();
    assert_eq!(live, 42.0, "east's last reading is stale");
}

pub async fn summary_energy_on_dst_days(db: TestDb) {
    let scope = db.tenant("ann@example.org").await;
    for (day, hours) in [(date(3, 30), 23_usize), (date(10, 26), 25)] {
        let a = db.inverter(&scope, &format!("1141000{hours:05}")).await;
        let b = db.inverter(&scope, &format!("1142000{hours:05}")).await;
        let (start, end) = deyehard_core::energy::day_bounds(day, BERLIN);
        let minutes = (end - start).num_minutes();
        let one = minute_series(start - TimeDelta::minutes(1), minutes + 1, 0.0, |_| 120.0);
        let two = minute_series(start - TimeDelta::minutes(1), minutes + 1, 0.0, |m| {
            if m % 120 < 60 { 60.0 } else { 0.0 }
        });
        write(&db, &scope, a, &one).await;
        write(&db, &scope, b, &two).await;

        let summary = db
            .store
            .summary_energy(&scope, Period::Day, day)
            .await
            .unwrap();
        assert_eq!(
            summary.buckets.len(),
            hours,
            "{day}: one bar per local hour"
        );
        let bars_a = db
            .store
            .energy_buckets(&scope, a, Period::Day, day)
            .await
            .unwrap();
        let bars_b = db
            .store
            .energy_buckets(&scope, b, Period::Day, day)
            .await
            .unwrap();
        let of = |id: InverterId| {
            summary
                .inverters
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, bars)| bars.clone())
                .unwrap()
        };
        let (sum_a, sum_b) = (of(a), of(b));
        for (i, bucket) in summary.buckets.iter().enumerate() {
            let (ea, eb) = (bars_a[i].energy_wh, bars_b[i].energy_wh);
            assert_eq!((sum_a[i], sum_b[i]), (ea, eb));
            assert!((bucket.energy_wh - (ea + eb)).abs() < 1e-9);
            assert_eq!(bucket.start, bars_a[i].start);
            assert!((ea - 120.0).abs() < 1e-6, "{day} hour {i}: {ea}");
        }
        let day_total: f64 = bars_a.iter().chain(&bars_b).map(|b| b.energy_wh).sum();
        assert!((summary.total_wh - day_total).abs() < 1e-6);
    }

    // a month: daily bars, and the total is the energy summary's
    let month = db
        .store
        .summary_energy(&scope, Period::Month, date(10, 1))
        .await
        .unwrap();
    assert_eq!(month.buckets.len(), 31);
    assert_eq!(month.inverters.len(), 4);
    let check = db
        .store
        .energy_summary(&scope, Period::Month, date(10, 1))
        .await
        .unwrap();
    assert!((month.total_wh - check.total_wh).abs() < 1e-9);
    assert!(month.total_wh > 25.0 * 120.0);
    let empty = db
        .store
        .summary_energy(
            &scope,
            Period::Year,
            NaiveDate::from_ymd_opt(2024, 2, 1).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(empty.buckets.len(), 12);
    assert_eq!(empty.total_wh, 0.0);
}

pub async fn dc_channels_and_metric_series(db: TestDb) {
    let scope = db.tenant("ann@example.org").await;
    let inverter = db.inverter(&scope, "114100000031").await;
    let hostile = "<script>alert(1)</script>";
    let mut readings = minute_series(berlin(6, 15, 10, 0), 60, 5000.0, |m| 100.0 + m as f64);
    for r in &mut readings {
        r.dc[0].name = Some(hostile.to_owned());
        r.dc[1].voltage_v = Some(20.0); // the weak panel
    }
    // then unreachable readings with stale values
    let mut stale = readings.last().unwrap().clone();
    stale.time = berlin(6, 15, 11, 30);
    stale.reachable = false;
    readings.push(stale);
    write(&db, &scope, inverter, &readings).await;

    let now = berlin(6, 15, 11, 31);
    let newest_reachable = &readings[59];
    let channels = db.store.dc_channels(&scope, inverter, now).await.unwrap();
    assert_eq!(channels.len(), 2);
    assert_eq!(channels[0].name.as_deref(), Some(hostile), "stored as sent");
    assert_eq!(
        channels[0].time, newest_reachable.time,
        "the newest reachable reading"
    );
    assert!(channels[0].reachable);
    assert_eq!(channels[0].power_w, newest_reachable.dc[0].power_w);
    assert_eq!(channels[1].voltage_v, Some(20.0));
    assert_eq!(channels[0].today_wh, newest_reachable.dc[0].yield_day_wh);
    assert_eq!(
        channels[0].lifetime_wh,
        newest_reachable.dc[0].yield_total_wh
    );
    // the next day, yesterday's day counter is not today's energy
    let tomorrow = berlin(6, 16, 9, 0);
    let channels = db
        .store
        .dc_channels(&scope, inverter, tomorrow)
        .await
        .unwrap();
    assert_eq!(channels[0].today_wh, Some(0.0));

    let (from, to) = (berlin(6, 15, 10, 0), berlin(6, 15, 11, 0));
    let volts = db
        .store
        .dc_metric_series(&scope, inverter, DcMetric::Voltage, from, to, 12)
        .await
        .unwrap();
    assert_eq!(volts.metric, DcMetric::Voltage);
    assert_eq!(volts.bucket, TimeDelta::minutes(5));
    assert_eq!(volts.channels.len(), 2);
    assert_eq!(volts.channels[0].name.as_deref(), Some(hostile));
    assert_eq!(volts.channels[0].points.len(), 12);
    assert!(
        volts.channels[0]
            .points
            .iter()
            .all(|p| (p.avg - 32.5).abs() < 1e-9)
    );
    assert!(volts.channels[1].points.iter().all(|p| p.avg == 20.0));
    let energy = db
        .store
        .dc_metric_series(&scope, inverter, DcMetric::DayEnergy, from, to, 12)
        .await
        .unwrap();
    let last = energy.channels[0].points.last().unwrap();
    assert_eq!(Some(last.max), newest_reachable.dc[0].yield_day_wh);
    // the power series agrees with dc_series
    let power = db
        .store
        .dc_metric_series(&scope, inverter, DcMetric::Power, from, to, 12)
        .await
        .unwrap();
    let dc = db
        .store
        .dc_series(&scope, inverter, from, to, 12)
        .await
        .unwrap();
    for ((_, points), channel) in dc.channels.iter().zip(&power.channels) {
        let avgs: Vec<f64> = points.iter().map(|p| p.avg_w).collect();
        let ours: Vec<f64> = channel.points.iter().map(|p| p.avg).collect();
        assert_eq!(avgs, ours);
    }
}
