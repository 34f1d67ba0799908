//! Downsampling plans for chart series: which table to read (raw rows or a write-time rollup)
//! and how wide each bucket is, so that a range never yields more than `max_points` buckets.
//!
//! Buckets are aligned to a base instant: `from` itself for raw rows, `from` rounded down to
//! the rollup step for rollups (each rollup bucket then falls into exactly one output bucket;
//! the first and last output buckets may include up to one step of data outside the range).

use chrono::{DateTime, TimeDelta, Utc};

use crate::StoreError;
use crate::model::SeriesPoint;
use crate::ts::Ts;

/// Width of a `rollup_5m` bucket, ms.
pub(crate) const STEP_5M_MS: i64 = 5 * 60 * 1000;
/// Width of a `rollup_1h` bucket, ms.
pub(crate) const STEP_1H_MS: i64 = 60 * 60 * 1000;

/// Where a series is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `measurements` / `dc_measurements`.
    Raw,
    /// `rollup_5m`.
    Rollup5m,
    /// `rollup_1h`.
    Rollup1h,
}

/// How to read and bucket a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Table to read.
    pub(crate) source: Source,
    /// Start of bucket 0 (and lower bound of the rows read).
    pub(crate) base: Ts,
    /// Exclusive upper bound of the rows read.
    pub(crate) to: Ts,
    /// Bucket width, ms.
    pub(crate) width_ms: i64,
}

impl Plan {
    /// Plans `[from, to)` in at most `max_points` buckets. A rollup is used when the bucket
    /// width needed is at least half its step (the series then keeps at least half the asked
    /// resolution while reading far fewer rows); raw rows otherwise. `allow_rollups = false`
    /// forces raw rows, for series that have no rollup.
    pub(crate) fn new(
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: u32,
        allow_rollups: bool,
    ) -> Result<Self, StoreError> {
        let (from, to) = (Ts::new(from), Ts::new(to));
        if to <= from {
            return Err(StoreError::Invalid("the range is empty".into()));
        }
        if max_points == 0 {
            return Err(StoreError::Invalid("max_points must be at least 1".into()));
        }
        let points = i64::from(max_points);
        if allow_rollups {
            for (source, step) in [
                (Source::Rollup1h, STEP_1H_MS),
                (Source::Rollup5m, STEP_5M_MS),
            ] {
                let base = from.millis().div_euclid(step) * step;
                let needed = ceil_div(to.millis() - base, points);
                if 2 * needed >= step {
                    let width_ms = ceil_div(needed, step) * step;
                    let base = Ts::from_millis(base).unwrap_or(from);
                    return Ok(Self {
                        source,
                        base,
                        to,
                        width_ms,
                    });
                }
            }
        }
        let width_ms = ceil_div(to.millis() - from.millis(), points).max(1);
        Ok(Self {
            source: Source::Raw,
            base: from,
            to,
            width_ms,
        })
    }

    /// The bucket width.
    pub(crate) fn bucket(&self) -> TimeDelta {
        TimeDelta::milliseconds(self.width_ms)
    }

    /// The start of bucket `index`.
    pub(crate) fn bucket_start(&self, index: i64) -> DateTime<Utc> {
        self.base.get() + TimeDelta::milliseconds(index.saturating_mul(self.width_ms))
    }
}

/// One aggregated bucket as the series queries return it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct BucketRow {
    /// Bucket index relative to the plan's base.
    pub(crate) idx: i64,
    /// Readings in the bucket.
    pub(crate) n: i64,
    /// Sum of power, W.
    pub(crate) total: f64,
    /// Lowest power, W.
    pub(crate) lo: f64,
    /// Highest power, W.
    pub(crate) hi: f64,
}

/// A [`BucketRow`] of one DC channel.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ChannelBucketRow {
    /// The channel.
    pub(crate) channel: i16,
    /// The bucket.
    #[sqlx(flatten)]
    pub(crate) bucket: BucketRow,
}

/// Turns bucket rows into series points (empty buckets are simply absent).
pub(crate) fn points(plan: &Plan, rows: Vec<BucketRow>) -> Vec<SeriesPoint> {
    rows.into_iter()
        .filter(|r| r.n > 0)
        .map(|r| SeriesPoint {
            time: plan.bucket_start(r.idx),
            avg_w: r.total / r.n as f64,
            min_w: r.lo,
            max_w: r.hi,
        })
        .collect()
}

/// Groups channel bucket rows (ordered by channel, index) into one series per channel.
pub(crate) fn channel_points(
    plan: &Plan,
    rows: Vec<ChannelBucketRow>,
) -> Result<Vec<(u8, Vec<SeriesPoint>)>, StoreError> {
    let mut channels: Vec<(u8, Vec<BucketRow>)> = Vec::new();
    for row in rows {
        let channel = u8::try_from(row.channel)
            .map_err(|_| StoreError::corrupt(format!("bad DC channel {}", row.channel)))?;
        match channels.last_mut() {
            Some((last, buckets)) if *last == channel => buckets.push(row.bucket),
            _ => channels.push((channel, vec![row.bucket])),
        }
    }
    Ok(channels
        .into_iter()
        .map(|(channel, buckets)| (channel, points(plan, buckets)))
        .collect())
}

fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1).div_euclid(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap_or_default()
    }

    fn bucket_count(plan: &Plan) -> i64 {
        ceil_div(plan.to.millis() - plan.base.millis(), plan.width_ms)
    }

    #[test]
    fn thirty_days_use_hourly_rollups_within_the_point_budget() {
        let from = at(1_700_000_123_456);
        let to = from + TimeDelta::days(30);
        let plan = Plan::new(from, to, 1000, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.source, Source::Rollup1h);
        assert_eq!(plan.width_ms, STEP_1H_MS);
        assert_eq!(plan.base.millis() % STEP_1H_MS, 0);
        assert!(bucket_count(&plan) <= 1000);
    }

    #[test]
    fn short_ranges_read_raw_rows_and_mid_ranges_five_minute_rollups() {
        let from = at(1_700_000_000_000);
        let raw = Plan::new(from, from + TimeDelta::hours(6), 1000, true)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(raw.source, Source::Raw);
        assert!(bucket_count(&raw) <= 1000);
        let mid = Plan::new(from, from + TimeDelta::days(7), 1000, true)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mid.source, Source::Rollup5m);
        assert_eq!(mid.width_ms % STEP_5M_MS, 0);
        assert!(bucket_count(&mid) <= 1000);
        let forced = Plan::new(from, from + TimeDelta::days(7), 1000, false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(forced.source, Source::Raw);
    }

    #[test]
    fn never_more_buckets_than_asked_for() {
        let from = at(1_700_000_000_017);
        for minutes in [
            1_i64, 7, 59, 61, 299, 301, 1_441, 10_000, 100_000, 1_051_200,
        ] {
            for max_points in [1_u32, 2, 3, 10, 97, 1000] {
                let to = from + TimeDelta::minutes(minutes);
                let plan = Plan::new(from, to, max_points, true).unwrap_or_else(|e| panic!("{e}"));
                assert!(
                    bucket_count(&plan) <= i64::from(max_points),
                    "{minutes} min / {max_points}"
                );
            }
        }
    }

    #[test]
    fn empty_ranges_and_zero_points_are_invalid() {
        let from = at(1_700_000_000_000);
        assert!(matches!(
            Plan::new(from, from, 10, true),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            Plan::new(from, from + TimeDelta::hours(1), 0, true),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn empty_buckets_are_absent() {
        let plan = Plan::new(at(0), at(10_000), 10, false).unwrap_or_else(|e| panic!("{e}"));
        let rows = vec![
            BucketRow {
                idx: 0,
                n: 2,
                total: 10.0,
                lo: 4.0,
                hi: 6.0,
            },
            BucketRow {
                idx: 7,
                n: 1,
                total: 3.0,
                lo: 3.0,
                hi: 3.0,
            },
        ];
        let pts = points(&plan, rows);
        assert_eq!(pts.len(), 2);
        assert_eq!(pts[0].avg_w, 5.0);
        assert_eq!(pts[1].time, at(7_000));
    }
}
