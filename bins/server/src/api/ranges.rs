//! Query parameters of the chart and energy views: time ranges (`from`, `to`, `points`) and
//! periods (`period`, `date`), read in the user's time zone, with a 422 naming the field when
//! a value is not acceptable.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use deyehard_core::energy::{self, Period};

use crate::error::ApiError;

/// Default chart range: the last 24 hours.
pub const DEFAULT_SPAN: TimeDelta = TimeDelta::hours(24);
/// Default and largest number of points per series.
pub const DEFAULT_POINTS: u32 = 1000;
/// The most points a series may ask for.
pub const MAX_POINTS: u32 = 5000;
/// The longest range a chart may ask for.
pub const MAX_SPAN: TimeDelta = TimeDelta::days(3 * 366);

/// A resolved time range of a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Start (inclusive).
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub to: DateTime<Utc>,
    /// Most points per series.
    pub points: u32,
}

/// The user's time zone (a stored zone that no longer parses falls back to UTC).
pub fn user_zone(name: &str) -> Tz {
    energy::parse_tz(name).unwrap_or(chrono_tz::UTC)
}

/// Reads `value` of the query field `field`: an RFC 3339 time, or a date `YYYY-MM-DD` (its
/// local start for `from`, the start of the next day for `to`, so that a date range includes
/// its last day).
pub fn parse_instant(
    field: &str,
    value: &str,
    tz: Tz,
    is_end: bool,
) -> Result<DateTime<Utc>, ApiError> {
    let value = value.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let (start, end) = energy::day_bounds(day, tz);
        return Ok(if is_end { end } else { start });
    }
    Err(ApiError::Unprocessable(format!(
        "`{field}` must be a time like 2025-06-15T12:00:00Z or a date like 2025-06-15"
    )))
}

/// Resolves `from`, `to` and `points`: `to` defaults to `now`, `from` to 24 hours before `to`,
/// `points` to [`DEFAULT_POINTS`].
pub fn resolve_range(
    from: Option<&str>,
    to: Option<&str>,
    points: Option<u32>,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Range, ApiError> {
    let to = match to.filter(|v| !v.trim().is_empty()) {
        Some(v) => parse_instant("to", v, tz, true)?,
        None => now,
    };
    let from = match from.filter(|v| !v.trim().is_empty()) {
        Some(v) => parse_instant("from", v, tz, false)?,
        None => to - DEFAULT_SPAN,
    };
    if from >= to {
        return Err(ApiError::Unprocessable(
            "`from` must be before `to`".to_owned(),
        ));
    }
    if to - from > MAX_SPAN {
        return Err(ApiError::Unprocessable(
            "the range from `from` to `to` may span at most three years".to_owned(),
        ));
    }
    let points = points.unwrap_or(DEFAULT_POINTS);
    if !(2..=MAX_POINTS).contains(&points) {
        return Err(ApiError::Unprocessable(format!(
            "`points` must be between 2 and {MAX_POINTS}"
        )));
    }
    Ok(Range { from, to, points })
}

/// Reads `period` (default `day`).
pub fn parse_period(value: Option<&str>) -> Result<Period, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(Period::Day),
        Some(v) => v.parse().map_err(|_| {
            ApiError::Unprocessable("`period` must be day, week, month or year".to_owned())
        }),
    }
}

/// Reads `date` (`YYYY-MM-DD`, default: today in `tz`).
pub fn parse_date(value: Option<&str>, tz: Tz, now: DateTime<Utc>) -> Result<NaiveDate, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(energy::local_day(now, tz)),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .ok()
            .filter(|d| (1970..=9999).contains(&chrono::Datelike::year(d)))
            .ok_or_else(|| {
                ApiError::Unprocessable("`date` must be a date like 2025-06-15".to_owned())
            }),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 15, 12, 0, 0).unwrap()
    }

    fn message(e: ApiError) -> String {
        assert_eq!(e.status(), poem::http::StatusCode::UNPROCESSABLE_ENTITY);
        e.to_string()
    }

    #[test]
    fn defaults_are_the_last_day_in_a_thousand_points() {
        let r = resolve_range(None, None, None, BERLIN, now()).unwrap();
        assert_eq!(
            (r.from, r.to, r.points),
            (now() - TimeDelta::hours(24), now(), 1000)
        );
    }

    #[test]
    fn dates_are_local_days_and_the_end_date_is_included() {
        let r = resolve_range(
            Some("2025-03-30"),
            Some("2025-03-30"),
            Some(10),
            BERLIN,
            now(),
        )
        .unwrap();
        assert_eq!(r.to - r.from, TimeDelta::hours(23), "the spring DST day");
        assert_eq!(r.from, Utc.with_ymd_and_hms(2025, 3, 29, 23, 0, 0).unwrap());
        let t =
            resolve_range(Some("2025-06-15T10:00:00+02:00"), None, None, BERLIN, now()).unwrap();
        assert_eq!(t.from, Utc.with_ymd_and_hms(2025, 6, 15, 8, 0, 0).unwrap());
    }

    #[test]
    fn bad_values_name_their_field() {
        let bad =
            |from, to, points| message(resolve_range(from, to, points, BERLIN, now()).unwrap_err());
        assert!(bad(Some("yesterday"), None, None).contains("`from`"));
        assert!(bad(None, Some("15.06.2025"), None).contains("`to`"));
        assert!(bad(Some("2025-06-16"), Some("2025-06-15"), None).contains("before"));
        assert!(bad(None, None, Some(1)).contains("`points`"));
        assert!(bad(Some("2000-01-01"), None, None).contains("three years"));
        assert!(message(parse_period(Some("decade")).unwrap_err()).contains("`period`"));
        assert!(
            message(parse_date(Some("2025-02-30"), BERLIN, now()).unwrap_err()).contains("`date`")
        );
    }

    #[test]
    fn periods_and_dates_default_to_today() {
        assert_eq!(parse_period(None).unwrap(), Period::Day);
        assert_eq!(parse_period(Some("year")).unwrap(), Period::Year);
        let late = Utc.with_ymd_and_hms(2025, 6, 15, 22, 30, 0).unwrap();
        assert_eq!(
            parse_date(None, BERLIN, late).unwrap(),
            NaiveDate::from_ymd_opt(2025, 6, 16).unwrap(),
            "already tomorrow in Berlin"
        );
    }
}
