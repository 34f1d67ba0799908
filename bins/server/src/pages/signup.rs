//! The signup page (`/signup`) and the live password check (`POST /password/check`) that the
//! signup, reset and account forms call through HTMX while the user types: the server runs
//! the `deyehard-core` policy and answers with the list of rules, so no script of ours is
//! needed. Without JavaScript the same rules are checked on submit.
//!
//! The time zone is a list with the server's default preselected. The answer to a signup is
//! the same whether or not the address is registered (an existing account gets a mail).

use std::sync::LazyLock;

use askama::Template;
use deyehard_core::auth::password::check_policy_all;
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{Request, Response, Route, get, handler, post};
use serde::Deserialize;

use super::auth::{MessagePage, signup_accepted};
use super::messages::{POLICY_RULES, error_text, rule_label, with_retry_after};
use super::{page_lang, redirect, render, visitor_layout};
use crate::api::auth::{SignupRequest, signup};
use crate::http::AppState;
use crate::layout::{Lang, Layout};
use crate::security::client_ip;
use crate::session::page_session;

/// Adds the signup page and the password check to `route`.
pub fn add_routes(route: Route) -> Route {
    route
        .at("/signup", get(signup_page).post(signup_submit))
        .at("/password/check", post(password_check))
}

const TITLE: (&str, &str) = ("Sign up", "Registrieren");

/// One rule of the password policy as the form shows it.
pub struct RuleView {
    /// The rule, in the page's language.
    pub text: String,
    /// `ok`, `broken`, or `pending` (nothing typed yet).
    pub state: &'static str,
}

/// The policy's rules for `password` (all pending while it is empty). The rule about the
/// email address is listed only when the address is known; the length limit only when broken.
pub fn password_rules(lang: Lang, password: Option<&str>, email: Option<&str>) -> Vec<RuleView> {
    use deyehard_core::auth::PolicyError;
    let password = password.filter(|p| !p.is_empty());
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    let broken = password.map_or_else(Vec::new, |p| check_policy_all(p, email));
    POLICY_RULES
        .into_iter()
        .filter(|rule| match rule {
            PolicyError::TooLong => broken.contains(rule),
            PolicyError::SameAsEmail => email.is_some(),
            _ => true,
        })
        .map(|rule| RuleView {
            text: rule_label(lang, rule).to_owned(),
            state: match (password, broken.contains(&rule)) {
                (None, _) => "pending",
                (Some(_), true) => "broken",
                (Some(_), false) => "ok",
            },
        })
        .collect()
}

/// IANA time zones for the forms: the `Area/City` names (no legacy aliases such as
/// `US/Eastern` or `Etc/GMT+1`), sorted, and `UTC`.
pub fn time_zones() -> &'static [&'static str] {
    static ZONES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        let legacy = [
            "Etc/", "US/", "SystemV/", "Canada/", "Mexico/", "Brazil/", "Chile/",
        ];
        let mut zones: Vec<&'static str> = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|tz| tz.name())
            .filter(|name| name.contains('/') && !legacy.iter().any(|p| name.starts_with(p)))
            .collect();
        zones.push("UTC");
        zones.sort_unstable();
        zones
    });
    &ZONES
}

#[derive(Template)]
#[template(path = "accounts/password_rules.html")]
struct RulesFragment {
    rules: Vec<RuleView>,
}

#[derive(Template)]
#[template(path = "accounts/signup.html")]
struct SignupPage {
    layout: Layout,
    email: String,
    display_name: String,
    time_zone: String,
    time_zones: &'static [&'static str],
    rules: Vec<RuleView>,
    password_field: &'static str,
    error: Option<String>,
    notice: Option<String>,
}

impl SignupPage {
    fn zone_selected(&self, tz: &str) -> bool {
        tz == self.time_zone
    }
}

#[handler]
async fn signup_page(req: &Request, state: Data<&AppState>) -> Response {
    if page_session(&state, req).await.is_some() {
        return redirect("/");
    }
    let layout = visitor_layout(req, TITLE);
    let page = SignupPage {
        rules: password_rules(layout.lang, None, None),
        layout,
        email: String::new(),
        display_name: String::new(),
        time_zone: state.accounts.settings().default_time_zone.clone(),
        time_zones: time_zones(),
        password_field: "password",
        error: None,
        notice: None,
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
struct SignupForm {
    email: String,
    password: String,
    display_name: String,
    time_zone: Option<String>,
    locale: Option<String>,
}

#[handler]
async fn signup_submit(
    req: &Request,
    state: Data<&AppState>,
    Form(form): Form<SignupForm>,
) -> Response {
    let layout = visitor_layout(req, TITLE);
    let ip = client_ip(req, &state.accounts.settings().trusted_proxies);
    let request = SignupRequest {
        email: form.email.clone(),
        password: form.password.clone(),
        display_name: form.display_name.clone(),
        time_zone: form.time_zone.clone(),
        locale: form.locale.or_else(|| Some(layout.lang.code().to_owned())),
    };
    let outcome = match state.accounts.limits().signup.check(&format!("ip:{ip}")) {
        Ok(()) => signup(&state, request).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => {
            let text = signup_accepted(layout.lang);
            let heading = ("Check your inbox", "Schau in dein Postfach");
            let next = ("/login", ("Go to the login", "Zur Anmeldung"));
            MessagePage::show(layout, heading, text, Some(next), StatusCode::OK)
        }
        Err(e) => {
            let (status, text) = error_text(layout.lang, &e);
            let page = SignupPage {
                rules: password_rules(layout.lang, Some(&form.password), Some(&form.email)),
                layout,
                email: form.email,
                display_name: form.display_name,
                time_zone: form
                    .time_zone
                    .unwrap_or_else(|| state.accounts.settings().default_time_zone.clone()),
                time_zones: time_zones(),
                password_field: "password",
                error: Some(text),
                notice: None,
            };
            with_retry_after(render(&page, status), &e)
        }
    }
}

#[derive(Deserialize)]
struct CheckForm {
    password: Option<String>,
    new_password: Option<String>,
    email: Option<String>,
}

/// The rules for the password typed so far (an HTML fragment for HTMX). The signed-in user's
/// address stands in when the form has none.
#[handler]
async fn password_check(
    req: &Request,
    state: Data<&AppState>,
    Form(form): Form<CheckForm>,
) -> Response {
    let auth = page_session(&state, req).await;
    let user = auth.as_ref().map(|a| &a.user);
    let lang = page_lang(req, user);
    let email = form.email.or_else(|| user.map(|u| u.email.clone()));
    let password = form.password.or(form.new_password);
    let rules = password_rules(lang, password.as_deref(), email.as_deref());
    render(&RulesFragment { rules }, StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_pending_then_ok_or_broken() {
        let pending = password_rules(Lang::En, Some(""), None);
        assert_eq!(pending.len(), 4);
        assert!(pending.iter().all(|r| r.state == "pending"));

        let weak = password_rules(Lang::De, Some("quokka-pi-7"), Some("quokka-pi@example.org"));
        let states: Vec<_> = weak.iter().map(|r| (r.text.as_str(), r.state)).collect();
        assert_eq!(
            states,
            [
                ("Mindestens 8 Zeichen", "ok"),
                ("Mindestens eine Ziffer (0-9)", "ok"),
                ("Mindestens ein Großbuchstabe", "broken"),
                ("Kein verbreitetes, leicht zu erratendes Passwort", "ok"),
                ("Nicht deine E-Mail-Adresse", "broken"),
            ]
        );
        let long = "A1".repeat(600);
        let too_long = password_rules(Lang::En, Some(&long), None);
        assert_eq!(too_long[0].state, "broken");
        assert!(too_long[0].text.contains("1024"));
    }

    #[test]
    fn time_zones_are_canonical_names_with_the_default() {
        let zones = time_zones();
        assert!(zones.contains(&"Europe/Berlin"));
        assert!(zones.contains(&"America/Argentina/Buenos_Aires"));
        assert!(zones.contains(&"UTC"));
        assert!(!zones.contains(&"US/Eastern"));
        assert!(!zones.iter().any(|z| z.starts_with("Etc/")));
        assert!(zones.windows(2).all(|w| w[0] < w[1]));
    }
}
