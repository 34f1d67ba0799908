//! Server-rendered pages (askama + HTMX). Each area has its own module with an `add_routes`;
//! this module holds what they share:
//!
//! - [`signed_in`]: the session of a page request and the base [`Layout`] for it, or a
//!   redirect to the login page (an `HX-Redirect` for HTMX requests);
//! - [`visitor_layout`]: the layout of pages for visitors (login, signup, mailed links);
//! - the page language ([`page_lang`]): `?lang=` (remembered in a cookie by [`LangCookie`]),
//!   then that cookie, then the account's language, then `Accept-Language`, then English;
//! - [`render`], [`redirect`] and [`is_htmx`].
//!
//! Pages never build HTML from strings: everything goes through askama templates, which
//! escape what users and devices supplied.

mod account;
mod admin;
mod admin_devices;
mod auth;
mod dc;
mod export;
mod fmt;
mod inverter;
mod inverter_views;
mod inverters;
mod keys;
mod messages;
mod signup;
mod start;
mod summary;
mod views;

use askama::Template;
use deyehard_store::User;
use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Route};

use crate::error::ApiError;
use crate::http::AppState;
use crate::layout::{Lang, Layout, Nav};
use crate::security::{CsrfToken, request_cookie};
use crate::session::{Authenticated, page_session};

/// Name of the cookie that remembers the language chosen with `?lang=`.
pub const LANG_COOKIE: &str = "deyehard_lang";

/// Adds every page to `route`.
pub fn add_routes(route: Route) -> Route {
    let route = signup::add_routes(auth::add_routes(route));
    let route = keys::add_routes(account::add_routes(route));
    let route = admin::add_routes(route);
    let route = inverters::add_routes(export::add_routes(route));
    let route = start::add_routes(route);
    let route = inverter::add_routes(dc::add_routes(route));
    summary::add_routes(route)
}

/// A page request with a valid session.
pub struct SignedIn {
    /// The caller, as the database has them now.
    pub auth: Authenticated,
    /// The base layout: language, CSRF token, navigation for this user.
    pub layout: Layout,
}

/// The session of a page request and its layout, with `nav` highlighted and the title in the
/// page's language; without a valid session, the response that sends the visitor to the login
/// page (and back here afterwards).
pub async fn signed_in(
    req: &Request,
    state: &AppState,
    nav: Nav,
    title: (&str, &str),
) -> Result<SignedIn, Response> {
    let Some(auth) = page_session(state, req).await else {
        return Err(to_login(req));
    };
    let lang = page_lang(req, Some(&auth.user));
    let layout = Layout {
        lang,
        title: pick(lang, title).to_owned(),
        csrf_token: csrf_token(req),
        user_email: Some(auth.user.email.clone()),
        is_admin: auth.user.is_superuser,
        active: nav,
    };
    Ok(SignedIn { auth, layout })
}

/// The layout of a page for visitors, titled `title` (English, German).
pub fn visitor_layout(req: &Request, title: (&str, &str)) -> Layout {
    let lang = page_lang(req, None);
    Layout {
        lang,
        title: pick(lang, title).to_owned(),
        csrf_token: csrf_token(req),
        ..Layout::default()
    }
}

fn pick<'a>(lang: Lang, (en, de): (&'a str, &'a str)) -> &'a str {
    match lang {
        Lang::En => en,
        Lang::De => de,
    }
}

fn csrf_token(req: &Request) -> String {
    req.extensions()
        .get::<CsrfToken>()
        .map(|t| t.0.clone())
        .unwrap_or_default()
}

/// Where a visitor without a session goes: the login page, which returns here afterwards.
fn to_login(req: &Request) -> Response {
    let here = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let target = if here == "/" {
        "/login".to_owned()
    } else {
        format!("/login?next={}", url_encode(&here))
    };
    if is_htmx(req) {
        // A swap would put the login page inside the current one: let HTMX navigate instead.
        Response::builder()
            .status(StatusCode::OK)
            .header("hx-redirect", target)
            .finish()
    } else {
        redirect(&target)
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `next` target that stays on this site: a path (not `//host`), else `/`.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

/// The page's language (see the module docs).
pub fn page_lang(req: &Request, user: Option<&User>) -> Lang {
    query_lang(req)
        .or_else(|| request_cookie(req, LANG_COOKIE).and_then(|c| Lang::from_code(&c)))
        .or_else(|| user.and_then(|u| Lang::from_code(&u.locale)))
        .or_else(|| accept_language(req))
        .unwrap_or_default()
}

fn query_lang(req: &Request) -> Option<Lang> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "lang")
        .and_then(|(_, v)| Lang::from_code(v))
}

/// The first language of `Accept-Language` we have (weights are in preference order in
/// practice; we do not sort by `q`).
fn accept_language(req: &Request) -> Option<Lang> {
    req.headers()
        .get(poem::http::header::ACCEPT_LANGUAGE)?
        .to_str()
        .ok()?
        .split(',')
        .filter_map(|item| Lang::from_code(item.split(';').next().unwrap_or_default()))
        .next()
}

/// Remembers a language chosen with `?lang=` in a cookie, for the following pages.
#[derive(Debug, Clone, Copy, Default)]
pub struct LangCookie;

impl<E: Endpoint> Middleware<E> for LangCookie {
    type Output = LangCookieEndpoint<E>;
    fn transform(&self, inner: E) -> Self::Output {
        LangCookieEndpoint { inner }
    }
}

/// The endpoint of [`LangCookie`].
pub struct LangCookieEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for LangCookieEndpoint<E> {
    type Output = Response;
    async fn call(&self, req: Request) -> poem::Result<Response> {
        let chosen = query_lang(&req);
        let mut resp = self.inner.call(req).await?.into_response();
        if let Some(lang) = chosen {
            let cookie = format!(
                "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
                lang.code()
            );
            if let Ok(v) = cookie.parse() {
                resp.headers_mut().append("set-cookie", v);
            }
        }
        Ok(resp)
    }
}

/// Renders `template` with `status`; a template error is logged and answered with a 500.
pub fn render(template: &impl Template, status: StatusCode) -> Response {
    match template.render() {
        Ok(html) => poem::web::Html(html).with_status(status).into_response(),
        Err(e) => poem::error::ResponseError::as_response(&ApiError::Internal(Box::new(e))),
    }
}

/// The answer to a page request whose CSRF token is missing or stale (see
/// [`crate::security::CsrfGuard`]): a 403 page in the site's layout (with the navigation when
/// the session is valid) saying that the form expired and how to go on. HTMX does not swap a
/// 403, so an HTMX request also gets `HX-Refresh`: the page reloads with a fresh token.
///
/// The request must carry the new [`CsrfToken`], so the page's own forms work again.
pub async fn csrf_failure(req: &Request) -> Response {
    const TITLE: (&str, &str) = ("The form expired", "Das Formular ist abgelaufen");
    let session = match req.data::<AppState>() {
        Some(state) => signed_in(req, state, Nav::None, TITLE).await.ok(),
        None => None,
    };
    let layout = session.map_or_else(|| visitor_layout(req, TITLE), |page| page.layout);
    let message = pick(
        layout.lang,
        (
            "This form was open too long or in another session, so it was not sent. Please go \
             back, reload the page and try again.",
            "Dieses Formular war zu lange offen oder gehört zu einer anderen Sitzung, daher wurde \
             es nicht gesendet. Bitte geh zurück, lade die Seite neu und versuche es noch einmal.",
        ),
    )
    .to_owned();
    let start = ("To the start page", "Zur Startseite");
    let mut resp = auth::MessagePage::show(
        layout,
        TITLE,
        message,
        Some(("/", start)),
        StatusCode::FORBIDDEN,
    );
    if is_htmx(req) {
        resp.headers_mut()
            .insert("hx-refresh", poem::http::HeaderValue::from_static("true"));
    }
    resp
}

/// `303 See Other` to `to`.
pub fn redirect(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header("location", to)
        .finish()
}

/// Whether HTMX sent the request (it wants a fragment, not a whole page).
pub fn is_htmx(req: &Request) -> bool {
    req.headers().contains_key("hx-request")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = Request::builder().uri(uri.parse().unwrap());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.finish()
    }

    #[test]
    fn language_order_query_cookie_then_header() {
        assert_eq!(page_lang(&req("/?lang=de", &[]), None), Lang::De);
        assert_eq!(
            page_lang(&req("/", &[("cookie", "deyehard_lang=de")]), None),
            Lang::De
        );
        assert_eq!(
            page_lang(&req("/?lang=en", &[("cookie", "deyehard_lang=de")]), None),
            Lang::En
        );
        assert_eq!(
            page_lang(&req("/", &[("accept-language", "fr-FR, de;q=0.8")]), None),
            Lang::De
        );
        assert_eq!(page_lang(&req("/", &[]), None), Lang::En);
    }

    #[test]
    fn next_targets_stay_on_the_site() {
        assert_eq!(safe_next(Some("/inverters/3")), "/inverters/3");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
        assert_eq!(url_encode("/a b?x=1&y"), "%2Fa%20b%3Fx%3D1%26y");
    }
}
