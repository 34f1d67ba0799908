//! Pages for visitors, in English and German, working without JavaScript: login and logout,
//! the targets of the mailed links (`/verify`, `/reset-password`, `/confirm-email`), the reset
//! request and "send the confirmation link again" (`/verify/resend`). Forms carry the CSRF
//! token that [`crate::security::CsrfGuard`] checks; bad or expired links get a friendly page,
//! never a 500. Answers never tell whether an address is registered.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{Request, Response, Route, get, handler, post};
use serde::Deserialize;

use super::messages::{error_text, pick, with_retry_after};
use super::signup::{RuleView, password_rules};
use super::{redirect, render, safe_next, visitor_layout};
use crate::api::auth::{
    RESEND_ACCEPTED, RESET_ACCEPTED, confirm_reset, issue_session, login, request_reset,
    resend_verification, verify_email,
};
use crate::error::ApiError;
use crate::http::AppState;
use crate::layout::{Lang, Layout};
use crate::security::client_ip;
use crate::session::{clear_session_cookie, page_session, session_cookie};

/// Adds the visitor pages to `route`.
pub fn add_routes(route: Route) -> Route {
    route
        .at("/login", get(login_page).post(login_submit))
        .at("/logout", post(logout))
        .at("/verify", get(verify_page))
        .at("/verify/resend", get(resend_page).post(resend_submit))
        .at("/confirm-email", get(confirm_email_page))
        .at("/reset-password", get(reset_page).post(reset_submit))
        .at("/reset-password/request", post(reset_request))
}

const LOGIN_TITLE: (&str, &str) = ("Log in", "Anmelden");
const RESET_TITLE: (&str, &str) = ("Reset your password", "Passwort zurücksetzen");
const RESEND_TITLE: (&str, &str) = ("Confirm your email address", "E-Mail-Adresse bestätigen");
const LINK_FAILED: (&str, &str) = ("This link does not work", "Dieser Link funktioniert nicht");
const TO_LOGIN: (&str, (&str, &str)) = ("/login", ("Go to the login", "Zur Anmeldung"));

#[derive(Template)]
#[template(path = "accounts/login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    /// Where to go after logging in (a path on this site).
    next: String,
    error: Option<String>,
    notice: Option<String>,
}

/// A page with a heading, a sentence and a button to go on.
#[derive(Template)]
#[template(path = "accounts/message.html")]
pub(super) struct MessagePage {
    pub(super) layout: Layout,
    pub(super) heading: String,
    pub(super) message: String,
    /// The button: (href, label).
    pub(super) next: Option<(String, String)>,
}

impl MessagePage {
    /// Renders a message on `layout`; `heading` and the button's label are (English, German).
    pub(super) fn show(
        layout: Layout,
        heading: (&str, &str),
        message: String,
        next: Option<(&str, (&str, &str))>,
        status: StatusCode,
    ) -> Response {
        let lang = layout.lang;
        let page = Self {
            heading: pick(lang, heading),
            message,
            next: next.map(|(href, label)| (href.to_owned(), pick(lang, label))),
            layout,
        };
        render(&page, status)
    }
}

#[derive(Template)]
#[template(path = "accounts/reset.html")]
struct ResetPage {
    layout: Layout,
    token: Option<String>,
    error: Option<String>,
    notice: Option<String>,
    rules: Vec<RuleView>,
    password_field: &'static str,
}

#[derive(Template)]
#[template(path = "accounts/resend.html")]
struct ResendPage {
    layout: Layout,
    email: String,
    error: Option<String>,
    notice: Option<String>,
}

/// A visitor page with a message, titled by its heading.
fn message(
    req: &Request,
    heading: (&str, &str),
    text: String,
    next: Option<(&str, (&str, &str))>,
    status: StatusCode,
) -> Response {
    MessagePage::show(visitor_layout(req, heading), heading, text, next, status)
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[handler]
async fn login_page(req: &Request, state: Data<&AppState>, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    if page_session(&state, req).await.is_some() {
        return redirect(next);
    }
    let page = LoginPage {
        layout: visitor_layout(req, LOGIN_TITLE),
        email: String::new(),
        next: next.to_owned(),
        error: None,
        notice: None,
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

#[handler]
async fn login_submit(
    req: &Request,
    state: Data<&AppState>,
    Form(form): Form<LoginForm>,
) -> Response {
    let ip = client_ip(req, &state.accounts.settings().trusted_proxies);
    let outcome = match login(&state, ip, &form.email, &form.password).await {
        Ok(user) => issue_session(&state.accounts, &user),
        Err(e) => Err(e),
    };
    let next = safe_next(form.next.as_deref());
    match outcome {
        Ok(token) => {
            let mut resp = redirect(next);
            if let Ok(v) = session_cookie(&token, state.accounts.settings().cookie_secure).parse() {
                resp.headers_mut().append("set-cookie", v);
            }
            resp
        }
        Err(e) => {
            let layout = visitor_layout(req, LOGIN_TITLE);
            let (status, text) = match &e {
                ApiError::Unauthorized => (
                    StatusCode::UNAUTHORIZED,
                    pick(
                        layout.lang,
                        (
                            "Email or password is wrong.",
                            "E-Mail-Adresse oder Passwort ist falsch.",
                        ),
                    ),
                ),
                other => error_text(layout.lang, other),
            };
            let page = LoginPage {
                layout,
                email: form.email,
                next: next.to_owned(),
                error: Some(text),
                notice: None,
            };
            with_retry_after(render(&page, status), &e)
        }
    }
}

#[handler]
fn logout(state: Data<&AppState>) -> Response {
    let mut resp = redirect("/login");
    if let Ok(v) = clear_session_cookie(state.accounts.settings().cookie_secure).parse() {
        resp.headers_mut().append("set-cookie", v);
    }
    resp
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

#[handler]
async fn verify_page(
    req: &Request,
    state: Data<&AppState>,
    Query(q): Query<TokenQuery>,
) -> Response {
    let lang = visitor_layout(req, LINK_FAILED).lang;
    match verify_email(&state, q.token.as_deref().unwrap_or_default()).await {
        Ok(()) => {
            let text = pick(
                lang,
                (
                    "Your email address is confirmed. Welcome!",
                    "Deine E-Mail-Adresse ist bestätigt. Willkommen!",
                ),
            );
            let heading = ("Email confirmed", "E-Mail-Adresse bestätigt");
            message(req, heading, text, Some(TO_LOGIN), StatusCode::OK)
        }
        Err(e) => {
            let (status, text) = error_text(lang, &e);
            let again = ("/verify/resend", ("Send a new link", "Neuen Link senden"));
            message(req, LINK_FAILED, text, Some(again), status)
        }
    }
}

#[handler]
async fn confirm_email_page(
    req: &Request,
    state: Data<&AppState>,
    Query(q): Query<TokenQuery>,
) -> Response {
    let lang = visitor_layout(req, LINK_FAILED).lang;
    let token = q.token.as_deref().unwrap_or_default();
    match crate::api::me::confirm_email_change(&state, token).await {
        Ok(()) => {
            let text = pick(
                lang,
                (
                    "Your new email address is confirmed. Log in with it from now on.",
                    "Deine neue E-Mail-Adresse ist bestätigt. Melde dich ab jetzt mit ihr an.",
                ),
            );
            let heading = ("Email changed", "E-Mail-Adresse geändert");
            message(req, heading, text, Some(TO_LOGIN), StatusCode::OK)
        }
        Err(e) => {
            let (status, text) = error_text(lang, &e);
            message(req, LINK_FAILED, text, Some(TO_LOGIN), status)
        }
    }
}

fn reset_form(req: &Request, token: Option<String>, error: Option<String>) -> ResetPage {
    let layout = visitor_layout(req, RESET_TITLE);
    ResetPage {
        rules: password_rules(layout.lang, None, None),
        layout,
        token,
        error,
        notice: None,
        password_field: "password",
    }
}

#[handler]
fn reset_page(req: &Request, Query(q): Query<TokenQuery>) -> Response {
    let token = q.token.filter(|t| !t.is_empty());
    render(&reset_form(req, token, None), StatusCode::OK)
}

#[derive(Deserialize)]
struct ResetForm {
    token: String,
    password: String,
}

#[handler]
async fn reset_submit(
    req: &Request,
    state: Data<&AppState>,
    Form(form): Form<ResetForm>,
) -> Response {
    match confirm_reset(&state, &form.token, &form.password).await {
        Ok(()) => {
            let lang = visitor_layout(req, RESET_TITLE).lang;
            let text = pick(
                lang,
                (
                    "Your password has been changed and every session has ended. Please log in \
                     with the new one.",
                    "Dein Passwort wurde geändert, und alle Sitzungen wurden beendet. Bitte melde \
                     dich mit dem neuen an.",
                ),
            );
            let heading = ("Password changed", "Passwort geändert");
            message(req, heading, text, Some(TO_LOGIN), StatusCode::OK)
        }
        Err(e) => {
            let mut page = reset_form(req, Some(form.token), None);
            let (status, text) = error_text(page.layout.lang, &e);
            page.error = Some(text);
            page.rules = password_rules(page.layout.lang, Some(&form.password), None);
            with_retry_after(render(&page, status), &e)
        }
    }
}

#[derive(Deserialize)]
struct EmailForm {
    email: String,
}

#[handler]
async fn reset_request(
    req: &Request,
    state: Data<&AppState>,
    Form(form): Form<EmailForm>,
) -> Response {
    let ip = client_ip(req, &state.accounts.settings().trusted_proxies);
    match request_reset(&state, ip, &form.email).await {
        Ok(()) => {
            let lang = visitor_layout(req, RESET_TITLE).lang;
            let text = accepted(lang, RESET_ACCEPTED);
            let heading = ("Check your inbox", "Schau in dein Postfach");
            message(req, heading, text, Some(TO_LOGIN), StatusCode::OK)
        }
        Err(e) => {
            let mut page = reset_form(req, None, None);
            let (status, text) = error_text(page.layout.lang, &e);
            page.error = Some(text);
            with_retry_after(render(&page, status), &e)
        }
    }
}

/// The German text of the answers that are the same for every address.
fn accepted(lang: Lang, english: &str) -> String {
    let german = match english {
        RESET_ACCEPTED => {
            "Falls es ein Konto mit dieser Adresse gibt, haben wir ihm einen Link zum \
             Zurücksetzen des Passworts geschickt."
        }
        RESEND_ACCEPTED => {
            "Falls diese Adresse zu einem noch nicht bestätigten Konto gehört, haben wir ihr \
             einen neuen Bestätigungslink geschickt."
        }
        _ => {
            "Danke! Schau in dein Postfach: wir haben dir eine Nachricht zur Bestätigung \
             deiner E-Mail-Adresse geschickt."
        }
    };
    pick(lang, (english, german))
}

/// The signup answer in the page's language.
pub(super) fn signup_accepted(lang: Lang) -> String {
    accepted(lang, crate::api::auth::SIGNUP_ACCEPTED)
}

#[handler]
async fn resend_page(req: &Request, state: Data<&AppState>) -> Response {
    let email = page_session(&state, req)
        .await
        .map(|auth| auth.user.email)
        .unwrap_or_default();
    let page = ResendPage {
        layout: visitor_layout(req, RESEND_TITLE),
        email,
        error: None,
        notice: None,
    };
    render(&page, StatusCode::OK)
}

#[handler]
async fn resend_submit(
    req: &Request,
    state: Data<&AppState>,
    Form(form): Form<EmailForm>,
) -> Response {
    let ip = client_ip(req, &state.accounts.settings().trusted_proxies);
    let layout = visitor_layout(req, RESEND_TITLE);
    match resend_verification(&state, ip, &form.email).await {
        Ok(()) => {
            let text = accepted(layout.lang, RESEND_ACCEPTED);
            let heading = ("Check your inbox", "Schau in dein Postfach");
            message(req, heading, text, Some(TO_LOGIN), StatusCode::OK)
        }
        Err(e) => {
            let (status, text) = error_text(layout.lang, &e);
            let page = ResendPage {
                layout,
                email: form.email,
                error: Some(text),
                notice: None,
            };
            with_retry_after(render(&page, status), &e)
        }
    }
}
