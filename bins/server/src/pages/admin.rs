//! The admin pages (`/admin/…`), for superusers only: the flag is read from the database with
//! the session on every request, and every store call re-checks it in its own transaction
//! ([`deyehard_store::AdminActor`]).
//!
//! - `/admin`: system status (database, TimescaleDB, retention, counts);
//! - `/admin/users`: search, verify, (de)activate, grant or revoke admin, delete;
//! - `/admin/inverters`: all tenants' inverters, search by serial, move one to another owner;
//! - `/admin/devices`: unclaimed Solarman loggers and unregistered OpenDTU serials;
//! - `/admin/conflicts`: serials several accounts lay claim to.
//!
//! Actions are plain form posts that redirect back to the list (`back`, a path on this site)
//! with `done=` set; a refused action shows the list's message page with the reason.

use askama::Template;
use deyehard_core::{InverterId, UserId};
use deyehard_store::{AdminActor, AdminFleet, AdminStore, UserFlags};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response, Route, get, handler, post};
use serde::Deserialize;

use super::account::local_time;
use super::auth::MessagePage;
use super::messages::{error_text, pick, with_retry_after};
use super::{SignedIn, redirect, render, safe_next, signed_in, url_encode};
use crate::api::admin::{AdminInverter, ReassignRequest, SystemStatus, admin_actor};
use crate::api::admin_ops::{
    delete_user, new_owner, reassign_inverter, set_user_flags, system_status,
};
use crate::error::ApiError;
use crate::http::AppState;
use crate::layout::{Layout, Nav};

/// Adds the admin pages and their forms to `route`.
pub fn add_routes(route: Route) -> Route {
    super::admin_devices::add_routes(route)
        .at("/admin", get(status_page))
        .at("/admin/users", get(users_page))
        .at("/admin/users/:id/flags", post(flags_submit))
        .at("/admin/users/:id/delete", post(delete_submit))
        .at("/admin/inverters", get(inverters_page))
        .at("/admin/inverters/:id/owner", post(reassign_submit))
}

const TITLE: (&str, &str) = ("Administration", "Verwaltung");
/// Rows per page of the user and inverter lists.
const PAGE_SIZE: u32 = 100;

/// An admin page request: the signed-in admin, or the response for anyone else (the login
/// page, or a 403 page for a user who is not, or no longer, an administrator).
pub(super) async fn admin(
    req: &Request,
    state: &AppState,
) -> Result<(SignedIn, AdminActor), Response> {
    let page = signed_in(req, state, Nav::Admin, TITLE).await?;
    match admin_actor(&page.auth) {
        Ok(actor) => Ok((page, actor)),
        Err(e) => Err(failure(page.layout, &e)),
    }
}

/// A message page for a failed admin request.
pub(super) fn failure(layout: Layout, e: &ApiError) -> Response {
    let (status, text) = error_text(layout.lang, e);
    let heading = ("That did not work", "Das hat nicht geklappt");
    let resp = MessagePage::show(layout, heading, text, Some(("/admin", TITLE)), status);
    with_retry_after(resp, e)
}

/// The form of an action, read only once the caller is known to be an administrator: anyone
/// else gets the same 403 whatever they posted, and an admin's malformed form a 422 page.
fn admin_form<T>(form: poem::Result<Form<T>>) -> Result<T, ApiError> {
    form.map(|Form(form)| form)
        .map_err(|e| ApiError::Unprocessable(e.to_string()))
}

/// The notice for `?done=`.
fn done_notice(layout: &Layout, done: Option<&str>) -> Option<String> {
    let text = match done? {
        "flags" => ("The account is updated.", "Das Konto ist aktualisiert."),
        "deleted" => (
            "The account and everything it owned are deleted.",
            "Das Konto und alles, was dazugehörte, sind gelöscht.",
        ),
        "moved" => (
            "The inverter now belongs to its new owner, with all its data.",
            "Der Wechselrichter gehört jetzt dem neuen Besitzer, mit allen Daten.",
        ),
        _ => return None,
    };
    Some(pick(layout.lang, text))
}

/// `back` with `done=<what>` added.
fn back_with(back: Option<&str>, what: &str) -> String {
    let back = safe_next(back);
    let joiner = if back.contains('?') { '&' } else { '?' };
    format!("{back}{joiner}done={what}")
}

/// Previous and next page links of a list at `offset` that showed `shown` rows.
fn paging(base: &str, offset: u32, shown: usize) -> (Option<String>, Option<String>) {
    let link = |o: u32| format!("{base}&offset={o}");
    let previous = (offset > 0).then(|| link(offset.saturating_sub(PAGE_SIZE)));
    let next = (shown >= PAGE_SIZE as usize).then(|| link(offset + PAGE_SIZE));
    (previous, next)
}

#[derive(Template)]
#[template(path = "admin/status.html")]
struct StatusPage {
    layout: Layout,
    tab: &'static str,
    status: SystemStatus,
    error: Option<String>,
    notice: Option<String>,
}

#[handler]
async fn status_page(req: &Request, state: Data<&AppState>) -> Response {
    let (page, actor) = match admin(req, &state).await {
        Ok(admin) => admin,
        Err(resp) => return resp,
    };
    match system_status(&state, actor).await {
        Ok(status) => render(
            &StatusPage {
                layout: page.layout,
                tab: "status",
                status,
                error: None,
                notice: None,
            },
            StatusCode::OK,
        ),
        Err(e) => failure(page.layout, &e),
    }
}

/// A user row of the list.
struct UserRow {
    id: i64,
    email: String,
    display_name: String,
    is_active: bool,
    is_verified: bool,
    is_superuser: bool,
    inverter_count: i64,
    created: String,
    /// The signed-in admin's own row: no buttons that would lock them out.
    is_self: bool,
}

impl UserRow {
    /// The flag buttons: (English, German, is_active, is_verified, is_superuser) to post.
    fn actions(&self) -> Vec<(&'static str, &'static str, bool, bool, bool)> {
        let (a, v, s) = (self.is_active, self.is_verified, self.is_superuser);
        let all = [
            if v {
                ("Unverify", "Bestätigung entziehen", a, false, s)
            } else {
                ("Verify", "Bestätigen", a, true, s)
            },
            if a {
                ("Deactivate", "Deaktivieren", false, v, s)
            } else {
                ("Activate", "Aktivieren", true, v, s)
            },
            if s {
                ("Revoke admin", "Admin entziehen", a, v, false)
            } else {
                ("Make admin", "Zum Admin machen", a, v, true)
            },
        ];
        all.into_iter()
            .filter(|(.., active, _, admin)| !self.is_self || (*active && *admin))
            .collect()
    }
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    layout: Layout,
    tab: &'static str,
    query: String,
    /// This list's URL, where actions return.
    back: String,
    users: Vec<UserRow>,
    previous: Option<String>,
    next: Option<String>,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
struct ListQuery {
    q: Option<String>,
    serial: Option<String>,
    offset: Option<u32>,
    done: Option<String>,
}

#[handler]
async fn users_page(req: &Request, state: Data<&AppState>, Query(q): Query<ListQuery>) -> Response {
    let (page, actor) = match admin(req, &state).await {
        Ok(admin) => admin,
        Err(resp) => return resp,
    };
    let query = q.q.unwrap_or_default();
    let offset = q.offset.unwrap_or(0);
    let found = state
        .store
        .admin_users(actor, Some(&query), PAGE_SIZE, offset)
        .await;
    let found = match found {
        Ok(found) => found,
        Err(e) => return failure(page.layout, &e.into()),
    };
    let zone = page.auth.user.time_zone.clone();
    let me = page.auth.user.id;
    let users: Vec<UserRow> = found
        .into_iter()
        .map(|o| UserRow {
            is_self: o.user.id == me,
            id: o.user.id.get(),
            created: local_time(o.user.created_at, &zone),
            email: o.user.email,
            display_name: o.user.display_name,
            is_active: o.user.is_active,
            is_verified: o.user.is_verified,
            is_superuser: o.user.is_superuser,
            inverter_count: o.inverter_count,
        })
        .collect();
    let base = format!("/admin/users?q={}", url_encode(&query));
    let (previous, next) = paging(&base, offset, users.len());
    let view = UsersPage {
        notice: done_notice(&page.layout, q.done.as_deref()),
        layout: page.layout,
        tab: "users",
        back: format!("{base}&offset={offset}"),
        query,
        users,
        previous,
        next,
        error: None,
    };
    render(&view, StatusCode::OK)
}

#[derive(Deserialize)]
struct FlagsForm {
    is_active: bool,
    is_verified: bool,
    is_superuser: bool,
    back: Option<String>,
}

#[handler]
async fn flags_submit(
    req: &Request,
    state: Data<&AppState>,
    Path(id): Path<i64>,
    form: poem::Result<Form<FlagsForm>>,
) -> Response {
    let (page, actor) = match admin(req, &state).await {
        Ok(admin) => admin,
        Err(resp) => return resp,
    };
    let form = match admin_form(form) {
        Ok(form) => form,
        Err(e) => return failure(page.layout, &e),
    };
    let flags = UserFlags {
        is_active: form.is_active,
        is_verified: form.is_verified,
        is_superuser: form.is_superuser,
    };
    match set_user_flags(&state, actor, UserId::new(id), flags).await {
        Ok(()) => redirect(&back_with(form.back.as_deref(), "flags")),
        Err(e) => failure(page.layout, &e),
    }
}

#[derive(Deserialize)]
struct BackForm {
    back: Option<String>,
}

#[handler]
async fn delete_submit(
    req: &Request,
    state: Data<&AppState>,
    Path(id): Path<i64>,
    form: poem::Result<Form<BackForm>>,
) -> Response {
    let (page, actor) = match admin(req, &state).await {
        Ok(admin) => admin,
        Err(resp) => return resp,
    };
    let form = match admin_form(form) {
        Ok(form) => form,
        Err(e) => return failure(page.layout, &e),
    };
    match delete_user(&state, actor, UserId::new(id)).await {
        Ok(()) => redirect(&back_with(form.back.as_deref(), "deleted")),
        Err(e) => failure(page.layout, &e),
    }
}

/// An inverter row of the list.
struct InverterRow {
    id: i64,
    name: String,
    serial: Option<String>,
    logger_serial: Option<u32>,
    owner_email: String,
    last_seen: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/inverters.html")]
struct InvertersPage {
    layout: Layout,
    tab: &'static str,
    query: String,
    back: String,
    inverters: Vec<InverterRow>,
    previous: Option<String>,
    next: Option<String>,
    error: Option<String>,
    notice: Option<String>,
}

fn inverter_row(i: AdminInverter, zone: &str) -> InverterRow {
    InverterRow {
        id: i.id,
        last_seen: i.last_seen_at.map(|t| local_time(t, zone)),
        name: i.name,
        serial: i.serial,
        logger_serial: i.logger_serial,
        owner_email: i.owner_email,
    }
}

#[handler]
async fn inverters_page(
    req: &Request,
    state: Data<&AppState>,
    Query(q): Query<ListQuery>,
) -> Response {
    let (page, actor) = match admin(req, &state).await {
        Ok(admin) => admin,
        Err(resp) => return resp,
    };
    let query = q.serial.unwrap_or_default();
    let offset = q.offset.unwrap_or(0);
    let found = state
        .store
        .admin_search_inverters(actor, Some(&query), PAGE_SIZE, offset)
        .await;
    let found = match found {
        Ok(found) => found,
        Err(e) => return failure(page.layout, &e.into()),
    };
    let zone = page.auth.user.time_zone.clone();
    let inverters: Vec<InverterRow> = found
        .into_iter()
        .map(|row| inverter_row(AdminInverter::from(row), &zone))
        .collect();
    let base = format!("/admin/inverters?serial={}", url_encode(&query));
    let (previous, next) = paging(&base, offset, inverters.len());
    let view = InvertersPage {
        notice: done_notice(&page.layout, q.done.as_deref()),
        layout: page.layout,
        tab: "inverters",
        back: format!("{base}&offset={offset}"),
        query,
        inverters,
        previous,
        next,
        error: None,
    };
    render(&view, StatusCode::OK)
}

#[derive(Deserialize)]
struct ReassignForm {
    owner_email: String,
    back: Option<String>,
}

#[handler]
async fn reassign_submit(
    req: &Request,
    state: Data<&AppState>,
    Path(id): Path<i64>,
    form: poem::Result<Form<ReassignForm>>,
) -> Response {
    let (page, actor) = match admin(req, &state).await {
        Ok(admin) => admin,
        Err(resp) => return resp,
    };
    let form = match admin_form(form) {
        Ok(form) => form,
        Err(e) => return failure(page.layout, &e),
    };
    let request = ReassignRequest {
        owner_id: None,
        owner_email: Some(form.owner_email),
    };
    let moved = match new_owner(&state, actor, &request).await {
        Ok(owner) => reassign_inverter(&state, actor, InverterId::new(id), owner).await,
        Err(e) => Err(e),
    };
    match moved {
        Ok(_) => redirect(&back_with(form.back.as_deref(), "moved")),
        Err(e) => failure(page.layout, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_return_to_the_list_on_this_site() {
        assert_eq!(
            back_with(Some("/admin/users?q=a"), "flags"),
            "/admin/users?q=a&done=flags"
        );
        assert_eq!(back_with(Some("//evil.example"), "moved"), "/?done=moved");
        assert_eq!(back_with(None, "deleted"), "/?done=deleted");
        let (previous, next) = paging("/admin/users?q=", 100, 100);
        assert_eq!(previous.as_deref(), Some("/admin/users?q=&offset=0"));
        assert_eq!(next.as_deref(), Some("/admin/users?q=&offset=200"));
        assert_eq!(paging("/x?q=", 0, 3), (None, None));
    }
}
