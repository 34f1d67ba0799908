//! The local calendar: days, ISO weeks, months and years of a time zone as UTC ranges, their
//! buckets for charts, and navigation between periods. DST-safe: days have 23, 24 or 25 hours,
//! and a local midnight that does not exist resolves to the first instant that does.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Timelike,
    Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{EnergyError, shown};

/// Offsets stay far inside this window around a local time (the largest ever is about ±15 h).
const OFFSET_WINDOW_SECONDS: i64 = 48 * 3600;
const SECONDS_PER_HOUR: i64 = 3600;

/// The local day of an instant in `tz`.
pub fn local_day(time: DateTime<Utc>, tz: Tz) -> NaiveDate {
    local_time(time, tz).date()
}

/// The local wall-clock time of an instant, saturating at chrono's limits (where chrono's own
/// conversion would panic).
fn local_time(time: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    checked_local_time(time, tz).unwrap_or(if time.year() > 0 {
        NaiveDateTime::MAX
    } else {
        NaiveDateTime::MIN
    })
}

/// The local wall-clock time of an instant; `None` past chrono's limits.
fn checked_local_time(time: DateTime<Utc>, tz: Tz) -> Option<NaiveDateTime> {
    let offset = tz.offset_from_utc_datetime(&time.naive_utc()).fix();
    time.naive_utc().checked_add_offset(offset)
}

/// The UTC range `[start, end)` of a local day: 23 or 25 hours long on DST days.
pub fn day_bounds(day: NaiveDate, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    (start_of_day(day, tz), end_of_day(day, tz))
}

/// The first instant of a local day.
fn start_of_day(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    first_instant_at_or_after(day.and_time(NaiveTime::MIN), tz)
}

/// The first instant after a local day (the start of the next one).
fn end_of_day(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    day.succ_opt()
        .map_or(DateTime::<Utc>::MAX_UTC, |next| start_of_day(next, tz))
}

/// The first instant whose local time in `tz` is `local` or later: the earlier one when the
/// local time occurs twice, the end of the gap when it does not exist.
fn first_instant_at_or_after(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    if let Some(instant) = tz.from_local_datetime(&local).earliest() {
        return instant.with_timezone(&Utc);
    }
    gap_end(local, tz).unwrap_or(if local.year() > 0 {
        DateTime::<Utc>::MAX_UTC
    } else {
        DateTime::<Utc>::MIN_UTC
    })
}

/// Binary search, to the second, for the first instant whose local time is at least `local`
/// (which lies in a DST gap). `None` when the search window leaves chrono's range.
fn gap_end(local: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    let naive_seconds = local.and_utc().timestamp();
    // read as UTC, `local` ± the window is an instant whose local time is surely before / after it
    let mut before = naive_seconds.checked_sub(OFFSET_WINDOW_SECONDS)?;
    let mut at_or_after = naive_seconds.checked_add(OFFSET_WINDOW_SECONDS)?;
    DateTime::from_timestamp(before, 0)?;
    DateTime::from_timestamp(at_or_after, 0)?;
    while at_or_after - before > 1 {
        let middle = before + (at_or_after - before) / 2;
        let instant = DateTime::from_timestamp(middle, 0)?;
        if local_time(instant, tz) >= local {
            at_or_after = middle;
        } else {
            before = middle;
        }
    }
    DateTime::from_timestamp(at_or_after, 0)
}

/// A span of time a chart or a summary groups energy by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// A local day, in hourly buckets.
    Day,
    /// An ISO week (Monday to Sunday), in daily buckets.
    Week,
    /// A calendar month, in daily buckets.
    Month,
    /// A calendar year, in monthly buckets.
    Year,
}

impl Period {
    /// The name used in URLs and the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Period {
    type Err = EnergyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            "year" => Ok(Self::Year),
            _ => Err(EnergyError::UnknownPeriod(shown(text))),
        }
    }
}

/// One bar of a period view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// First instant, UTC.
    pub start: DateTime<Utc>,
    /// First instant after the bucket, UTC.
    pub end: DateTime<Utc>,
    /// The local label: the wall-clock time at `start` for an hour (02:00 twice on a 25-hour
    /// day), the first local day at 00:00 for a day or a month.
    pub label: NaiveDateTime,
}

/// The local dates `[first, end)` of the period containing `date`; `end` is `None` past the
/// last date chrono knows.
fn period_dates(period: Period, date: NaiveDate) -> (NaiveDate, Option<NaiveDate>) {
    match period {
        Period::Day => (date, date.succ_opt()),
        Period::Week => {
            let back = i64::from(date.weekday().num_days_from_monday());
            let monday = shift_days(date, -back);
            (monday, monday.checked_add_signed(TimeDelta::days(7)))
        }
        Period::Month => (date.with_day(1).unwrap_or(date), first_of_next_month(date)),
        Period::Year => (
            NaiveDate::from_ymd_opt(date.year(), 1, 1).unwrap_or(date),
            date.year()
                .checked_add(1)
                .and_then(|next| NaiveDate::from_ymd_opt(next, 1, 1)),
        ),
    }
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    if date.month() == 12 {
        NaiveDate::from_ymd_opt(date.year().checked_add(1)?, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
    }
}

/// The date ranges `[first, end)` a period is summed in: the whole day for `Day`, each day for
/// `Week` and `Month`, each month for `Year`.
pub(super) fn date_ranges(period: Period, date: NaiveDate) -> Vec<(NaiveDate, Option<NaiveDate>)> {
    let (first, end) = period_dates(period, date);
    match period {
        Period::Day => vec![(first, end)],
        Period::Week | Period::Month => first
            .iter_days()
            .take_while(|day| end.is_none_or(|end| *day < end))
            .map(|day| (day, day.succ_opt()))
            .collect(),
        Period::Year => (1..=12)
            .filter_map(|month| NaiveDate::from_ymd_opt(first.year(), month, 1))
            .map(|month| (month, first_of_next_month(month)))
            .collect(),
    }
}

/// The bucket of the local dates `[first, end)`.
pub(super) fn date_bucket(first: NaiveDate, end: Option<NaiveDate>, tz: Tz) -> Bucket {
    Bucket {
        start: start_of_day(first, tz),
        end: end.map_or(DateTime::<Utc>::MAX_UTC, |end| start_of_day(end, tz)),
        label: first.and_time(NaiveTime::MIN),
    }
}

/// `[start, end)` of the period containing `date` (weeks start Monday, ISO).
pub fn period_bounds(period: Period, date: NaiveDate, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let (first, end) = period_dates(period, date);
    let bucket = date_bucket(first, end, tz);
    (bucket.start, bucket.end)
}

/// The buckets of a period view: `Day` → one per local hour (23/24/25 on DST days), `Week` → 7
/// days, `Month` → each day, `Year` → 12 months.
pub fn period_buckets(period: Period, date: NaiveDate, tz: Tz) -> Vec<Bucket> {
    match period {
        Period::Day => hour_buckets(date, tz),
        Period::Week | Period::Month | Period::Year => date_ranges(period, date)
            .into_iter()
            .map(|(first, end)| date_bucket(first, end, tz))
            .collect(),
    }
}

/// The local hours of a day: each bucket ends at the next local full hour, so a repeated hour
/// gives two buckets and a skipped one none.
fn hour_buckets(day: NaiveDate, tz: Tz) -> Vec<Bucket> {
    let (mut start, day_end) = day_bounds(day, tz);
    let mut buckets = Vec::with_capacity(25);
    while start < day_end {
        let (label, end) = match checked_local_time(start, tz) {
            Some(label) => {
                let into_hour = i64::from(label.minute() * 60 + label.second());
                let end = start
                    .checked_add_signed(TimeDelta::seconds(SECONDS_PER_HOUR - into_hour))
                    .map_or(day_end, |end| end.min(day_end));
                (label, end)
            }
            // past the last local time chrono knows: one bucket for the rest
            None => (NaiveDateTime::MAX, day_end),
        };
        buckets.push(Bucket { start, end, label });
        start = end;
    }
    buckets
}

/// The date `by` periods before (negative) or after `date`, for previous / next navigation.
/// Months and years keep the day of the month where it exists (31 January + 1 month is the
/// last day of February). Saturates at the first / last date chrono knows.
pub fn shift_period(period: Period, date: NaiveDate, by: i32) -> NaiveDate {
    let by = i64::from(by);
    match period {
        Period::Day => shift_days(date, by),
        Period::Week => shift_days(date, by * 7),
        Period::Month => shift_months(date, by),
        Period::Year => shift_months(date, by * 12),
    }
}

fn saturated(forward: bool) -> NaiveDate {
    if forward {
        NaiveDate::MAX
    } else {
        NaiveDate::MIN
    }
}

fn shift_days(date: NaiveDate, days: i64) -> NaiveDate {
    TimeDelta::try_days(days)
        .and_then(|delta| date.checked_add_signed(delta))
        .unwrap_or_else(|| saturated(days > 0))
}

fn shift_months(date: NaiveDate, months: i64) -> NaiveDate {
    let index = i64::from(date.year()) * 12 + i64::from(date.month0()) + months;
    let shifted = i32::try_from(index.div_euclid(12)).ok().and_then(|year| {
        let month = u32::try_from(index.rem_euclid(12)).ok()? + 1;
        let day = date.day();
        // the same day, or the month's last day when it is shorter
        (day.min(28)..=day)
            .rev()
            .find_map(|day| NaiveDate::from_ymd_opt(year, month, day))
    });
    shifted.unwrap_or_else(|| saturated(months > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Asia, Australia, Europe, Pacific};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn hours_between(bounds: (DateTime<Utc>, DateTime<Utc>)) -> i64 {
        (bounds.1 - bounds.0).num_hours()
    }

    #[test]
    fn local_day_follows_the_zone() {
        let t = utc("2025-06-15T22:30:00Z");
        assert_eq!(local_day(t, Europe::Berlin), d(2025, 6, 16));
        assert_eq!(local_day(t, America::New_York), d(2025, 6, 15));
        assert_eq!(
            local_day(utc("2025-06-15T14:29:00Z"), Australia::Adelaide),
            d(2025, 6, 15)
        );
        assert_eq!(
            local_day(utc("2025-06-15T14:30:00Z"), Australia::Adelaide),
            d(2025, 6, 16)
        );
    }

    #[test]
    fn berlin_dst_days_have_23_and_25_hours() {
        let spring = day_bounds(d(2025, 3, 30), Europe::Berlin);
        assert_eq!(
            spring,
            (utc("2025-03-29T23:00:00Z"), utc("2025-03-30T22:00:00Z"))
        );
        assert_eq!(hours_between(spring), 23);
        let autumn = day_bounds(d(2025, 10, 26), Europe::Berlin);
        assert_eq!(
            autumn,
            (utc("2025-10-25T22:00:00Z"), utc("2025-10-26T23:00:00Z"))
        );
        assert_eq!(hours_between(autumn), 25);
        assert_eq!(
            hours_between(day_bounds(d(2025, 6, 15), Europe::Berlin)),
            24
        );
    }

    #[test]
    fn midnight_in_a_dst_gap_starts_the_day_at_the_first_existing_instant() {
        // Santiago: 2025-09-07 00:00 does not exist, clocks jump to 01:00 (-03)
        let (start, end) = day_bounds(d(2025, 9, 7), America::Santiago);
        assert_eq!(start, utc("2025-09-07T04:00:00Z"));
        assert_eq!(local_time(start, America::Santiago).hour(), 1);
        assert_eq!(end, utc("2025-09-08T03:00:00Z"));
        assert_eq!(hours_between((start, end)), 23);
        // the day before ends where this one starts
        assert_eq!(day_bounds(d(2025, 9, 6), America::Santiago).1, start);
        // Santiago falls back at midnight: 2025-04-05 has 25 hours, 23:00 occurs twice
        assert_eq!(
            hours_between(day_bounds(d(2025, 4, 5), America::Santiago)),
            25
        );
        // Beirut springs forward at midnight as well
        let beirut = day_bounds(d(2025, 3, 30), Asia::Beirut);
        assert_eq!(beirut.0, utc("2025-03-29T22:00:00Z"));
        assert_eq!(hours_between(beirut), 23);
    }

    #[test]
    fn a_skipped_calendar_day_is_empty() {
        // Samoa skipped 30 December 2011 when it crossed the date line
        let (start, end) = day_bounds(d(2011, 12, 30), Pacific::Apia);
        assert_eq!(start, end);
        assert!(period_buckets(Period::Day, d(2011, 12, 30), Pacific::Apia).is_empty());
        let week = period_buckets(Period::Week, d(2011, 12, 30), Pacific::Apia);
        let hours: i64 = week.iter().map(|b| (b.end - b.start).num_hours()).sum();
        assert_eq!(hours, 6 * 24);
    }

    #[test]
    fn day_buckets_are_local_hours() {
        let normal = period_buckets(Period::Day, d(2025, 6, 15), Europe::Berlin);
        assert_eq!(normal.len(), 24);
        let spring = period_buckets(Period::Day, d(2025, 3, 30), Europe::Berlin);
        assert_eq!(spring.len(), 23);
        let spring_hours: Vec<u32> = spring.iter().map(|b| b.label.hour()).collect();
        assert_eq!(spring_hours[..4], [0, 1, 3, 4]);
        let autumn = period_buckets(Period::Day, d(2025, 10, 26), Europe::Berlin);
        assert_eq!(autumn.len(), 25);
        let autumn_hours: Vec<u32> = autumn.iter().map(|b| b.label.hour()).collect();
        assert_eq!(autumn_hours[..5], [0, 1, 2, 2, 3]);
        for buckets in [&normal, &spring, &autumn] {
            for pair in buckets.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
            assert!(
                buckets
                    .iter()
                    .all(|b| b.end - b.start == TimeDelta::hours(1))
            );
        }
        assert_eq!(
            autumn[0].start,
            day_bounds(d(2025, 10, 26), Europe::Berlin).0
        );
        assert_eq!(
            autumn[24].end,
            day_bounds(d(2025, 10, 26), Europe::Berlin).1
        );
    }

    #[test]
    fn half_hour_dst_shift_gives_a_half_hour_bucket() {
        // Lord Howe Island moves its clocks by 30 minutes: 2025-10-05 02:00 → 02:30
        let buckets = period_buckets(Period::Day, d(2025, 10, 5), Australia::Lord_Howe);
        let total: TimeDelta = buckets.iter().map(|b| b.end - b.start).sum();
        assert_eq!(total, TimeDelta::minutes(23 * 60 + 30));
        assert_eq!(buckets.len(), 24);
        let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert_eq!(buckets[2].label.time(), at(2, 30));
        assert_eq!(buckets[2].end - buckets[2].start, TimeDelta::minutes(30));
        assert_eq!(buckets[3].label.time(), at(3, 0));
        assert!(
            buckets
                .iter()
                .all(|b| b.label.minute() == 0 || b.label.time() == at(2, 30))
        );
    }

    #[test]
    fn iso_weeks_start_on_monday_across_a_year_boundary() {
        // 2025-01-01 is a Wednesday: its week runs Monday 2024-12-30 .. Sunday 2025-01-05
        let week = period_buckets(Period::Week, d(2025, 1, 1), Europe::Berlin);
        let labels: Vec<NaiveDate> = week.iter().map(|b| b.label.date()).collect();
        assert_eq!(
            labels,
            d(2024, 12, 30).iter_days().take(7).collect::<Vec<_>>()
        );
        assert_eq!(
            period_bounds(Period::Week, d(2025, 1, 1), Europe::Berlin),
            (utc("2024-12-29T23:00:00Z"), utc("2025-01-05T23:00:00Z"))
        );
        // a Sunday belongs to the week before it, a Monday starts its own
        assert_eq!(
            period_bounds(Period::Week, d(2025, 1, 5), Europe::Berlin),
            period_bounds(Period::Week, d(2024, 12, 30), Europe::Berlin)
        );
        assert_eq!(
            period_bounds(Period::Week, d(2025, 1, 6), Europe::Berlin).0,
            utc("2025-01-05T23:00:00Z")
        );
        // the week of the spring change is one hour short
        assert_eq!(
            hours_between(period_bounds(Period::Week, d(2025, 3, 30), Europe::Berlin)),
            167
        );
    }

    #[test]
    fn months_have_their_days_and_leap_februaries() {
        assert_eq!(
            period_buckets(Period::Month, d(2024, 2, 10), Europe::Berlin).len(),
            29
        );
        assert_eq!(
            period_buckets(Period::Month, d(2025, 2, 10), Europe::Berlin).len(),
            28
        );
        assert_eq!(
            period_buckets(Period::Month, d(2025, 12, 31), Europe::Berlin).len(),
            31
        );
        assert_eq!(
            period_bounds(Period::Month, d(2024, 2, 29), Europe::Berlin),
            (utc("2024-01-31T23:00:00Z"), utc("2024-02-29T23:00:00Z"))
        );
        assert_eq!(
            period_bounds(Period::Month, d(2025, 12, 5), America::New_York),
            (utc("2025-12-01T05:00:00Z"), utc("2026-01-01T05:00:00Z"))
        );
    }

    #[test]
    fn years_have_twelve_months() {
        let year = period_buckets(Period::Year, d(2024, 7, 1), Europe::Berlin);
        assert_eq!(year.len(), 12);
        assert_eq!(year[0].start, utc("2023-12-31T23:00:00Z"));
        assert_eq!(year[2].end, utc("2024-03-31T22:00:00Z"));
        assert_eq!(year[11].end, utc("2024-12-31T23:00:00Z"));
        assert_eq!(hours_between((year[1].start, year[1].end)), 29 * 24);
        assert_eq!(
            period_bounds(Period::Year, d(2024, 7, 1), Europe::Berlin),
            (year[0].start, year[11].end)
        );
        for pair in year.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
    }

    #[test]
    fn periods_parse_and_print() {
        for period in [Period::Day, Period::Week, Period::Month, Period::Year] {
            assert_eq!(period.to_string().parse::<Period>(), Ok(period));
        }
        let err = "fortnight".parse::<Period>().unwrap_err();
        assert_eq!(err, EnergyError::UnknownPeriod("fortnight".into()));
        assert!(err.to_string().contains("day, week, month or year"));
        assert!("Day".parse::<Period>().is_err());
    }

    #[test]
    fn navigation_moves_by_whole_periods() {
        assert_eq!(shift_period(Period::Day, d(2024, 12, 31), 1), d(2025, 1, 1));
        assert_eq!(
            shift_period(Period::Week, d(2025, 1, 1), -1),
            d(2024, 12, 25)
        );
        assert_eq!(
            shift_period(Period::Month, d(2025, 1, 31), 1),
            d(2025, 2, 28)
        );
        assert_eq!(
            shift_period(Period::Month, d(2024, 1, 31), 1),
            d(2024, 2, 29)
        );
        assert_eq!(
            shift_period(Period::Month, d(2025, 1, 15), -1),
            d(2024, 12, 15)
        );
        assert_eq!(
            shift_period(Period::Month, d(2025, 3, 30), -13),
            d(2024, 2, 29)
        );
        assert_eq!(
            shift_period(Period::Year, d(2024, 2, 29), 1),
            d(2025, 2, 28)
        );
        assert_eq!(
            shift_period(Period::Year, d(2024, 2, 29), 4),
            d(2028, 2, 29)
        );
        assert_eq!(shift_period(Period::Year, d(2025, 6, 1), 0), d(2025, 6, 1));
    }

    #[test]
    fn extreme_dates_saturate_instead_of_panicking() {
        for period in [Period::Day, Period::Week, Period::Month, Period::Year] {
            assert_eq!(
                shift_period(period, d(2025, 1, 1), i32::MAX),
                NaiveDate::MAX
            );
            assert_eq!(
                shift_period(period, d(2025, 1, 1), i32::MIN),
                NaiveDate::MIN
            );
            for date in [NaiveDate::MIN, NaiveDate::MAX] {
                for tz in [Europe::Berlin, America::Los_Angeles, Pacific::Kiritimati] {
                    let (start, end) = period_bounds(period, date, tz);
                    assert!(start <= end);
                    let buckets = period_buckets(period, date, tz);
                    assert!(
                        buckets.len() <= 366,
                        "{period} {date} {tz} {}",
                        buckets.len()
                    );
                    let _ = day_bounds(date, tz);
                    assert!(local_day(DateTime::<Utc>::MAX_UTC, tz) >= d(262_142, 12, 31));
                    assert!(local_day(DateTime::<Utc>::MIN_UTC, tz) <= d(-262_143, 1, 1));
                }
            }
        }
    }
}
