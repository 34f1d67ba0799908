//! Security checks of the account flows over HTTP, on both store backends: every state-changing
//! page request needs the CSRF token (forms and HTMX); rate limits answer 429 with
//! `Retry-After` (page login per account and per client address, behind trusted proxies only;
//! signup, reset requests, API-key creation); expired, forged and misused links get a friendly
//! page, never a 500; logins upgrade legacy password hashes; security headers on the pages.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use deyehard_core::UserId;
use deyehard_core::auth::onetime::{OneTimeTokens, Purpose, binding_fingerprint};
use deyehard_core::auth::session::SessionKeys;
use deyehard_server::accounts::{AccountSettings, Accounts};
use deyehard_server::secrets::{SecretSources, Secrets};
use deyehard_store::{NewUser, Store, UserStore};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::account_pages::{Browser, PASSWORD, assert_not_logged, user};
use crate::support::{Backend, TestServer, TestStore};

on_both_backends!(
    every_page_post_needs_the_csrf_token,
    page_login_is_rate_limited_per_account,
    login_limit_per_address_believes_only_trusted_proxies,
    signup_reset_and_key_creation_are_rate_limited,
    expired_forged_and_misused_links_get_a_friendly_page,
    login_upgrades_legacy_password_hashes,
    account_and_admin_pages_carry_security_headers,
);

const AUTH_SECRET: &str = "an-auth-secret-for-tests-only-0123456789abcdef";

/// A server with account settings and secrets of the test's choosing.
struct CustomServer {
    base: String,
    _mail: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl CustomServer {
    async fn start(
        store: Arc<Store>,
        configure: impl FnOnce(&mut AccountSettings),
        encryption_key: &str,
    ) -> Self {
        crate::support::init_test_process();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mail = tempfile::tempdir().unwrap();
        let mut settings = AccountSettings::new(&base);
        configure(&mut settings);
        let sources = SecretSources {
            auth_secret: Some(AUTH_SECRET.to_owned()),
            encryption_key: Some(encryption_key.to_owned()),
            cookie_secure: true,
            ..SecretSources::default()
        };
        let secrets = Secrets::load(&sources, mail.path()).unwrap();
        let outbox: PathBuf = mail.path().join("outbox");
        let mailer = deyehard_server::mail::Mailer::new(
            "deyehard <noreply@example.com>",
            &base,
            None,
            Some(outbox),
        )
        .unwrap();
        let accounts = Accounts::new(settings, secrets, mailer);
        let state = deyehard_server::AppState::new(
            store,
            accounts,
            &deyehard_server::IngestOptions::default(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(deyehard_server::run_with(listener, state, async move {
            let _ = stopped.await;
        }));
        Self {
            base,
            _mail: mail,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// Every page route that changes something (ids of existing rows where the route takes one).
fn state_changing_routes(user: UserId) -> Vec<String> {
    let mut routes: Vec<String> = [
        "/login",
        "/logout",
        "/signup",
        "/password/check",
        "/verify/resend",
        "/reset-password",
        "/reset-password/request",
        "/account/profile",
        "/account/password",
        "/account/email",
        "/account/logout-everywhere",
        "/account/delete",
        "/account/keys",
        "/account/keys/1/revoke",
        "/admin/inverters/1/owner",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    routes.push(format!("/admin/users/{user}/flags"));
    routes.push(format!("/admin/users/{user}/delete"));
    routes
}

async fn every_page_post_needs_the_csrf_token(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    user(&db, "root@example.com", true, true).await;
    let bob = user(&db, "bob@example.com", true, false).await;
    let mut admin = Browser::new(&srv);
    admin.login("root@example.com", PASSWORD).await;
    let fields = [
        ("email", "bob@example.com"),
        ("password", PASSWORD),
        ("confirm", "yes"),
        ("is_active", "false"),
        ("is_verified", "false"),
        ("is_superuser", "false"),
    ];
    let forged = "0".repeat(64);
    for route in state_changing_routes(bob) {
        let attempts = [
            (
                "a form without the token",
                admin.request(Method::POST, &route),
            ),
            (
                "an HTMX request without the header",
                admin
                    .request(Method::POST, &route)
                    .header("hx-request", "true"),
            ),
            (
                "an HTMX request with a wrong token",
                admin
                    .request(Method::POST, &route)
                    .header("hx-request", "true")
                    .header("x-csrf-token", &forged),
            ),
        ];
        for (what, request) in attempts {
            let status = request.form(&fields).send().await.unwrap().status();
            assert_eq!(status, StatusCode::FORBIDDEN, "{route}: {what}");
        }
        let mut with_wrong_field = vec![("csrf_token", forged.as_str())];
        with_wrong_field.extend_from_slice(&fields);
        let status = admin
            .request(Method::POST, &route)
            .form(&with_wrong_field)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::FORBIDDEN, "{route}: a wrong form token");
    }
    // A page's token without the cookie it belongs to (another site's form) is refused too.
    let stranger = crate::support::http_client()
        .post(srv.url("/account/logout-everywhere"))
        .form(&[("csrf_token", admin.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), StatusCode::FORBIDDEN);
    // Nothing happened: the session lives, bob is still there and active.
    assert_eq!(admin.get("/account").await.status, StatusCode::OK);
    let bob_now = db.store.user_by_id_unscoped(bob).await.unwrap().unwrap();
    assert!(bob_now.is_active && bob_now.is_verified);
    // With the token, HTMX and forms pass.
    let check = admin
        .htmx_post("/password/check", &[("password", "x")])
        .await;
    assert_eq!(check.status, StatusCode::OK);
    assert_eq!(
        admin.post("/logout", &[]).await.status,
        StatusCode::SEE_OTHER
    );
    srv.stop().await;
}

async fn page_login_is_rate_limited_per_account(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    user(&db, "root@example.com", true, true).await;
    let mut b = Browser::new(&srv);
    b.get("/login").await;
    let attempt = |email: &'static str| [("email", email), ("password", "Wrong-Pass-1")];
    for _ in 0..5 {
        let page = b.post("/login", &attempt("root@example.com")).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(page.html.contains("Email or password is wrong."));
    }
    // The admin's login is a login like any other: limited too, even with the right password.
    let limited = b
        .post(
            "/login",
            &[("email", "ROOT@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        limited.html.contains("Too many attempts"),
        "{}",
        limited.html
    );
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(
        limited
            .cookies
            .iter()
            .all(|c| !c.starts_with("deyehard_session"))
    );
    // Another account from the same address is not affected.
    let other = b.post("/login", &attempt("nina@example.com")).await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
    srv.stop().await;
}

/// 21 failed logins (the per-address burst is 20), each for another account.
async fn failed_logins_from(b: &mut Browser, forwarded_for: impl Fn(usize) -> String) -> Vec<u16> {
    b.get("/login").await;
    let mut statuses = Vec::new();
    for i in 0..21 {
        let email = format!("user{i}@example.com");
        let resp = b
            .request(Method::POST, "/login")
            .header("x-forwarded-for", forwarded_for(i))
            .form(&[
                ("csrf_token", b.csrf.as_str()),
                ("email", email.as_str()),
                ("password", "Wrong-Pass-1"),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    statuses
}

async fn login_limit_per_address_believes_only_trusted_proxies(backend: Backend) {
    let db = TestStore::new(backend).await;
    // Behind a trusted proxy: the address in X-Forwarded-For is the client.
    let key = OneTimeTokens::generate_key();
    let proxied = CustomServer::start(
        db.store.clone(),
        |s| s.trusted_proxies = "127.0.0.1".parse().unwrap(),
        &key,
    )
    .await;
    let mut b = Browser::at(&proxied.base);
    let statuses = failed_logins_from(&mut b, |_| "203.0.113.7".to_owned()).await;
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[20], 429, "the 21st from one client address");
    let elsewhere = failed_logins_from(&mut b, |_| "203.0.113.8".to_owned()).await;
    assert_eq!(elsewhere[0], 401, "another client behind the same proxy");
    proxied.stop().await;

    // Without trusted proxies the header is ignored: a client cannot pick its address.
    let srv = TestServer::start(&db).await;
    let mut b = Browser::new(&srv);
    let statuses = failed_logins_from(&mut b, |i| format!("198.51.100.{i}")).await;
    assert_eq!(statuses[20], 429, "{statuses:?}");
    srv.stop().await;
}

async fn signup_reset_and_key_creation_are_rate_limited(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let mut b = Browser::new(&srv);
    b.get("/signup").await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let email = format!("new{i}@example.com");
        let page = b
            .post(
                "/signup",
                &[
                    ("email", &email),
                    ("password", PASSWORD),
                    ("display_name", "N"),
                ],
            )
            .await;
        statuses.push(page.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);

    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..4 {
        let page = b
            .post("/reset-password/request", &[("email", "new0@example.com")])
            .await;
        statuses.push(page.status.as_u16());
        last = Some(page);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let last = last.unwrap();
    assert!(last.headers.get("retry-after").is_some());
    assert!(last.html.contains("Too many attempts"));

    user(&db, "keys@example.com", true, false).await;
    let c = crate::support::http_client();
    let token: Value = c
        .post(srv.url("/api/auth/token"))
        .json(&json!({"email": "keys@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["access_token"].as_str().unwrap();
    let mut statuses = Vec::new();
    for i in 0..11 {
        let resp = c
            .post(srv.url("/api/keys"))
            .bearer_auth(bearer)
            .json(&json!({"name": format!("k{i}")}))
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(resp.headers().get("retry-after").is_some());
        }
        statuses.push(resp.status().as_u16());
    }
    assert!(statuses[..10].iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(statuses[10], 429);
    srv.stop().await;
}

async fn expired_forged_and_misused_links_get_a_friendly_page(backend: Backend) {
    let db = TestStore::new(backend).await;
    let key = OneTimeTokens::generate_key();
    let srv = CustomServer::start(db.store.clone(), |_| {}, &key).await;
    let tokens = OneTimeTokens::new(&key).unwrap();
    let id = user(&db, "eve@example.com", false, false).await;
    let hash = db
        .store
        .user_by_id_unscoped(id)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    let now = Utc::now();
    let expired_verify = tokens.seal(
        Purpose::VerifyEmail,
        id,
        "eve@example.com",
        now - TimeDelta::hours(25),
    );
    let fresh_verify = tokens.seal(Purpose::VerifyEmail, id, "eve@example.com", now);
    let fingerprint = binding_fingerprint(&hash);
    let expired_reset = tokens.seal(
        Purpose::ResetPassword,
        id,
        &fingerprint,
        now - TimeDelta::hours(2),
    );
    let fresh_reset = tokens.seal(Purpose::ResetPassword, id, &fingerprint, now);
    let expired_change = tokens.seal(
        Purpose::ChangeEmail,
        id,
        "eve@new.example\neve@example.com",
        now - TimeDelta::hours(25),
    );
    let mut b = Browser::at(&srv.base);

    let cases = [
        (
            format!("/verify?token={expired_verify}"),
            "This link has expired",
        ),
        (
            "/verify?token=gAAAAABforged".to_owned(),
            "This link is invalid.",
        ),
        (
            format!("/verify?token={fresh_reset}"),
            "not meant for this action",
        ),
        ("/verify".to_owned(), "This link is invalid."),
        (
            format!("/confirm-email?token={expired_change}"),
            "This link has expired",
        ),
        (
            format!("/confirm-email?token={fresh_verify}"),
            "not meant for this action",
        ),
    ];
    for (path, text) in cases {
        let page = b.get(&path).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(page.html.contains(text), "{path}: {}", page.html);
    }
    let german = b
        .get(&format!("/verify?token={expired_verify}&lang=de"))
        .await;
    assert!(
        german.html.contains("Dieser Link ist abgelaufen"),
        "{}",
        german.html
    );
    b.get("/login?lang=en").await;

    // The reset form: an expired link, a link for something else, a policy failure.
    for (token, password, text) in [
        (
            expired_reset.as_str(),
            "Fresh-Pass-88",
            "This link has expired",
        ),
        (
            fresh_verify.as_str(),
            "Fresh-Pass-88",
            "not meant for this action",
        ),
        (fresh_reset.as_str(), "weak", "at least 8 characters"),
    ] {
        let page = b
            .post(
                "/reset-password",
                &[("token", token), ("password", password)],
            )
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{text}");
        assert!(page.html.contains(text), "{text}: {}", page.html);
    }
    // The JSON API answers 422 with the same words.
    let c = crate::support::http_client();
    let api = c
        .post(format!("{}/api/auth/verify", srv.base))
        .json(&json!({"token": expired_verify}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(api.text().await.unwrap().contains("expired"));

    // An expired session cookie sends the visitor to the login page.
    let sessions = SessionKeys::new(AUTH_SECRET.as_bytes()).unwrap();
    let old = sessions.issue(id, 1, now - TimeDelta::days(3)).unwrap();
    let resp = c
        .get(format!("{}/account", srv.base))
        .header("cookie", format!("deyehard_session={old}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/login?next=%2Faccount");
    assert_not_logged(&[&expired_verify, &fresh_reset, &old]);
    srv.stop().await;
}

/// An argon2id hash with the original service's parameters (m=65536, t=3, p=4).
const LEGACY_ARGON2: &str = "$argon2id$v=19$m=65536,t=3,p=4$MDEyMzQ1Njc4OWFiY2RlZg$vPv6Y/WtBv9WP+WEoHI8ceMGD4P06vAVr87QXWQj5/0";
/// A bcrypt hash (cost 10) of an account imported from the original service.
const LEGACY_BCRYPT: &str = "$2b$10$oWo009Dsu/pmOpnXilh3EOTygiwEy0yMf.3S/z2zUywgq4cWzHggG";
const OUR_PARAMETERS: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

async fn login_upgrades_legacy_password_hashes(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    for (email, hash) in [
        ("argon@example.com", LEGACY_ARGON2),
        ("bcrypt@example.com", LEGACY_BCRYPT),
    ] {
        db.store
            .create_user(&NewUser {
                email: email.to_owned(),
                password_hash: hash.to_owned(),
                display_name: "Imported".to_owned(),
                time_zone: None,
                locale: None,
                is_verified: true,
                is_superuser: false,
            })
            .await
            .unwrap();
    }
    let stored = |email: &'static str| {
        let store = db.store.clone();
        async move { store.user_by_email_unscoped(email).await.unwrap().unwrap() }
    };

    // A wrong password changes nothing.
    let mut b = Browser::new(&srv);
    b.get("/login").await;
    let wrong = b
        .post(
            "/login",
            &[("email", "argon@example.com"), ("password", "Wrong-Pass-1")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        stored("argon@example.com").await.password_hash,
        LEGACY_ARGON2
    );

    // The login page upgrades an argon2id hash with old parameters …
    b.login("argon@example.com", "Legacy-Argon-42").await;
    let upgraded = stored("argon@example.com").await;
    assert!(
        upgraded.password_hash.starts_with(OUR_PARAMETERS),
        "{upgraded:?}"
    );
    assert_eq!(upgraded.session_version, 1, "sessions survive the upgrade");
    assert_eq!(b.get("/account").await.status, StatusCode::OK);
    Browser::new(&srv)
        .login("argon@example.com", "Legacy-Argon-42")
        .await;

    // … and the token endpoint a bcrypt hash.
    let c = crate::support::http_client();
    let login = |password: &'static str| {
        c.post(srv.url("/api/auth/token"))
            .json(&json!({"email": "bcrypt@example.com", "password": password}))
            .send()
    };
    assert_eq!(
        login("Legacy-Bcrypt-42").await.unwrap().status(),
        StatusCode::OK
    );
    let upgraded = stored("bcrypt@example.com").await;
    assert!(upgraded.password_hash.starts_with(OUR_PARAMETERS));
    assert_eq!(
        login("Legacy-Bcrypt-42").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        login("Legacy-Bcrypt-43").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_not_logged(&["Legacy-Argon-42", "Legacy-Bcrypt-42"]);
    srv.stop().await;
}

async fn account_and_admin_pages_carry_security_headers(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    user(&db, "root@example.com", true, true).await;
    let mut b = Browser::new(&srv);
    let mut pages = vec![b.get("/login").await, b.get("/signup").await];
    b.login("root@example.com", PASSWORD).await;
    for path in ["/account", "/account/keys", "/admin", "/admin/users"] {
        let page = b.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        pages.push(page);
    }
    for page in pages {
        let h = &page.headers;
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(
            h["strict-transport-security"]
                .to_str()
                .unwrap()
                .contains("max-age=")
        );
        assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(!page.html.contains("<script>") && !page.html.contains(" onclick="));
    }
    srv.stop().await;
}
