//! The admin pages about devices (see [`super::admin`] for the access rules): unclaimed
//! Solarman loggers and unregistered OpenDTU serials (`/admin/devices`), and the serials several
//! accounts lay claim to (`/admin/conflicts`), times in the admin's time zone.

use askama::Template;
use deyehard_store::{AdminFleet, AdminStore, UnclaimedLogger};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, Route, get, handler};

use super::account::local_time;
use super::admin::{admin, failure};
use super::render;
use crate::api::admin::{AdminConflict, AdminUnknownSerial};
use crate::api::admin_ops::{conflict, unknown_serial};
use crate::http::AppState;
use crate::layout::Layout;

/// Adds the device pages to `route`.
pub fn add_routes(route: Route) -> Route {
    route
        .at("/admin/devices", get(devices_page))
        .at("/admin/conflicts", get(conflicts_page))
}

/// An unclaimed logger row.
struct LoggerRow {
    serial: u32,
    first_seen: String,
    last_seen: String,
    frames: i64,
    remote_addr: Option<String>,
}

/// An unregistered OpenDTU serial row.
struct SerialRow {
    serial: String,
    dtu: Option<String>,
    owner_email: String,
    first_seen: String,
    last_seen: String,
    times: i64,
}

#[derive(Template)]
#[template(path = "admin/devices.html")]
struct DevicesPage {
    layout: Layout,
    tab: &'static str,
    loggers: Vec<LoggerRow>,
    serials: Vec<SerialRow>,
    error: Option<String>,
    notice: Option<String>,
}

fn logger_row(l: UnclaimedLogger, zone: &str) -> LoggerRow {
    LoggerRow {
        serial: l.logger_serial.get(),
        first_seen: local_time(l.first_seen_at, zone),
        last_seen: local_time(l.last_seen_at, zone),
        frames: l.frames_seen,
        remote_addr: l.remote_addr,
    }
}

fn serial_row(s: AdminUnknownSerial, zone: &str) -> SerialRow {
    SerialRow {
        first_seen: local_time(s.first_seen_at, zone),
        last_seen: local_time(s.last_seen_at, zone),
        serial: s.inverter_serial,
        dtu: s.dtu_serial,
        owner_email: s.owner_email,
        times: s.times_seen,
    }
}

#[handler]
async fn devices_page(req: &Request, state: Data<&AppState>) -> Response {
    let (page, actor) = match admin(req, &state).await {
        Ok(admin) => admin,
        Err(resp) => return resp,
    };
    let zone = page.auth.user.time_zone.clone();
    let loggers = state.store.admin_unclaimed_loggers(actor).await;
    let serials = state.store.admin_unknown_serials(actor, 500).await;
    let (loggers, serials) = match (loggers, serials) {
        (Ok(l), Ok(s)) => (l, s),
        (Err(e), _) | (_, Err(e)) => return failure(page.layout, &e.into()),
    };
    let view = DevicesPage {
        layout: page.layout,
        tab: "devices",
        loggers: loggers.into_iter().map(|l| logger_row(l, &zone)).collect(),
        serials: serials
            .into_iter()
            .map(|s| serial_row(unknown_serial(s), &zone))
            .collect(),
        error: None,
        notice: None,
    };
    render(&view, StatusCode::OK)
}

/// One claim of a conflict, time in the admin's zone.
struct ClaimRow {
    email: String,
    inverter_id: Option<i64>,
    last_seen: Option<String>,
    attempts: i64,
}

/// A conflict as the page shows it.
struct ConflictView {
    kind: String,
    serial: String,
    claims: Vec<ClaimRow>,
}

#[derive(Template)]
#[template(path = "admin/conflicts.html")]
struct ConflictsPage {
    layout: Layout,
    tab: &'static str,
    conflicts: Vec<ConflictView>,
    error: Option<String>,
    notice: Option<String>,
}

fn conflict_view(c: AdminConflict, zone: &str) -> ConflictView {
    ConflictView {
        kind: c.kind,
        serial: c.serial,
        claims: c
            .claims
            .into_iter()
            .map(|claim| ClaimRow {
                email: claim.email,
                inverter_id: claim.inverter_id,
                last_seen: claim.last_seen_at.map(|t| local_time(t, zone)),
                attempts: claim.attempts,
            })
            .collect(),
    }
}

#[handler]
async fn conflicts_page(req: &Request, state: Data<&AppState>) -> Response {
    let (page, actor) = match admin(req, &state).await {
        Ok(admin) => admin,
        Err(resp) => return resp,
    };
    let zone = page.auth.user.time_zone.clone();
    match state.store.admin_serial_conflicts(actor).await {
        Ok(found) => {
            let view = ConflictsPage {
                layout: page.layout,
                tab: "conflicts",
                conflicts: found
                    .into_iter()
                    .map(|c| conflict_view(conflict(c), &zone))
                    .collect(),
                error: None,
                notice: None,
            };
            render(&view, StatusCode::OK)
        }
        Err(e) => failure(page.layout, &e.into()),
    }
}
