//! The export page (`/export`): pick inverters, a range of days in the user's time zone and
//! readings or daily energy, and download a CSV file (`/export/download`, a plain GET form:
//! no JavaScript needed). The file is streamed by [`crate::api::readings::csv_download`], the
//! same code as `/api/inverters/{id}/export.csv`.

use askama::Template;
use chrono::{Datelike, NaiveDate, Utc};
use deyehard_core::energy::{day_bounds, local_day};
use deyehard_store::{Inverter, InverterStore};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, Route, get, handler};

use super::{SignedIn, render, signed_in};
use crate::api::readings::{ExportKind, csv_download, user_zone};
use crate::error::ApiError;
use crate::export::label;
use crate::http::AppState;
use crate::layout::{Lang, Layout, Nav};

/// Adds the export page to `route`.
pub fn add_routes(route: Route) -> Route {
    route
        .at("/export", get(export_page))
        .at("/export/download", get(download))
}

const TITLE: (&str, &str) = ("Export", "Export");

/// An inverter to choose.
struct Choice {
    id: i64,
    name: String,
    serial: Option<String>,
    checked: bool,
}

/// What the form asks for, as entered.
#[derive(Debug, Default, PartialEq, Eq)]
struct ExportRequest {
    inverters: Vec<String>,
    from: String,
    to: String,
    kind: String,
}

/// Problems, by field.
#[derive(Default)]
struct Problems {
    inverter: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Template)]
#[template(path = "export/page.html")]
struct ExportPage {
    layout: Layout,
    choices: Vec<Choice>,
    from: String,
    to: String,
    daily: bool,
    zone: String,
    problems: Problems,
}

/// Reads the query: `inverter` may repeat. Values are dates, numbers and words, so they are
/// taken as they come (anything encoded simply fails to parse, with a message).
fn parse_query(query: &str) -> ExportRequest {
    let mut request = ExportRequest::default();
    for (key, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
        match key {
            "inverter" => request.inverters.push(value.to_owned()),
            "from" => value.clone_into(&mut request.from),
            "to" => value.clone_into(&mut request.to),
            "kind" => value.clone_into(&mut request.kind),
            _ => {}
        }
    }
    request
}

#[handler]
async fn export_page(req: &Request, state: Data<&AppState>) -> Response {
    let page = match signed_in(req, &state, Nav::Export, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    let today = local_day(Utc::now(), user_zone(&page.auth));
    let first = today.with_day(1).unwrap_or(today);
    let request = ExportRequest {
        from: first.to_string(),
        to: today.to_string(),
        ..ExportRequest::default()
    };
    form_page(&state, page, &request, Problems::default(), StatusCode::OK).await
}

async fn form_page(
    state: &AppState,
    page: SignedIn,
    request: &ExportRequest,
    problems: Problems,
    status: StatusCode,
) -> Response {
    let inverters = match state.store.inverters(&page.auth.scope).await {
        Ok(inverters) => inverters,
        Err(e) => return poem::error::ResponseError::as_response(&ApiError::from(e)),
    };
    let all = request.inverters.is_empty();
    let choices = inverters
        .into_iter()
        .map(|inv| Choice {
            checked: all || request.inverters.contains(&inv.id.to_string()),
            id: inv.id.get(),
            serial: label(&inv),
            name: inv.name,
        })
        .collect();
    let export = ExportPage {
        choices,
        from: request.from.clone(),
        to: request.to.clone(),
        daily: request.kind == "daily",
        zone: page.auth.user.time_zone.clone(),
        problems,
        layout: page.layout,
    };
    render(&export, status)
}

fn date(text: &str, lang: Lang) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| match lang {
        Lang::En => "Please enter a date like 2025-10-01.".to_owned(),
        Lang::De => "Bitte gib ein Datum wie 2025-10-01 ein.".to_owned(),
    })
}

/// The chosen inverters among the user's (any other id: not found) and the days, or the
/// problems by field and the status to answer with.
async fn check(
    state: &AppState,
    page: &SignedIn,
    request: &ExportRequest,
) -> Result<(Vec<Inverter>, NaiveDate, NaiveDate), (Problems, StatusCode)> {
    let lang = page.layout.lang;
    let t = |en: &str, de: &str| if lang == Lang::De { de } else { en }.to_owned();
    let mut problems = Problems::default();
    let from = date(&request.from, lang)
        .map_err(|e| problems.from = Some(e))
        .ok();
    let to = date(&request.to, lang)
        .map_err(|e| problems.to = Some(e))
        .ok();
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        problems.to = Some(t(
            "The last day must not be before the first.",
            "Der letzte Tag darf nicht vor dem ersten liegen.",
        ));
    }
    if request.inverters.is_empty() {
        problems.inverter = Some(t(
            "Choose at least one inverter.",
            "Wähle mindestens einen Wechselrichter.",
        ));
    }
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let (Some(from), Some(to), None, None, None) =
        (from, to, &problems.inverter, &problems.from, &problems.to)
    else {
        return Err((problems, unprocessable));
    };
    let all = match state.store.inverters(&page.auth.scope).await {
        Ok(all) => all,
        Err(e) => {
            let e = ApiError::from(e);
            let _ = poem::error::ResponseError::as_response(&e);
            problems.inverter = Some(t(
                "Something went wrong, please try again.",
                "Etwas ist schiefgegangen, bitte versuche es noch einmal.",
            ));
            return Err((problems, e.status()));
        }
    };
    let mut chosen = Vec::new();
    for id in &request.inverters {
        match all.iter().find(|inv| inv.id.to_string() == *id) {
            Some(inv) => chosen.push(inv.clone()),
            None => {
                problems.inverter = Some(t(
                    "There is no such inverter among yours.",
                    "Unter deinen Wechselrichtern gibt es diesen nicht.",
                ));
                return Err((problems, StatusCode::NOT_FOUND));
            }
        }
    }
    Ok((chosen, from, to))
}

#[handler]
async fn download(req: &Request, state: Data<&AppState>) -> Response {
    let page = match signed_in(req, &state, Nav::Export, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    let request = parse_query(req.uri().query().unwrap_or_default());
    let (inverters, first, last) = match check(&state, &page, &request).await {
        Ok(checked) => checked,
        Err((problems, status)) => {
            return form_page(&state, page, &request, problems, status).await;
        }
    };
    let zone = user_zone(&page.auth);
    let range = (day_bounds(first, zone).0, day_bounds(last, zone).1);
    let kind = if request.kind == "daily" {
        ExportKind::Daily
    } else {
        ExportKind::Readings
    };
    match csv_download(&state, &page.auth, inverters, range, kind).await {
        Ok((body, disposition)) => Response::builder()
            .content_type("text/csv; charset=utf-8")
            .header("content-disposition", disposition)
            .body(body),
        Err(e) => poem::error::ResponseError::as_response(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_may_repeat_inverters() {
        let q =
            parse_query("inverter=3&inverter=5&from=2025-10-01&to=2025-10-31&kind=daily&lang=de");
        assert_eq!(
            q,
            ExportRequest {
                inverters: vec!["3".into(), "5".into()],
                from: "2025-10-01".into(),
                to: "2025-10-31".into(),
                kind: "daily".into(),
            }
        );
        assert_eq!(parse_query(""), ExportRequest::default());
        assert!(date("2025-13-01", Lang::En).is_err());
        assert_eq!(
            date(" 2025-10-01 ", Lang::De),
            Ok(NaiveDate::from_ymd_opt(2025, 10, 1).unwrap())
        );
    }
}
