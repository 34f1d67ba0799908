//! What every HTML page shares: the data behind `templates/base.html` (language, title, CSRF
//! token, the signed-in user, the active navigation entry) and the small helpers the template
//! calls (fingerprinted asset URLs, two-language texts, the navigation entries).
//!
//! A page template has a `layout: Layout` field and starts with `{% extends "base.html" %}`;
//! it fills the blocks `title` (optional, defaults to [`Layout::title`]), `content` and
//! `scripts` (only `<script src="…">` tags pointing at our own assets: the CSP forbids inline
//! script). Page-specific JSON, such as chart data, goes into a
//! `<script type="application/json">` block written with askama's `json` filter.

use crate::assets;

/// The languages of the web UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English (the default).
    #[default]
    En,
    /// German.
    De,
}

impl Lang {
    /// The language code for `<html lang>` and `?lang=`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    /// Reads a language code or tag such as `de`, `DE` or `de-AT`; `None` for other languages.
    pub fn from_code(code: &str) -> Option<Self> {
        let primary = code.trim().split(['-', '_']).next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else if primary.eq_ignore_ascii_case("de") {
            Some(Lang::De)
        } else {
            None
        }
    }
}

/// The navigation entry of the current page, highlighted in the navbar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nav {
    /// A page outside the navigation (login, errors, …).
    #[default]
    None,
    /// The start page (`/`).
    Start,
    /// The inverter list and the pages of one inverter.
    Inverters,
    /// The summary over all inverters.
    Summary,
    /// The CSV export.
    Export,
    /// The account and its API keys.
    Account,
    /// The administration pages.
    Admin,
}

/// One link of the navigation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavItem {
    /// Where it leads.
    pub href: &'static str,
    /// The text, in the page's language.
    pub label: &'static str,
    /// Whether it is the current page.
    pub active: bool,
}

/// The data of the base layout, carried by every page template as its `layout` field.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The page's language.
    pub lang: Lang,
    /// The page title (before " · deyehard").
    pub title: String,
    /// The CSRF token: in `<meta name="csrf-token">` (sent by app.js on every HTMX request)
    /// and in the log-out form.
    pub csrf_token: String,
    /// The signed-in user's email, `None` on pages for visitors (no navigation then).
    pub user_email: Option<String>,
    /// Whether the signed-in user is an administrator (shows the Admin link).
    pub is_admin: bool,
    /// The highlighted navigation entry.
    pub active: Nav,
}

impl Layout {
    /// The fingerprinted URL of an embedded asset, see [`assets::asset_url`].
    pub fn asset(&self, name: &str) -> String {
        assets::asset_url(name)
    }

    /// Picks the text for the page's language: `{{ layout.t("Log out", "Abmelden") }}`.
    pub fn t<'a>(&self, en: &'a str, de: &'a str) -> &'a str {
        match self.lang {
            Lang::En => en,
            Lang::De => de,
        }
    }

    /// The navigation entries for the signed-in user (Admin only for administrators).
    pub fn nav_items(&self) -> Vec<NavItem> {
        let entries = [
            (Nav::Start, "/", "Start", "Start"),
            (Nav::Inverters, "/inverters", "Inverters", "Wechselrichter"),
            (Nav::Summary, "/summary", "Summary", "Übersicht"),
            (Nav::Export, "/export", "Export", "Export"),
            (Nav::Account, "/account", "Account", "Konto"),
            (Nav::Admin, "/admin", "Admin", "Verwaltung"),
        ];
        entries
            .into_iter()
            .filter(|(nav, ..)| *nav != Nav::Admin || self.is_admin)
            .map(|(nav, href, en, de)| NavItem {
                href,
                label: self.t(en, de),
                active: nav == self.active,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use askama::Template;

    use super::*;
    use crate::assets::tests::external_urls;

    /// A minimal page on the base layout, written the way real pages will be.
    #[derive(Template)]
    #[template(
        ext = "html",
        source = r#"{% extends "base.html" %}
{% block content %}<p id="probe">{{ message }}</p>
<div class="chart" data-chart="power"><script type="application/json">{{ labels|json|safe }}</script></div>
{% endblock %}
{% block scripts %}<script src="{{ layout.asset("app.js") }}" defer></script>{% endblock %}"#
    )]
    struct Probe {
        layout: Layout,
        message: String,
        labels: Vec<String>,
    }

    const HOSTILE: &str = "</script><script>alert(1)</script>";

    fn render(layout: Layout) -> String {
        let page = Probe {
            layout,
            message: HOSTILE.to_owned(),
            labels: vec![HOSTILE.to_owned()],
        };
        page.render().unwrap()
    }

    fn signed_in(lang: Lang, is_admin: bool) -> Layout {
        Layout {
            lang,
            title: "Probe".to_owned(),
            csrf_token: "tok-123".to_owned(),
            user_email: Some("ann@example.org".to_owned()),
            is_admin,
            active: Nav::Summary,
        }
    }

    /// The opening tags named `tag` (`<script …>`), attributes included.
    fn tags<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
        let open = format!("<{tag}");
        html.match_indices(&open)
            .filter_map(|(at, _)| {
                let rest = &html[at..];
                let end = rest.find('>')?;
                let tag = &rest[..=end];
                // `<scripts` is not `<script`
                tag[open.len()..].starts_with([' ', '>']).then_some(tag)
            })
            .collect()
    }

    /// `on…=` event handler attributes, which the CSP blocks like inline scripts.
    fn inline_handlers(html: &str) -> Vec<&str> {
        html.match_indices(" on")
            .map(|(at, _)| &html[at + 1..])
            .filter(|rest| {
                let name_len = rest[2..].bytes().take_while(u8::is_ascii_lowercase).count();
                name_len > 0 && rest[2 + name_len..].starts_with('=')
            })
            .collect()
    }

    #[test]
    fn links_fingerprinted_assets_and_carries_the_csrf_token() {
        let html = render(signed_in(Lang::En, false));
        for name in [
            "app.css",
            "uplot.min.css",
            "app.js",
            "htmx.min.js",
            "uplot.min.js",
            "favicon.svg",
        ] {
            let url = assets::asset_url(name);
            assert!(url.starts_with(&format!("/static/{name}?v=")), "{url}");
            assert!(
                html.contains(&format!("\"{url}\"")),
                "{name} not linked as {url}"
            );
        }
        assert!(html.contains(r#"<meta name="csrf-token" content="tok-123">"#));
        assert!(
            html.contains(
                r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
            )
        );
        assert!(html.contains(r#"<html lang="en">"#));
        assert!(html.contains("<title>Probe · deyehard</title>"));
    }

    #[test]
    fn loads_nothing_from_other_hosts_and_has_no_inline_script() {
        let html = render(signed_in(Lang::De, true));
        assert_eq!(external_urls(&html), Vec::<&str>::new());
        for attr in ["src=\"//", "href=\"//", "action=\"//"] {
            assert!(!html.contains(attr), "protocol-relative URL: {attr}");
        }
        let scripts = tags(&html, "script");
        assert_eq!(scripts.len(), 5, "{scripts:?}");
        for tag in scripts {
            let own_file = tag.contains(r#" src="/static/"#);
            let data_block = tag == r#"<script type="application/json">"#;
            assert!(own_file || data_block, "inline script: {tag}");
        }
        assert_eq!(inline_handlers(&html), Vec::<&str>::new());
        assert!(!html.contains(" style="), "inline style attribute");
        assert!(!html.contains("<style"), "inline style element");
    }

    #[test]
    fn escapes_page_data_in_html_and_in_json_blocks() {
        let html = render(signed_in(Lang::En, false));
        assert!(!html.contains(HOSTILE), "unescaped markup");
        assert!(html.contains("<p id=\"probe\">&#60;/script&#62;"), "{html}");
        // the JSON block cannot be closed from inside: `<` is written as \u003c
        assert!(
            html.contains(r#"<script type="application/json">["\u003c/script\u003e"#),
            "{html}"
        );
        let hostile_email = Layout {
            user_email: Some("<b>x</b>".to_owned()),
            ..signed_in(Lang::En, false)
        };
        let html = render(hostile_email);
        assert!(!html.contains("<b>x</b>"));
    }

    #[test]
    fn navigation_for_users_admins_and_visitors() {
        let user = render(signed_in(Lang::En, false));
        for href in ["/inverters", "/summary", "/export", "/account"] {
            assert!(user.contains(&format!("href=\"{href}\"")), "{href}");
        }
        assert!(!user.contains("href=\"/admin\""));
        assert!(
            user.contains(
                r#"<a href="/summary" class="menu-active" aria-current="page">Summary</a>"#
            )
        );
        // log out is a POST form with the CSRF token
        assert!(user.contains(r#"<form method="post" action="/logout">"#));
        assert!(user.contains(r#"<input type="hidden" name="csrf_token" value="tok-123">"#));
        assert!(user.contains("ann@example.org"));
        assert!(user.contains("data-theme-toggle"));
        assert!(user.contains(r#"href="?lang=de""#));

        let admin = render(signed_in(Lang::En, true));
        assert!(admin.contains("href=\"/admin\""));

        let visitor = render(Layout {
            title: "Log in".to_owned(),
            ..Layout::default()
        });
        assert!(!visitor.contains("/logout"));
        assert!(!visitor.contains("href=\"/inverters\""));
        assert!(visitor.contains(r#"href="/login""#));
        assert!(visitor.contains("data-theme-toggle"));
    }

    #[test]
    fn german_pages_say_so_and_are_translated() {
        let html = render(signed_in(Lang::De, true));
        assert!(html.contains(r#"<html lang="de">"#));
        for text in [
            "Wechselrichter",
            "Übersicht",
            "Konto",
            "Verwaltung",
            "Abmelden",
        ] {
            assert!(html.contains(text), "{text}");
        }
        assert!(!html.contains(">Log out<"));
    }

    #[test]
    fn no_data_theme_from_the_server() {
        // DaisyUI's prefers-color-scheme rule needs <html> without data-theme; app.js sets it
        // only after a manual choice.
        let html = render(signed_in(Lang::En, false));
        assert!(!html.contains("data-theme="));
        assert!(!html.contains("<html lang=\"en\" data-theme"));
    }

    #[test]
    fn language_codes() {
        assert_eq!(Lang::from_code("de"), Some(Lang::De));
        assert_eq!(Lang::from_code("DE-at"), Some(Lang::De));
        assert_eq!(Lang::from_code("en_GB"), Some(Lang::En));
        assert_eq!(Lang::from_code(" en "), Some(Lang::En));
        assert_eq!(Lang::from_code("fr"), None);
        assert_eq!(Lang::from_code(""), None);
        assert_eq!(Lang::De.code(), "de");
    }
}
