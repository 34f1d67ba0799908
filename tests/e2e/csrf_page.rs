//! What a refused CSRF check looks like, on both store backends: a page form gets a 403 page
//! in the site's layout saying the form expired (in the page's language, with a fresh token
//! that works when the user tries again); HTMX gets the same 403 with `HX-Refresh`; the JSON
//! API keeps its JSON error.

use deyehard_core::TenantScope;
use deyehard_store::ApiKeyStore;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::account_pages::{Browser, PASSWORD, user};
use crate::support::{Backend, TestServer, TestStore};

on_both_backends!(an_expired_form_gets_a_page_the_api_json);

const FORGED: &str = "0000000000000000000000000000000000000000000000000000000000000000";

async fn an_expired_form_gets_a_page_the_api_json(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann = user(&db, "ann@example.com", true, false).await;
    let mut b = Browser::new(&srv);
    b.login("ann@example.com", PASSWORD).await;

    // A signed-in form post with a stale token: the page, in the layout, with the navigation.
    let resp = b
        .request(Method::POST, "/account/keys")
        .form(&[("csrf_token", FORGED), ("name", "dtu")])
        .send()
        .await
        .unwrap();
    let page = b.page(resp).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let content_type = page.headers["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(page.headers.contains_key("content-security-policy"));
    assert!(page.html.starts_with("<!DOCTYPE html>"), "{}", page.html);
    assert!(
        page.html
            .contains("<title>The form expired · deyehard</title>")
    );
    assert!(page.html.contains("reload the page and try again"));
    assert!(page.html.contains("href=\"/account\""), "the navigation");
    assert!(
        page.html.contains("ann@example.com"),
        "the signed-in layout"
    );
    assert!(!page.html.contains("\"error\""), "no JSON");
    let scope = TenantScope::for_tests(ann);
    assert!(db.store.api_keys(&scope).await.unwrap().is_empty());
    // Trying again with the page's token works.
    assert_ne!(b.csrf, FORGED);
    let created = b.post("/account/keys", &[("name", "dtu")]).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.html);
    assert_eq!(db.store.api_keys(&scope).await.unwrap().len(), 1);

    // In German, when the page is German.
    let resp = b
        .request(Method::POST, "/account/profile?lang=de")
        .form(&[("csrf_token", FORGED)])
        .send()
        .await
        .unwrap();
    let page = b.page(resp).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.html.contains("Das Formular ist abgelaufen"),
        "{}",
        page.html
    );
    assert!(page.html.contains("lade die Seite neu"));

    // HTMX does not swap a 403: it is told to reload the page.
    let resp = b
        .request(Method::POST, "/password/check")
        .header("hx-request", "true")
        .header("x-csrf-token", FORGED)
        .form(&[("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(resp.headers()["hx-refresh"], "true");

    // The JSON API keeps its JSON error, also with the session cookie.
    let resp = b
        .request(Method::POST, "/api/keys")
        .header("x-csrf-token", FORGED)
        .json(&serde_json::json!({"name": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");

    // A visitor with no cookie at all (a form from an old tab): the page sets the CSRF cookie,
    // so logging in again from it works.
    let mut visitor = Browser::new(&srv);
    let resp = visitor
        .request(Method::POST, "/login")
        .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let page = visitor.page(resp).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.html.contains("The form expired"), "{}", page.html);
    assert!(
        page.html.contains("href=\"/login\""),
        "the visitor's layout"
    );
    assert!(
        page.cookies.iter().any(|c| c.starts_with("deyehard_csrf=")),
        "{:?}",
        page.cookies
    );
    let login = visitor
        .post(
            "/login",
            &[("email", "ann@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.html);
    srv.stop().await;
}
