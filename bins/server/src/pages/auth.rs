//! Pages for visitors (askama, no JavaScript needed): login and logout, the targets of the
//! mailed links (`/verify`, `/reset-password`, `/confirm-email`) and the reset request. Forms
//! carry the CSRF token that [`crate::security::CsrfGuard`] checks; bad or expired links get a
//! friendly page, never a 500.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{Request, Response, Route, get, handler, post};
use serde::Deserialize;

use super::{redirect, render, safe_next, visitor_layout};
use crate::api::auth::{
    RESET_ACCEPTED, confirm_reset, issue_session, login, request_reset, verify_email,
};
use crate::error::ApiError;
use crate::http::AppState;
use crate::layout::Layout;
use crate::security::client_ip;
use crate::session::{clear_session_cookie, page_session, session_cookie};

/// Adds the account pages to `route`.
pub fn add_routes(route: Route) -> Route {
    route
        .at("/login", get(login_page).post(login_submit))
        .at("/logout", post(logout))
        .at("/verify", get(verify_page))
        .at("/confirm-email", get(confirm_email_page))
        .at("/reset-password", get(reset_page).post(reset_submit))
        .at("/reset-password/request", post(reset_request))
}

const LOGIN_TITLE: (&str, &str) = ("Log in", "Anmelden");
const RESET_TITLE: (&str, &str) = ("Reset your password", "Passwort zurücksetzen");

#[derive(Template)]
#[template(path = "accounts/login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    /// Where to go after logging in (a path on this site).
    next: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "accounts/message.html")]
struct MessagePage {
    layout: Layout,
    heading: String,
    message: String,
    next_href: &'static str,
    next_label: &'static str,
}

#[derive(Template)]
#[template(path = "accounts/reset.html")]
struct ResetPage {
    layout: Layout,
    token: Option<String>,
    error: Option<String>,
}

fn message(req: &Request, heading: &str, text: &str, status: StatusCode) -> Response {
    let page = MessagePage {
        layout: visitor_layout(req, (heading, heading)),
        heading: heading.to_owned(),
        message: text.to_owned(),
        next_href: "/login",
        next_label: "Go to the login page",
    };
    render(&page, status)
}

/// The page's text for a failed flow; 5xx details stay in the log.
fn failure(e: &ApiError) -> (StatusCode, String) {
    match e {
        ApiError::Internal(_) | ApiError::Unavailable { .. } => {
            let _ = poem::error::ResponseError::as_response(e);
            (
                e.status(),
                "Something went wrong on our side. Please try again later.".to_owned(),
            )
        }
        ApiError::Unprocessable(_) => (StatusCode::BAD_REQUEST, e.to_string()),
        _ => (e.status(), e.to_string()),
    }
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
    render(
        &LoginPage {
            layout: visitor_layout(req, LOGIN_TITLE),
            email: String::new(),
            next: next.to_owned(),
            error: None,
        },
        StatusCode::OK,
    )
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
    match outcome {
        Ok(token) => {
            let mut resp = redirect(safe_next(form.next.as_deref()));
            if let Ok(v) = session_cookie(&token, state.accounts.settings().cookie_secure).parse() {
                resp.headers_mut().append("set-cookie", v);
            }
            resp
        }
        Err(e) => {
            let (status, text) = match e {
                ApiError::Unauthorized => (
                    StatusCode::UNAUTHORIZED,
                    "Email or password is wrong.".to_owned(),
                ),
                other => failure(&other),
            };
            let page = LoginPage {
                layout: visitor_layout(req, LOGIN_TITLE),
                email: form.email,
                next: safe_next(form.next.as_deref()).to_owned(),
                error: Some(text),
            };
            render(&page, status)
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
    match verify_email(&state, q.token.as_deref().unwrap_or_default()).await {
        Ok(()) => message(
            req,
            "Email confirmed",
            "Your email address is confirmed. Welcome!",
            StatusCode::OK,
        ),
        Err(e) => {
            let (status, text) = failure(&e);
            message(req, "This link does not work", &text, status)
        }
    }
}

#[handler]
async fn confirm_email_page(
    req: &Request,
    state: Data<&AppState>,
    Query(q): Query<TokenQuery>,
) -> Response {
    match crate::api::me::confirm_email_change(&state, q.token.as_deref().unwrap_or_default()).await
    {
        Ok(()) => message(
            req,
            "Email changed",
            "Your new email address is confirmed.",
            StatusCode::OK,
        ),
        Err(e) => {
            let (status, text) = failure(&e);
            message(req, "This link does not work", &text, status)
        }
    }
}

#[handler]
fn reset_page(req: &Request, Query(q): Query<TokenQuery>) -> Response {
    let page = ResetPage {
        layout: visitor_layout(req, RESET_TITLE),
        token: q.token.filter(|t| !t.is_empty()),
        error: None,
    };
    render(&page, StatusCode::OK)
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
        Ok(()) => message(
            req,
            "Password changed",
            "Your password has been changed. Please log in with the new one.",
            StatusCode::OK,
        ),
        Err(e) => {
            let (status, text) = failure(&e);
            let page = ResetPage {
                layout: visitor_layout(req, RESET_TITLE),
                token: Some(form.token),
                error: Some(text),
            };
            render(&page, status)
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
        Ok(()) => message(req, "Check your inbox", RESET_ACCEPTED, StatusCode::OK),
        Err(e) => {
            let (status, text) = failure(&e);
            message(req, "Please wait", &text, status)
        }
    }
}
