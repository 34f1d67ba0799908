//! `/api/inverters/{id}/readings` (JSON, paged) and `/api/inverters/{id}/export.csv` (CSV,
//! streamed): an inverter's readings with the fields of the `export` command.
//!
//! `from` and `to` are RFC 3339 times (`2025-10-19T00:00:00Z`, `2025-10-19T00:00:00+02:00`;
//! a `+` that arrived as a space, as an unencoded query turns it, is read as `+`). Defaults:
//! `to` = now + 10 minutes (device clocks run ahead), `from` = `to` − 24 hours.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use deyehard_core::energy::local_day;
use deyehard_core::{InverterId, TenantScope};
use deyehard_store::{Inverter, InverterStore, ReadingReader};
use poem::Body;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{Enum, Object, OpenApi};

use super::reply::reply;
use crate::error::ApiError;
use crate::export::{CsvStyle, Export, Format, ReadingRow, label, rfc3339};
use crate::http::AppState;
use crate::session::{Authenticated, SessionAuth};

/// The reading endpoints.
pub struct ReadingsApi;

/// Readings per page when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 1000;
/// Most readings per page.
pub const MAX_LIMIT: u32 = 10_000;

/// A page of readings.
#[derive(Debug, Object)]
pub struct ReadingsPage {
    /// Readings in time order, fields named as in the `export` command.
    pub readings: Vec<ReadingRow>,
    /// When the page is full: the `from` of the next page (RFC 3339); absent on the last page.
    pub next_from: Option<String>,
}

/// What a CSV export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Default)]
#[oai(rename_all = "lowercase")]
pub enum ExportKind {
    /// One line per reading: AC values and DC channel groups.
    #[default]
    Readings,
    /// One line per local day: energy, peak power, number of readings.
    Daily,
}

reply! {
    /// The answer to a CSV export.
    pub enum CsvReply {
        /// The CSV file (UTF-8 with a byte order mark, RFC 4180), streamed.
        #[oai(status = 200, content_type = "text/csv; charset=utf-8")]
        Csv(Binary<Body>, #[oai(header = "Content-Disposition")] String),
    }
}

reply! {
    /// The answer to a readings query.
    pub enum PageReply {
        /// A page of readings.
        #[oai(status = 200)]
        Ok(Json<ReadingsPage>),
    }
}

#[OpenApi(prefix_path = "/inverters", tag = "super::ApiTags::Readings")]
impl ReadingsApi {
    /// Readings of an inverter in `[from, to)`, oldest first, at most `limit` (default 1000,
    /// at most 10,000) per page; follow `next_from` for the next page.
    #[oai(path = "/:id/readings", method = "get")]
    async fn readings(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        id: Path<i64>,
        /// Start, inclusive (RFC 3339); default `to` − 24 hours.
        from: Query<Option<String>>,
        /// End, exclusive (RFC 3339); default now + 10 minutes.
        to: Query<Option<String>>,
        /// Readings per page (1 – 10,000, default 1000).
        limit: Query<Option<u32>>,
    ) -> PageReply {
        let scope = auth.into_inner().scope;
        let page = async {
            let range = time_range(from.0.as_deref(), to.0.as_deref(), Utc::now())?;
            let limit = page_limit(limit.0)?;
            readings_page(&state, &scope, InverterId::new(id.0), range, limit).await
        };
        page.await
            .map_or_else(Into::into, |p| PageReply::Ok(Json(p)))
    }

    /// The readings (or, with `kind=daily`, the daily energy) of an inverter in `[from, to)`
    /// as CSV, streamed: UTF-8 with a byte order mark for spreadsheet programs; `time` in UTC
    /// and `time_local` in your account's time zone (named in the file name); the AC values;
    /// one column group `dc<N>_…` per DC channel. Daily rows are the local days that `from`
    /// and `to` fall on.
    #[oai(path = "/:id/export.csv", method = "get")]
    async fn export_csv(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        id: Path<i64>,
        /// Start, inclusive (RFC 3339); default `to` − 24 hours.
        from: Query<Option<String>>,
        /// End, exclusive (RFC 3339); default now + 10 minutes.
        to: Query<Option<String>>,
        /// `readings` (default) or `daily`.
        kind: Query<Option<ExportKind>>,
    ) -> CsvReply {
        let auth = auth.into_inner();
        let csv = async {
            let range = time_range(from.0.as_deref(), to.0.as_deref(), Utc::now())?;
            let inverter = state
                .store
                .inverter(&auth.scope, InverterId::new(id.0))
                .await?;
            csv_download(
                &state,
                &auth,
                vec![inverter],
                range,
                kind.0.unwrap_or_default(),
            )
            .await
        };
        match csv.await {
            Ok((body, disposition)) => CsvReply::Csv(Binary(body), disposition),
            Err(e) => e.into(),
        }
    }
}

async fn readings_page(
    state: &AppState,
    scope: &TenantScope,
    id: InverterId,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    limit: u32,
) -> Result<ReadingsPage, ApiError> {
    let inverter = state.store.inverter(scope, id).await?;
    let serial = label(&inverter);
    let readings = state.store.readings(scope, id, from, to, limit).await?;
    let full = readings.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
    let next_from = readings
        .last()
        .filter(|_| full)
        .map(|r| rfc3339(r.time + TimeDelta::milliseconds(1)));
    Ok(ReadingsPage {
        readings: readings
            .iter()
            .map(|r| ReadingRow::new(serial.as_deref(), r))
            .collect(),
        next_from,
    })
}

/// The user's time zone (UTC if the stored name is not one, which the store prevents).
pub fn user_zone(auth: &Authenticated) -> Tz {
    deyehard_core::energy::parse_tz(&auth.user.time_zone).unwrap_or(Tz::UTC)
}

/// A streamed CSV export of `inverters` over `[from, to)` for the user, and its
/// `Content-Disposition` (shared with the export page).
///
/// # Errors
/// Store errors before the first byte.
pub async fn csv_download(
    state: &AppState,
    auth: &Authenticated,
    inverters: Vec<Inverter>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    kind: ExportKind,
) -> Result<(Body, String), ApiError> {
    let zone = user_zone(auth);
    let (first, last) = (
        local_day(from, zone),
        local_day(to - TimeDelta::milliseconds(1), zone),
    );
    let format = match kind {
        ExportKind::Readings => Format::Csv(CsvStyle {
            zone: Some(zone),
            bom: true,
        }),
        ExportKind::Daily => Format::DailyCsv {
            from: first,
            to: last,
            bom: true,
        },
    };
    let name = file_name(&inverters, kind, (first, last), zone);
    let export = Export::new(
        state.store.clone(),
        auth.scope,
        &inverters,
        (from, to),
        format,
    )
    .await?;
    Ok((
        export.into_body(),
        format!("attachment; filename=\"{name}\""),
    ))
}

/// `deyehard_<serial or "inverters">_<kind>_<first day>_<last day>_<zone>.csv`, with only
/// letters, digits, `-` and `_`.
fn file_name(
    inverters: &[Inverter],
    kind: ExportKind,
    (first, last): (NaiveDate, NaiveDate),
    zone: Tz,
) -> String {
    let who = match inverters {
        [one] => label(one).unwrap_or_else(|| one.id.to_string()),
        _ => "inverters".to_owned(),
    };
    let what = match kind {
        ExportKind::Readings => "readings",
        ExportKind::Daily => "daily",
    };
    let raw = format!("deyehard_{who}_{what}_{first}_{last}_{}", zone.name());
    let safe: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{safe}.csv")
}

fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::Unprocessable(format!(
            "limit: {n} is not between 1 and {MAX_LIMIT}"
        ))),
    }
}

fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    // An unencoded `+` in a query string arrives as a space.
    let value = value.trim().replace(' ', "+");
    DateTime::parse_from_rfc3339(&value)
        .map(|t| t.to_utc())
        .map_err(|_| {
            let shown: String = value.chars().take(40).collect();
            ApiError::Unprocessable(format!(
                "{name}: {shown:?} is not an RFC 3339 time like 2025-10-19T00:00:00Z"
            ))
        })
}

/// `[from, to)` from the query, with the defaults of the module docs.
///
/// # Errors
/// 422 naming the parameter for a time that is not RFC 3339, or `from` not before `to`.
pub fn time_range(
    from: Option<&str>,
    to: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let to = match to {
        Some(t) => parse_time("to", t)?,
        None => now + TimeDelta::minutes(10),
    };
    let from = match from {
        Some(f) => parse_time("from", f)?,
        None => to - TimeDelta::days(1),
    };
    if from >= to {
        return Err(ApiError::Unprocessable(
            "from: must be before `to`".to_owned(),
        ));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn time_ranges_default_and_complain_by_name() {
        let now = Utc.with_ymd_and_hms(2025, 10, 19, 12, 0, 0).unwrap();
        let (from, to) = time_range(None, None, now).unwrap();
        assert_eq!(to - now, TimeDelta::minutes(10));
        assert_eq!(to - from, TimeDelta::days(1));
        let (from, _) = time_range(Some("2025-10-19T08:00:00 02:00"), None, now).unwrap();
        assert_eq!(from, Utc.with_ymd_and_hms(2025, 10, 19, 6, 0, 0).unwrap());
        let err = time_range(Some("yesterday"), None, now).unwrap_err();
        assert_eq!(err.status(), 422);
        assert!(err.to_string().starts_with("from: \"yesterday\""), "{err}");
        let err = time_range(None, Some("2025-13-01T00:00:00Z"), now).unwrap_err();
        assert!(err.to_string().starts_with("to: "), "{err}");
        let err = time_range(
            Some("2025-10-19T00:00:00Z"),
            Some("2025-10-18T00:00:00Z"),
            now,
        );
        assert!(err.unwrap_err().to_string().contains("before"));
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(page_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(page_limit(Some(10_000)).unwrap(), 10_000);
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(10_001)).is_err());
    }
}
