//! The account pages over HTTP against the in-process server, on both store backends, the way
//! a browser without JavaScript uses them (plain form posts with the CSRF field, cookies, no
//! redirects followed automatically) plus the HTMX password check: signup → verification link
//! from the outbox → login → keys; account changes (profile and language, password, email,
//! log out everywhere, deletion); the admin pages and their JSON counterparts. The logs are
//! checked for leaked secrets after every flow.

use deyehard_core::{InverterKind, LoggerSerial, TenantScope, UserId};
use deyehard_store::{
    ApiKeyStore, InverterFields, InverterStore, NewUser, RawFrameInput, Store,
    UnclaimedLoggerStore, UserStore,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Backend, TestServer, TestStore, captured_logs, link_in};

pub const PASSWORD: &str = "Sunny-Roof-42";
const NEW_PASSWORD: &str = "Cloudy-Day-77";

on_both_backends!(
    signup_page_verify_login_and_keys,
    unverified_accounts_cannot_create_keys_and_can_resend,
    account_page_changes_profile_password_email_and_sessions,
    deleting_the_account_from_the_page_leaves_nothing,
    admin_pages_manage_users_inverters_and_conflicts,
    admin_json_endpoints_reassign_and_list,
);

/// A page as the browser got it.
pub struct Page {
    pub status: StatusCode,
    pub html: String,
    pub location: Option<String>,
    pub cookies: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
}

/// A browser without JavaScript: a cookie jar, no redirects followed, the CSRF token of the
/// last page it saw.
pub struct Browser {
    client: reqwest::Client,
    base: String,
    pub csrf: String,
}

/// The `content` of `<meta name="csrf-token">`.
fn csrf_in(html: &str) -> Option<String> {
    let marker = r#"<meta name="csrf-token" content=""#;
    let at = html.find(marker)? + marker.len();
    Some(html[at..].split('"').next()?.to_owned())
}

impl Browser {
    pub fn new(srv: &TestServer) -> Self {
        Self::at(&srv.base)
    }

    pub fn at(base: &str) -> Self {
        crate::support::init_test_process();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .timeout(crate::support::STEP)
            .build()
            .expect("client");
        Self {
            client,
            base: base.to_owned(),
            csrf: String::new(),
        }
    }

    /// Reads an answer as a page (and keeps its CSRF token).
    pub async fn page(&mut self, resp: reqwest::Response) -> Page {
        let status = resp.status();
        let headers = resp.headers().clone();
        let location = headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let cookies = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let html = resp.text().await.unwrap();
        if let Some(token) = csrf_in(&html).filter(|t| !t.is_empty()) {
            self.csrf = token;
        }
        Page {
            status,
            html,
            location,
            cookies,
            headers,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        self.page(resp).await
    }

    /// A form post with the CSRF field (fetching a page first if none was seen yet).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        if self.csrf.is_empty() {
            self.get("/login").await;
        }
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", self.csrf.as_str())];
        form.extend_from_slice(fields);
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .form(&form)
            .send()
            .await
            .unwrap();
        self.page(resp).await
    }

    /// A post as HTMX sends it: the token in `X-CSRF-Token`, `HX-Request: true`.
    pub async fn htmx_post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("hx-request", "true")
            .header("x-csrf-token", &self.csrf)
            .form(fields)
            .send()
            .await
            .unwrap();
        self.page(resp).await
    }

    /// A raw request through the same cookie jar (for CSRF and JSON checks).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// Logs in through the login page and checks the redirect.
    pub async fn login(&mut self, email: &str, password: &str) {
        self.get("/login").await;
        let page = self
            .post("/login", &[("email", email), ("password", password)])
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        assert_eq!(page.location.as_deref(), Some("/"));
    }
}

/// A user made in the store with `PASSWORD`.
pub async fn user(db: &TestStore, email: &str, verified: bool, superuser: bool) -> UserId {
    let hash = deyehard_core::auth::password::hash_password(PASSWORD)
        .unwrap()
        .into_string();
    db.store
        .create_user(&NewUser {
            email: email.to_owned(),
            password_hash: hash,
            display_name: email.split('@').next().unwrap().to_owned(),
            time_zone: Some("Europe/Berlin".to_owned()),
            locale: None,
            is_verified: verified,
            is_superuser: superuser,
        })
        .await
        .unwrap()
        .id
}

/// The site path of a link in a mail.
fn path_of(srv: &TestServer, link: &str) -> String {
    link.strip_prefix(&srv.base).unwrap().to_owned()
}

/// The text between `start` and the next `end` after it.
fn between<'a>(html: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let at = html.find(start)? + start.len();
    Some(&html[at..at + html[at..].find(end)?])
}

pub fn assert_not_logged(secrets: &[&str]) {
    let logs = captured_logs();
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !logs.contains(secret),
            "the logs contain a secret: {secret}"
        );
    }
}

async fn signup_page_verify_login_and_keys(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let mut b = Browser::new(&srv);
    let page = b.get("/signup").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("<title>Sign up · deyehard</title>"));
    assert!(
        page.html
            .contains(r#"<option value="Europe/Berlin" selected>"#)
    );
    assert!(page.html.contains(r#"hx-post="/password/check""#));
    let german = Browser::new(&srv).get("/signup?lang=de").await;
    assert!(german.html.contains("Konto anlegen") && german.html.contains("Zeitzone"));

    // The live check answers a fragment with the rule states.
    let weak = b
        .htmx_post(
            "/password/check",
            &[("password", "abc"), ("email", "anna@example.com")],
        )
        .await;
    assert_eq!(weak.status, StatusCode::OK);
    assert!(
        weak.html.starts_with(r#"<ul id="password-rules""#),
        "{}",
        weak.html
    );
    assert!(weak.html.contains("text-error") && weak.html.contains("At least 8 characters"));
    let strong = b
        .htmx_post(
            "/password/check",
            &[("password", PASSWORD), ("email", "anna@example.com")],
        )
        .await;
    assert!(!strong.html.contains("text-error"), "{}", strong.html);

    let form = |password: &'static str| {
        [
            ("email", "anna@example.com"),
            ("password", password),
            ("display_name", "Anna"),
            ("time_zone", "Europe/Vienna"),
            ("locale", "en"),
        ]
    };
    let refused = b.post("/signup", &form("password")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.html.contains("at least one digit"),
        "{}",
        refused.html
    );
    assert!(refused.html.contains(r#"value="anna@example.com""#));
    assert!(
        refused
            .html
            .contains(r#"<option value="Europe/Vienna" selected>"#)
    );
    let done = b.post("/signup", &form(PASSWORD)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.html);
    let again = Browser::new(&srv)
        .post(
            "/signup",
            &[
                ("email", "Anna@Example.com"),
                ("password", NEW_PASSWORD),
                ("display_name", "Someone"),
            ],
        )
        .await;
    let said = |p: &Page| between(&p.html, "<p>", "</p>").unwrap().to_owned();
    assert_eq!(
        said(&done),
        said(&again),
        "signup never tells whether the address exists"
    );
    assert_eq!(again.status, done.status);

    let mails = srv.wait_for_mails("anna@example.com", 2).await;
    let link = link_in(&mails[0], &srv.url("/verify?token=")).expect("verification link");
    assert!(mails[1].contains("already have an account"));
    let verified = b.get(&path_of(&srv, &link)).await;
    assert_eq!(verified.status, StatusCode::OK);
    assert!(verified.html.contains("Email confirmed"));
    let reused = b.get(&path_of(&srv, &link)).await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);
    assert!(reused.html.contains("already been used"), "{}", reused.html);

    b.login("anna@example.com", PASSWORD).await;
    assert_eq!(b.get("/login").await.status, StatusCode::SEE_OTHER);
    let account = b.get("/account").await;
    assert_eq!(account.status, StatusCode::OK);
    assert!(account.html.contains("anna@example.com"));
    assert!(
        account
            .html
            .contains(r#"<option value="Europe/Vienna" selected>"#)
    );

    // Keys: the secret once, then only name and prefix.
    assert!(
        b.get("/account/keys")
            .await
            .html
            .contains("no API keys yet")
    );
    let created = b.post("/account/keys", &[("name", "DTU <roof>")]).await;
    assert_eq!(created.status, StatusCode::OK);
    let key = between(&created.html, r#"<code id="new-key""#, "</code>")
        .and_then(|s| s.split('>').nth(1))
        .unwrap()
        .to_owned();
    assert!(key.starts_with("dh_"), "{key}");
    assert!(
        created.html.contains("DTU &#60;roof&#62;"),
        "names are escaped"
    );
    let hash = deyehard_core::auth::api_key::hash(&key);
    assert!(
        db.store
            .resolve_api_key_unscoped(&hash)
            .await
            .unwrap()
            .is_some()
    );
    let listed = b.get("/account/keys").await;
    assert!(!listed.html.contains(&key) && listed.html.contains("DTU &#60;roof&#62;"));
    let id = between(&listed.html, r#"action="/account/keys/"#, "/revoke")
        .unwrap()
        .to_owned();

    // Another user's key id is simply not there.
    user(&db, "kurt@example.com", true, false).await;
    let mut other = Browser::new(&srv);
    other.login("kurt@example.com", PASSWORD).await;
    let foreign = other.post(&format!("/account/keys/{id}/revoke"), &[]).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert!(
        db.store
            .resolve_api_key_unscoped(&hash)
            .await
            .unwrap()
            .is_some()
    );

    let revoked = b.post(&format!("/account/keys/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(
        revoked.location.as_deref(),
        Some("/account/keys?done=revoked")
    );
    assert!(
        b.get("/account/keys?done=revoked")
            .await
            .html
            .contains("revoked")
    );
    assert!(
        db.store
            .resolve_api_key_unscoped(&hash)
            .await
            .unwrap()
            .is_none()
    );
    assert_not_logged(&[PASSWORD, &key, &link, link.split("token=").nth(1).unwrap()]);
    srv.stop().await;
}

async fn unverified_accounts_cannot_create_keys_and_can_resend(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    user(&db, "lena@example.com", false, false).await;
    let mut b = Browser::new(&srv);
    b.login("lena@example.com", PASSWORD).await;
    let keys = b.get("/account/keys").await;
    assert!(keys.html.contains("not confirmed yet"), "{}", keys.html);
    assert!(
        !keys.html.contains(r#"action="/account/keys""#),
        "no create form"
    );
    let refused = b.post("/account/keys", &[("name", "x")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused
            .html
            .contains("Please confirm your email address first")
    );
    let german = b.post("/account/keys?lang=de", &[("name", "x")]).await;
    assert!(
        german
            .html
            .contains("Bitte bestätige zuerst deine E-Mail-Adresse")
    );
    b.get("/account?lang=en").await;

    // Resend from the account page's button and from the visitor page: one answer for all.
    let sent = b
        .post("/verify/resend", &[("email", "lena@example.com")])
        .await;
    assert_eq!(sent.status, StatusCode::OK);
    let mut visitor = Browser::new(&srv);
    assert!(
        visitor
            .get("/verify/resend")
            .await
            .html
            .contains(r#"name="email""#)
    );
    let unknown = visitor
        .post("/verify/resend", &[("email", "nobody@example.com")])
        .await;
    assert_eq!(
        between(&sent.html, "<p>", "</p>"),
        between(&unknown.html, "<p>", "</p>")
    );
    let mail = srv.wait_for_mails("lena@example.com", 1).await.remove(0);
    let link = link_in(&mail, &srv.url("/verify?token=")).unwrap();
    // The third request from this address still passes, the fourth is refused.
    visitor
        .post("/verify/resend", &[("email", "x@example.com")])
        .await;
    let limited = visitor
        .post("/verify/resend", &[("email", "y@example.com")])
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.html.contains("Too many attempts"));
    assert!(limited.headers.get("retry-after").is_some());

    assert_eq!(b.get(&path_of(&srv, &link)).await.status, StatusCode::OK);
    let created = b.post("/account/keys", &[("name", "now")]).await;
    assert_eq!(created.status, StatusCode::OK);
    assert!(created.html.contains(r#"<code id="new-key""#));
    assert_not_logged(&[&link]);
    srv.stop().await;
}

async fn account_page_changes_profile_password_email_and_sessions(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    user(&db, "fritz@example.com", true, false).await;
    let mut b = Browser::new(&srv);
    b.login("fritz@example.com", PASSWORD).await;
    let mut phone = Browser::new(&srv);
    phone.login("fritz@example.com", PASSWORD).await;

    // Profile and language: the saved language sets the page language cookie.
    let bad = b
        .post(
            "/account/profile",
            &[
                ("display_name", "Fritz"),
                ("time_zone", "Mars/Base"),
                ("locale", "de"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("Mars/Base"), "{}", bad.html);
    let saved = b
        .post(
            "/account/profile",
            &[
                ("display_name", "Fritz F."),
                ("time_zone", "Asia/Tokyo"),
                ("locale", "de"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert!(
        saved
            .cookies
            .iter()
            .any(|c| c.starts_with("deyehard_lang=de"))
    );
    let german = b.get("/account?done=profile").await;
    assert!(german.html.contains("Dein Profil ist gespeichert."));
    assert!(
        german
            .html
            .contains(r#"<option value="Asia/Tokyo" selected>"#)
    );
    let me = db
        .store
        .user_by_email_unscoped("fritz@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (me.display_name.as_str(), me.locale.as_str()),
        ("Fritz F.", "de")
    );
    b.get("/account?lang=en").await;

    // Password: the current one is required, and it really changes.
    let wrong = b
        .post(
            "/account/password",
            &[
                ("current_password", "Wrong-Pass-1"),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.html.contains("The current password is not correct."));
    let weak = b
        .post(
            "/account/password",
            &[("current_password", PASSWORD), ("new_password", "short")],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    let changed = b
        .post(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    assert!(
        changed
            .cookies
            .iter()
            .any(|c| c.starts_with("deyehard_session="))
    );
    assert_eq!(
        b.get("/account").await.status,
        StatusCode::OK,
        "this browser carries on"
    );
    let ended = phone.get("/account").await;
    assert_eq!(
        ended.status,
        StatusCode::SEE_OTHER,
        "the other session ended"
    );
    assert_eq!(ended.location.as_deref(), Some("/login?next=%2Faccount"));
    let mut fresh = Browser::new(&srv);
    fresh.get("/login").await;
    let old = fresh
        .post(
            "/login",
            &[("email", "fritz@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    fresh.login("fritz@example.com", NEW_PASSWORD).await;

    // Email: password required; a link to the new address, a notice to the old one.
    let refused = b
        .post(
            "/account/email",
            &[("new_email", "fritz@new.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let requested = b
        .post(
            "/account/email",
            &[
                ("new_email", "fritz@new.example"),
                ("password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(requested.location.as_deref(), Some("/account?done=email"));
    let link_mail = srv.wait_for_mails("fritz@new.example", 1).await.remove(0);
    let notice = srv.wait_for_mails("fritz@example.com", 1).await.remove(0);
    assert!(notice.contains("fritz@new.example") && !notice.contains("confirm-email"));
    let link = link_in(&link_mail, &srv.url("/confirm-email?token=")).unwrap();
    let confirmed = Browser::new(&srv).get(&path_of(&srv, &link)).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.html);
    Browser::new(&srv)
        .login("fritz@new.example", NEW_PASSWORD)
        .await;

    // Log out everywhere: this browser and the others.
    let out = b.post("/account/logout-everywhere", &[]).await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(
        out.cookies
            .iter()
            .any(|c| c.starts_with("deyehard_session=;"))
    );
    assert_eq!(fresh.get("/account").await.status, StatusCode::SEE_OTHER);
    assert_not_logged(&[NEW_PASSWORD, &link]);
    srv.stop().await;
}

async fn deleting_the_account_from_the_page_leaves_nothing(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let id = user(&db, "hans@example.com", true, false).await;
    let scope = TenantScope::for_tests(id);
    let fields = InverterFields {
        name: "Garage".into(),
        kind: InverterKind::Solarman,
        serial: None,
        logger_serial: Some(LoggerSerial::new(2_712_345_678)),
        rated_power_w: None,
        mppt_count: None,
    };
    db.store.create_inverter(&scope, &fields).await.unwrap();
    db.api_key(&scope).await;
    let mut b = Browser::new(&srv);
    b.login("hans@example.com", PASSWORD).await;

    let unconfirmed = b.post("/account/delete", &[("password", PASSWORD)]).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    let wrong = b
        .post(
            "/account/delete",
            &[("password", "Wrong-Pass-1"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(db.store.inverters(&scope).await.unwrap().len(), 1);
    let deleted = b
        .post(
            "/account/delete",
            &[("password", PASSWORD), ("confirm", "yes")],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert!(deleted.html.contains("Account deleted"));
    assert!(
        deleted
            .cookies
            .iter()
            .any(|c| c.starts_with("deyehard_session=;"))
    );
    assert!(db.store.user_by_id_unscoped(id).await.unwrap().is_none());
    assert!(db.store.inverters(&scope).await.unwrap().is_empty());
    assert!(db.store.api_keys(&scope).await.unwrap().is_empty());
    let other = db.user("ida@example.com").await;
    db.store
        .create_inverter(&other, &fields)
        .await
        .expect("the logger serial is free again");
    srv.stop().await;
}

/// An admin and a user with a browser each, and the user's id.
async fn admin_and_user(db: &TestStore, srv: &TestServer) -> (Browser, Browser, UserId) {
    user(db, "root@example.com", true, true).await;
    let bob = user(db, "bob@example.com", false, false).await;
    let mut admin = Browser::new(srv);
    admin.login("root@example.com", PASSWORD).await;
    let mut b = Browser::new(srv);
    b.login("bob@example.com", PASSWORD).await;
    (admin, b, bob)
}

async fn admin_pages_manage_users_inverters_and_conflicts(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let (mut admin, mut bob, bob_id) = admin_and_user(&db, &srv).await;
    for path in [
        "/admin",
        "/admin/users",
        "/admin/inverters",
        "/admin/devices",
        "/admin/conflicts",
    ] {
        assert_eq!(bob.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
        let page = admin.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
    }
    let kind = match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    let status = admin.get("/admin").await;
    assert!(status.html.contains(kind) && status.html.contains("without TimescaleDB"));

    // Users: search, verify, make admin (takes effect at once), revoke, deactivate, delete.
    let found = admin.get("/admin/users?q=BOB").await;
    assert!(
        found
            .html
            .contains(r#"<td class="break-all">bob@example.com</td>"#)
    );
    assert!(
        !found
            .html
            .contains(r#"<td class="break-all">root@example.com</td>"#)
    );
    let flags = format!("/admin/users/{bob_id}/flags");
    let set = |active: &'static str, verified: &'static str, su: &'static str| {
        [
            ("is_active", active),
            ("is_verified", verified),
            ("is_superuser", su),
            ("back", "/admin/users?q=bob"),
        ]
    };
    let done = admin.post(&flags, &set("true", "true", "true")).await;
    assert_eq!(
        done.location.as_deref(),
        Some("/admin/users?q=bob&done=flags")
    );
    assert_eq!(
        bob.get("/admin/users").await.status,
        StatusCode::OK,
        "bob is an admin now"
    );
    admin.post(&flags, &set("true", "true", "false")).await;
    assert_eq!(
        bob.get("/admin/users").await.status,
        StatusCode::FORBIDDEN,
        "re-checked"
    );
    admin.post(&flags, &set("false", "true", "false")).await;
    assert_eq!(
        bob.get("/account").await.status,
        StatusCode::SEE_OTHER,
        "deactivated"
    );
    let bob_now = db.store.user_by_id_unscoped(bob_id).await.unwrap().unwrap();
    assert!(bob_now.is_verified && !bob_now.is_active && !bob_now.is_superuser);
    let root = db
        .store
        .user_by_email_unscoped("root@example.com")
        .await
        .unwrap()
        .unwrap();
    let myself = admin
        .post(
            &format!("/admin/users/{}/flags", root.id),
            &set("false", "true", "true"),
        )
        .await;
    assert_eq!(myself.status, StatusCode::BAD_REQUEST);
    assert!(
        myself
            .html
            .contains("You cannot deactivate, demote or delete your own account")
    );

    // Inverters: search by serial, move to another owner; unknown owners are named.
    let ida = db.user("ida@example.com").await;
    let bob_scope = TenantScope::for_tests(bob_id);
    let inverter = db
        .inverter(&bob_scope, InverterKind::Opendtu, "116100000001")
        .await;
    db.inverter(&ida, InverterKind::Opendtu, "114172220003")
        .await;
    let listed = admin.get("/admin/inverters?serial=11610").await;
    assert!(listed.html.contains("116100000001") && !listed.html.contains("114172220003"));
    // Names users chose are escaped.
    let hostile = InverterFields {
        name: "<img src=x onerror=alert(1)>".into(),
        kind: InverterKind::Opendtu,
        serial: Some(deyehard_core::DeviceSerial::parse("116100000009").unwrap()),
        logger_serial: None,
        rated_power_w: None,
        mppt_count: None,
    };
    db.store.create_inverter(&ida, &hostile).await.unwrap();
    let escaped = admin.get("/admin/inverters?serial=116100000009").await;
    assert!(
        escaped
            .html
            .contains("&#60;img src=x onerror=alert(1)&#62;")
    );
    assert!(!escaped.html.contains("<img src=x"));
    let owner = format!("/admin/inverters/{}/owner", inverter.get());
    let unknown = admin
        .post(
            &owner,
            &[
                ("owner_email", "ghost@example.com"),
                ("back", "/admin/inverters"),
            ],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.html.contains("ghost@example.com"));
    let moved = admin
        .post(
            &owner,
            &[
                ("owner_email", "IDA@example.com"),
                ("back", "/admin/inverters"),
            ],
        )
        .await;
    assert_eq!(
        moved.location.as_deref(),
        Some("/admin/inverters?done=moved")
    );
    assert_eq!(
        db.store.inverter(&ida, inverter).await.unwrap().owner,
        ida.user_id()
    );

    // Devices and conflicts: an unclaimed logger, a serial pushed by one tenant and
    // registered by another, a refused logger claim.
    record_unclaimed(&db.store, 1_234_567_890).await;
    db.store
        .record_unknown_serial(&bob_scope, "114172220003", None, chrono::Utc::now())
        .await
        .unwrap();
    let devices = admin.get("/admin/devices").await;
    assert!(devices.html.contains("1234567890") && devices.html.contains("114172220003"));
    let conflicts = admin.get("/admin/conflicts").await;
    assert!(
        conflicts.html.contains("114172220003"),
        "{}",
        conflicts.html
    );
    assert!(
        conflicts
            .html
            .contains("pushed with their key, not registered")
    );

    let delete = admin
        .post(
            &format!("/admin/users/{bob_id}/delete"),
            &[("back", "/admin/users")],
        )
        .await;
    assert_eq!(
        delete.location.as_deref(),
        Some("/admin/users?done=deleted")
    );
    assert!(
        db.store
            .user_by_id_unscoped(bob_id)
            .await
            .unwrap()
            .is_none()
    );
    srv.stop().await;
}

async fn record_unclaimed(store: &Store, logger: u32) {
    let frame = RawFrameInput {
        logger_serial: LoggerSerial::new(logger),
        received_at: chrono::Utc::now(),
        control: 0x4710,
        remote_addr: Some("198.51.100.7:4711"),
        bytes: b"\xa5frame",
    };
    store.record_unclaimed_frame(&frame).await.unwrap();
}

async fn admin_json_endpoints_reassign_and_list(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    user(&db, "root@example.com", true, true).await;
    let c = crate::support::http_client();
    let token: Value = c
        .post(srv.url("/api/auth/token"))
        .json(&json!({"email": "root@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["access_token"].as_str().unwrap().to_owned();
    let a = db.user("a@example.com").await;
    let b = db.user("b@example.com").await;
    let inverter = db.inverter(&a, InverterKind::Opendtu, "116100000001").await;
    db.inverter(&b, InverterKind::Opendtu, "116100000001").await;
    let get = |path: &str| c.get(srv.url(path)).bearer_auth(&bearer).send();

    let status: Value = get("/api/admin/status")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (status["users"].as_i64(), status["inverters"].as_i64()),
        (Some(3), Some(2))
    );
    let conflicts: Value = get("/api/admin/conflicts")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(conflicts[0]["kind"], "device");
    assert_eq!(conflicts[0]["claims"].as_array().unwrap().len(), 2);
    let found: Value = get("/api/admin/inverters?serial=1161")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found.as_array().unwrap().len(), 2);
    assert_eq!(found[0]["owner_email"], "a@example.com");
    assert_eq!(
        get("/api/admin/unknown-serials").await.unwrap().status(),
        StatusCode::OK
    );

    let url = srv.url(&format!("/api/admin/inverters/{}/owner", inverter.get()));
    let put = |body: Value| c.put(&url).bearer_auth(&bearer).json(&body).send();
    let taken = put(json!({"owner_email": "b@example.com"})).await.unwrap();
    assert_eq!(
        taken.status(),
        StatusCode::CONFLICT,
        "b already has this serial"
    );
    let neither = put(json!({})).await.unwrap();
    assert_eq!(neither.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let root = db
        .store
        .user_by_email_unscoped("root@example.com")
        .await
        .unwrap()
        .unwrap();
    let moved = put(json!({"owner_id": root.id.get()})).await.unwrap();
    assert_eq!(moved.status(), StatusCode::OK);
    let body: Value = moved.json().await.unwrap();
    assert_eq!(body["owner_email"], "root@example.com");
    let conflicts: Value = get("/api/admin/conflicts")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let who: Vec<&str> = conflicts[0]["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["root@example.com", "b@example.com"]);
    let anonymous = c.get(srv.url("/api/admin/conflicts")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    srv.stop().await;
}
