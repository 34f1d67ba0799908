//! Accounts over HTTP against the in-process server, on both store backends: signup,
//! verification (links from the outbox), resend, login, logout everywhere, password reset and
//! change, account deletion, API keys, CSRF, security headers, rate limits, and the defects of
//! the original service that must not come back. Logs are checked for leaked secrets.

use deyehard_core::{InverterKind, LoggerSerial, TenantScope, UserId};
use deyehard_store::{AdminStore, InverterFields, InverterStore};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Backend, TestServer, TestStore, captured_logs, link_in};

const PASSWORD: &str = "Sunny-Roof-42";
const NEW_PASSWORD: &str = "Cloudy-Day-77";

on_both_backends!(
    signup_verify_login_and_me,
    signup_never_reveals_an_existing_account,
    verification_can_be_resent_and_is_rate_limited,
    bad_links_and_policy_failures_are_friendly_not_500,
    password_reset_end_to_end_revokes_sessions,
    change_password_really_changes_it,
    logout_everywhere_revokes_older_tokens,
    deleted_account_leaves_no_orphans_and_serials_are_free_again,
    api_keys_shown_once_hashed_and_scoped,
    unverified_users_cannot_create_keys,
    token_endpoint_is_rate_limited_per_account,
    csrf_is_enforced_for_cookie_sessions_not_for_bearer,
    pages_carry_security_headers,
    admin_rights_are_rechecked_on_every_request,
    login_page_works_without_javascript_and_redirects_when_logged_in,
);

fn client() -> reqwest::Client {
    crate::support::init_test_process();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn post(c: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    let r = c.post(url).json(&body).send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn signup(srv: &TestServer, c: &reqwest::Client, email: &str) -> (StatusCode, Value) {
    post(
        c,
        srv.url("/api/auth/signup"),
        json!({"email": email, "password": PASSWORD, "display_name": "Anna"}),
    )
    .await
}

/// Signs up, verifies through the mailed link, logs in: returns the bearer token.
async fn verified_user(srv: &TestServer, c: &reqwest::Client, email: &str) -> String {
    assert_eq!(signup(srv, c, email).await.0, StatusCode::OK);
    let mail = srv.wait_for_mails(email, 1).await.remove(0);
    let link = link_in(&mail, &srv.url("/verify?token=")).expect("verification link");
    let token = link.split("token=").nth(1).expect("token").to_owned();
    let (status, body) = post(c, srv.url("/api/auth/verify"), json!({"token": token})).await;
    assert_eq!(status, StatusCode::OK, "{body} {mail}");
    login(srv, c, email, PASSWORD).await.1["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

async fn login(
    srv: &TestServer,
    c: &reqwest::Client,
    email: &str,
    pw: &str,
) -> (StatusCode, Value) {
    post(
        c,
        srv.url("/api/auth/token"),
        json!({"email": email, "password": pw}),
    )
    .await
}

async fn me(srv: &TestServer, c: &reqwest::Client, bearer: &str) -> (StatusCode, Value) {
    let r = c
        .get(srv.url("/api/me"))
        .bearer_auth(bearer)
        .send()
        .await
        .expect("me");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn assert_not_logged(secrets: &[&str]) {
    let logs = captured_logs();
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !logs.contains(secret),
            "the logs contain a secret: {secret}"
        );
    }
}

async fn signup_verify_login_and_me(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let c = client();
    let (status, body) = signup(&srv, &c, "anna@example.com").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Unverified users can log in.
    let (status, tok) = login(&srv, &c, "anna@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tok["token_type"], "bearer");
    let early = tok["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(&srv, &c, &early).await.1["is_verified"], false);

    let mail = srv.wait_for_mails("anna@example.com", 1).await.remove(0);
    let link = link_in(&mail, &srv.url("/verify?token=")).expect("link to the verify route");
    let token = link.split("token=").nth(1).unwrap();
    assert_eq!(
        post(&c, srv.url("/api/auth/verify"), json!({"token": token}))
            .await
            .0,
        StatusCode::OK
    );
    // Single use.
    let (status, body) = post(&c, srv.url("/api/auth/verify"), json!({"token": token})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, me_body) = me(&srv, &c, &early).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me_body["is_verified"], true);
    assert_eq!(me_body["email"], "anna@example.com");
    // Wrong password and unknown account: one answer.
    let (s1, b1) = login(&srv, &c, "anna@example.com", "Wrong-Pass-1").await;
    let (s2, b2) = login(&srv, &c, "nobody@example.com", "Wrong-Pass-1").await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(b1, b2);
    assert_eq!(me(&srv, &c, "garbage").await.0, StatusCode::UNAUTHORIZED);
    assert_not_logged(&[PASSWORD, token, &early]);
    srv.stop().await;
}

async fn signup_never_reveals_an_existing_account(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let c = client();
    let first = signup(&srv, &c, "bert@example.com").await;
    let second = signup(&srv, &c, "Bert@Example.com").await;
    assert_eq!(first, second);
    assert_eq!(first.0, StatusCode::OK);
    let mails = srv.wait_for_mails("bert@example.com", 2).await;
    assert!(mails[1].contains("already have an account"), "{}", mails[1]);
    assert!(link_in(&mails[1], &srv.url("/verify?token=")).is_none());
    srv.stop().await;
}

async fn verification_can_be_resent_and_is_rate_limited(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let c = client();
    signup(&srv, &c, "cara@example.com").await;
    let url = srv.url("/api/auth/resend-verification");
    let (status, known) = post(&c, url.clone(), json!({"email": "cara@example.com"})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, unknown) = post(&c, url.clone(), json!({"email": "nobody@example.com"})).await;
    assert_eq!(known, unknown);
    let mails = srv.wait_for_mails("cara@example.com", 2).await;
    let link = link_in(&mails[1], &srv.url("/verify?token=")).expect("second link");
    let token = link.split("token=").nth(1).unwrap();
    assert_eq!(
        post(&c, srv.url("/api/auth/verify"), json!({"token": token}))
            .await
            .0,
        StatusCode::OK
    );
    // The per-address limit: 3 in a burst (2 used above).
    post(&c, url.clone(), json!({"email": "x@example.com"})).await;
    let r = c
        .post(url)
        .json(&json!({"email": "y@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    srv.stop().await;
}

async fn bad_links_and_policy_failures_are_friendly_not_500(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let c = client();
    for (path, body) in [
        ("/api/auth/verify", json!({"token": "not-a-token"})),
        (
            "/api/auth/password-reset/confirm",
            json!({"token": "gAAAAAB-garbage", "password": NEW_PASSWORD}),
        ),
        ("/api/me/email/confirm", json!({"token": ""})),
    ] {
        let (status, body) = post(&c, srv.url(path), body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("invalid"),
            "{body}"
        );
    }
    let (status, body) = post(
        &c,
        srv.url("/api/auth/signup"),
        json!({"email": "dora@example.com", "password": "password", "display_name": "Dora"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"].as_str().unwrap().contains("at least"),
        "{body}"
    );
    srv.stop().await;
}

async fn password_reset_end_to_end_revokes_sessions(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let c = client();
    let old_session = verified_user(&srv, &c, "emil@example.com").await;
    let url = srv.url("/api/auth/password-reset");
    let known = post(&c, url.clone(), json!({"email": "emil@example.com"})).await;
    let unknown = post(&c, url, json!({"email": "ghost@example.com"})).await;
    assert_eq!(known, unknown);
    assert_eq!(known.0, StatusCode::OK);
    let mails = srv.wait_for_mails("emil@example.com", 2).await;
    // The link points at a route that exists.
    let link = link_in(&mails[1], &srv.url("/reset-password?token=")).expect("reset link");
    let page = c.get(&link).send().await.unwrap();
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the reset link's route exists"
    );
    let token = link.split("token=").nth(1).unwrap();
    let confirm = srv.url("/api/auth/password-reset/confirm");
    let (status, body) = post(
        &c,
        confirm.clone(),
        json!({"token": token, "password": "short"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = post(
        &c,
        confirm.clone(),
        json!({"token": token, "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = post(
        &c,
        confirm,
        json!({"token": token, "password": "Another-Pass-9"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "single use");
    assert_eq!(me(&srv, &c, &old_session).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login(&srv, &c, "emil@example.com", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&srv, &c, "emil@example.com", NEW_PASSWORD).await.0,
        StatusCode::OK
    );
    assert_not_logged(&[token, &link, NEW_PASSWORD]);
    srv.stop().await;
}

async fn change_password_really_changes_it(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let c = client();
    let session = verified_user(&srv, &c, "fritz@example.com").await;
    let url = srv.url("/api/me/password");
    let r = c
        .post(&url)
        .bearer_auth(&session)
        .json(&json!({"current_password": "Wrong-Pass-1", "new_password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = c
        .post(&url)
        .bearer_auth(&session)
        .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let fresh = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        login(&srv, &c, "fritz@example.com", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&srv, &c, "fritz@example.com", NEW_PASSWORD).await.0,
        StatusCode::OK
    );
    assert_eq!(me(&srv, &c, &session).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&srv, &c, &fresh).await.0, StatusCode::OK);
    srv.stop().await;
}

async fn logout_everywhere_revokes_older_tokens(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let c = client();
    let a = verified_user(&srv, &c, "gert@example.com").await;
    let b = login(&srv, &c, "gert@example.com", PASSWORD).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c
        .post(srv.url("/api/auth/logout-everywhere"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("deyehard_session=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );
    assert_eq!(me(&srv, &c, &a).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&srv, &c, &b).await.0, StatusCode::UNAUTHORIZED);
    srv.stop().await;
}

async fn deleted_account_leaves_no_orphans_and_serials_are_free_again(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let c = client();
    let session = verified_user(&srv, &c, "hans@example.com").await;
    let id = me(&srv, &c, &session).await.1["id"].as_i64().unwrap();
    let fields = InverterFields {
        name: "Garage".into(),
        kind: InverterKind::Solarman,
        serial: None,
        logger_serial: Some(LoggerSerial::new(2_712_345_678)),
        rated_power_w: None,
        mppt_count: None,
    };
    let scope = TenantScope::for_tests(UserId::new(id));
    db.store.create_inverter(&scope, &fields).await.unwrap();
    let r = c
        .delete(srv.url("/api/me"))
        .bearer_auth(&session)
        .json(&json!({"password": "Wrong-Pass-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = c
        .delete(srv.url("/api/me"))
        .bearer_auth(&session)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(me(&srv, &c, &session).await.0, StatusCode::UNAUTHORIZED);
    assert!(db.store.inverters(&scope).await.unwrap().is_empty());
    let other = db.user("ida@example.com").await;
    db.store
        .create_inverter(&other, &fields)
        .await
        .expect("the serial is free again");
    srv.stop().await;
}

async fn api_keys_shown_once_hashed_and_scoped(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let c = client();
    let a = verified_user(&srv, &c, "jana@example.com").await;
    let b = verified_user(&srv, &c, "kurt@example.com").await;
    let r = c
        .post(srv.url("/api/keys"))
        .bearer_auth(&a)
        .json(&json!({"name": "DTU roof"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("dh_{}_", created["prefix"].as_str().unwrap())));
    let list = c
        .get(srv.url("/api/keys"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("DTU roof") && !list.contains(&key), "{list}");
    // The database holds only the hash.
    let resolved = deyehard_store::ApiKeyStore::resolve_api_key_unscoped(
        &*db.store,
        &deyehard_core::auth::api_key::hash(&key),
    )
    .await
    .unwrap();
    assert!(resolved.is_some());
    let id = created["id"].as_i64().unwrap();
    // Another tenant's id is simply not there.
    let r = c
        .delete(srv.url(&format!("/api/keys/{id}")))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = c
        .delete(srv.url(&format!("/api/keys/{id}")))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let list: Value = c
        .get(srv.url("/api/keys"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list[0]["revoked_at"].is_string(), "{list}");
    assert_not_logged(&[&key]);
    srv.stop().await;
}

async fn unverified_users_cannot_create_keys(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let c = client();
    signup(&srv, &c, "lena@example.com").await;
    let session = login(&srv, &c, "lena@example.com", PASSWORD).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c
        .post(srv.url("/api/keys"))
        .bearer_auth(&session)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("confirm your email"),
        "{body}"
    );
    srv.stop().await;
}

async fn token_endpoint_is_rate_limited_per_account(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let c = client();
    for _ in 0..5 {
        assert_eq!(
            login(&srv, &c, "max@example.com", "Wrong-Pass-1").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = c
        .post(srv.url("/api/auth/token"))
        .json(&json!({"email": "MAX@example.com", "password": "Wrong-Pass-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // Another account from the same address is still allowed.
    assert_eq!(
        login(&srv, &c, "nina@example.com", "Wrong-Pass-1").await.0,
        StatusCode::UNAUTHORIZED
    );
    srv.stop().await;
}

async fn csrf_is_enforced_for_cookie_sessions_not_for_bearer(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let c = client();
    let session = verified_user(&srv, &c, "olga@example.com").await;
    let r = c.get(srv.url("/api/auth/csrf")).send().await.unwrap();
    let csrf_cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let token = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let cookies = format!("deyehard_session={session}; {csrf_cookie}");
    let create = |header: Option<&str>| {
        let mut req = c
            .post(srv.url("/api/keys"))
            .header("cookie", &cookies)
            .json(&json!({"name": "k"}));
        if let Some(h) = header {
            req = req.header("x-csrf-token", h);
        }
        req.send()
    };
    assert_eq!(create(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        create(Some("0".repeat(64).as_str()))
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        create(Some(&token)).await.unwrap().status(),
        StatusCode::CREATED
    );
    // A token without its cookie is worthless.
    let r = c
        .post(srv.url("/api/keys"))
        .header("cookie", format!("deyehard_session={session}"))
        .header("x-csrf-token", &token)
        .json(&json!({"name": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Pages: a form post without a token is refused.
    let r = c
        .post(srv.url("/login"))
        .form(&[("email", "olga@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Bearer calls are not subject to CSRF.
    let r = c
        .post(srv.url("/api/keys"))
        .bearer_auth(&session)
        .json(&json!({"name": "k2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    srv.stop().await;
}

async fn pages_carry_security_headers(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let r = client().get(srv.url("/healthz")).send().await.unwrap();
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(
        h["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    srv.stop().await;
}

async fn admin_rights_are_rechecked_on_every_request(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let c = client();
    let hash = deyehard_core::auth::password::hash_password(PASSWORD)
        .unwrap()
        .into_string();
    let mut ids = Vec::new();
    for email in ["root@example.com", "root2@example.com"] {
        let user = deyehard_store::UserStore::create_user(
            &*db.store,
            &deyehard_store::NewUser {
                email: email.into(),
                password_hash: hash.clone(),
                display_name: "Root".into(),
                time_zone: None,
                locale: None,
                is_verified: true,
                is_superuser: true,
            },
        )
        .await
        .unwrap();
        ids.push(user.id);
    }
    let plain = verified_user(&srv, &c, "pia@example.com").await;
    let admin = login(&srv, &c, "root@example.com", PASSWORD).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let users = c
        .get(srv.url("/api/admin/users?q=pia"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), StatusCode::OK);
    let users: Value = users.json().await.unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(
        c.get(srv.url("/api/admin/users"))
            .bearer_auth(&plain)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.get(srv.url("/api/admin/status"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // Another admin revokes the first one's rights: the still valid token no longer grants them.
    let other = deyehard_store::AdminActor::new(&TenantScope::for_tests(ids[1]));
    let flags = deyehard_store::UserFlags {
        is_active: true,
        is_verified: true,
        is_superuser: false,
    };
    db.store
        .admin_set_user_flags(other, ids[0], flags)
        .await
        .unwrap();
    assert_eq!(
        c.get(srv.url("/api/admin/users"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(me(&srv, &c, &admin).await.0, StatusCode::OK);
    srv.stop().await;
}

async fn login_page_works_without_javascript_and_redirects_when_logged_in(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    verified_user(&srv, &c, "quinn@example.com").await;
    let page = c.get(srv.url("/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<title>Log in · deyehard</title>")
            && html.contains("<link rel=\"stylesheet\" href=\"/static/app.css?v="),
        "the login page is built on the base layout"
    );
    let marker = "name=\"csrf_token\" value=\"";
    let at = html.find(marker).expect("a CSRF field in the form") + marker.len();
    let token = html[at..].split('"').next().unwrap().to_owned();
    let bad = c
        .post(srv.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "quinn@example.com"),
            ("password", "Wrong-Pass-1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let ok = c
        .post(srv.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "quinn@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Secure"),
        "{cookie}"
    );
    let again = c.get(srv.url("/login")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(again.headers()["location"], "/");
    // A bad verification link gets a friendly page.
    let bad_link = c
        .get(srv.url("/verify?token=nonsense"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_link.status(), StatusCode::BAD_REQUEST);
    assert!(
        bad_link
            .text()
            .await
            .unwrap()
            .contains("This link is invalid.")
    );
    srv.stop().await;
}
