//! The account page (`/account`): profile (name, time zone, language), password change, email
//! change, "log out everywhere" and deleting the account. Every form works as a plain POST
//! (post, redirect, get: `?done=` names what succeeded); a failure shows the page again with
//! the reason. The API keys are in [`super::keys`].

use askama::Template;
use chrono::{DateTime, Utc};
use deyehard_store::UserStore;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{Request, Response, Route, get, handler, post};
use serde::Deserialize;

use super::auth::MessagePage;
use super::messages::{error_text, pick, with_retry_after};
use super::signup::{RuleView, password_rules, time_zones};
use super::{LANG_COOKIE, SignedIn, redirect, render, signed_in, visitor_layout};
use crate::api::me::{
    ProfileRequest, change_password, delete_account, request_email_change, update_profile,
};
use crate::error::ApiError;
use crate::http::AppState;
use crate::layout::{Lang, Layout, Nav};
use crate::session::{clear_session_cookie, session_cookie};

/// Adds the account page and its forms to `route`.
pub fn add_routes(route: Route) -> Route {
    route
        .at("/account", get(account_page))
        .at("/account/profile", post(profile_submit))
        .at("/account/password", post(password_submit))
        .at("/account/email", post(email_submit))
        .at("/account/logout-everywhere", post(logout_everywhere))
        .at("/account/delete", post(delete_submit))
}

/// The account area's title.
pub const TITLE: (&str, &str) = ("Account", "Konto");

#[derive(Template)]
#[template(path = "accounts/account.html")]
struct AccountPage {
    layout: Layout,
    tab: &'static str,
    email: String,
    display_name: String,
    time_zone: String,
    locale: String,
    is_verified: bool,
    time_zones: &'static [&'static str],
    rules: Vec<RuleView>,
    password_field: &'static str,
    error: Option<String>,
    notice: Option<String>,
}

impl AccountPage {
    fn new(page: SignedIn) -> Self {
        let user = page.auth.user;
        Self {
            rules: password_rules(page.layout.lang, None, Some(&user.email)),
            layout: page.layout,
            tab: "account",
            email: user.email,
            display_name: user.display_name,
            time_zone: user.time_zone,
            locale: user.locale,
            is_verified: user.is_verified,
            time_zones: time_zones(),
            password_field: "new_password",
            error: None,
            notice: None,
        }
    }

    fn zone_selected(&self, tz: &str) -> bool {
        tz == self.time_zone
    }

    /// The page again with the reason a form failed.
    fn failed(mut self, e: &ApiError) -> Response {
        let (status, text) = error_text(self.layout.lang, e);
        self.error = Some(text);
        with_retry_after(render(&self, status), e)
    }
}

/// A time in the user's time zone, to the minute (`2025-06-15 14:03`).
pub fn local_time(time: DateTime<Utc>, time_zone: &str) -> String {
    match deyehard_core::energy::parse_tz(time_zone) {
        Ok(tz) => time.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => time.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

/// What a `?done=` code says succeeded.
fn done_text(lang: Lang, done: &str) -> Option<String> {
    let text = match done {
        "profile" => ("Your profile is saved.", "Dein Profil ist gespeichert."),
        "password" => (
            "Your password is changed; every other session has ended.",
            "Dein Passwort ist geändert; alle anderen Sitzungen wurden beendet.",
        ),
        "email" => (
            "We sent a confirmation link to the new address. The change happens when you open it.",
            "Wir haben einen Bestätigungslink an die neue Adresse geschickt. Die Änderung gilt, \
             sobald du ihn öffnest.",
        ),
        _ => return None,
    };
    Some(pick(lang, text))
}

#[handler]
async fn account_page(
    req: &Request,
    state: Data<&AppState>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let page = match signed_in(req, &state, Nav::Account, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    let mut view = AccountPage::new(page);
    view.notice = q
        .done
        .as_deref()
        .and_then(|d| done_text(view.layout.lang, d));
    render(&view, StatusCode::OK)
}

#[derive(Deserialize)]
struct ProfileForm {
    display_name: String,
    time_zone: String,
    locale: String,
}

#[handler]
async fn profile_submit(
    req: &Request,
    state: Data<&AppState>,
    Form(form): Form<ProfileForm>,
) -> Response {
    let page = match signed_in(req, &state, Nav::Account, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    let change = ProfileRequest {
        display_name: Some(form.display_name.clone()),
        time_zone: Some(form.time_zone.clone()),
        locale: Some(form.locale),
    };
    match update_profile(&state, &page.auth, change).await {
        Ok(user) => {
            // The saved language also becomes the page language of this browser.
            let mut resp = redirect("/account?done=profile");
            let cookie = format!(
                "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
                user.locale
            );
            if let Ok(v) = cookie.parse() {
                resp.headers_mut().append("set-cookie", v);
            }
            resp
        }
        Err(e) => {
            let mut view = AccountPage::new(page);
            view.display_name = form.display_name;
            view.time_zone = form.time_zone;
            view.failed(&e)
        }
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
}

#[handler]
async fn password_submit(
    req: &Request,
    state: Data<&AppState>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let page = match signed_in(req, &state, Nav::Account, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    let changed = change_password(
        &state,
        &page.auth,
        &form.current_password,
        &form.new_password,
    )
    .await;
    match changed {
        Ok(token) => {
            // Every older session ended, this one included: carry on with the new token.
            let mut resp = redirect("/account?done=password");
            let cookie = session_cookie(&token, state.accounts.settings().cookie_secure);
            if let Ok(v) = cookie.parse() {
                resp.headers_mut().append("set-cookie", v);
            }
            resp
        }
        Err(e) => {
            let lang = page.layout.lang;
            let mut view = AccountPage::new(page);
            view.rules = password_rules(lang, Some(&form.new_password), Some(&view.email));
            view.failed(&e)
        }
    }
}

#[derive(Deserialize)]
struct EmailForm {
    new_email: String,
    password: String,
}

#[handler]
async fn email_submit(
    req: &Request,
    state: Data<&AppState>,
    Form(form): Form<EmailForm>,
) -> Response {
    let page = match signed_in(req, &state, Nav::Account, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    match request_email_change(&state, &page.auth, &form.password, &form.new_email).await {
        Ok(()) => redirect("/account?done=email"),
        Err(e) => AccountPage::new(page).failed(&e),
    }
}

/// A visitor page after the session ended, with the cookie removed.
fn signed_out(
    req: &Request,
    state: &AppState,
    heading: (&str, &str),
    text: (&str, &str),
) -> Response {
    let layout = visitor_layout(req, heading);
    let text = pick(layout.lang, text);
    let next = ("/login", ("Go to the login", "Zur Anmeldung"));
    let mut resp = MessagePage::show(layout, heading, text, Some(next), StatusCode::OK);
    if let Ok(v) = clear_session_cookie(state.accounts.settings().cookie_secure).parse() {
        resp.headers_mut().append("set-cookie", v);
    }
    resp
}

#[handler]
async fn logout_everywhere(req: &Request, state: Data<&AppState>) -> Response {
    let page = match signed_in(req, &state, Nav::Account, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    match state.store.bump_session_version(&page.auth.scope).await {
        Ok(_) => signed_out(
            req,
            &state,
            ("Logged out everywhere", "Überall abgemeldet"),
            (
                "Every session of your account has ended, on every device.",
                "Alle Sitzungen deines Kontos wurden beendet, auf allen Geräten.",
            ),
        ),
        Err(e) => AccountPage::new(page).failed(&e.into()),
    }
}

#[derive(Deserialize)]
struct DeleteForm {
    password: String,
    confirm: Option<String>,
}

#[handler]
async fn delete_submit(
    req: &Request,
    state: Data<&AppState>,
    Form(form): Form<DeleteForm>,
) -> Response {
    let page = match signed_in(req, &state, Nav::Account, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    if form.confirm.as_deref() != Some("yes") {
        let text = pick(
            page.layout.lang,
            (
                "Tick the box to confirm that everything should be deleted.",
                "Setze das Häkchen, um zu bestätigen, dass alles gelöscht werden soll.",
            ),
        );
        let mut view = AccountPage::new(page);
        view.error = Some(text);
        return render(&view, StatusCode::BAD_REQUEST);
    }
    match delete_account(&state, &page.auth, &form.password).await {
        Ok(()) => signed_out(
            req,
            &state,
            ("Account deleted", "Konto gelöscht"),
            (
                "Your account and everything it held are deleted.",
                "Dein Konto und alles, was dazugehörte, sind gelöscht.",
            ),
        ),
        Err(e) => AccountPage::new(page).failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_the_users_zone() {
        let t = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
        assert_eq!(local_time(t, "Europe/Berlin"), "2025-06-15 17:06");
        assert_eq!(local_time(t, "Nowhere/Else"), "2025-06-15 15:06 UTC");
        assert_eq!(done_text(Lang::De, "nonsense"), None);
        assert!(done_text(Lang::De, "profile").is_some());
    }
}
