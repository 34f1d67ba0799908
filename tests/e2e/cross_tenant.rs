//! Tenancy across every route that takes an id, on both store backends: another user's
//! session gets a 404 for each of them, exactly as for an id that does not exist, and the
//! owner's data is untouched afterwards.
//!
//! The routes are not listed by hand, so a new one cannot be forgotten:
//! - the JSON API: every path of the served OpenAPI document (the same document as the
//!   committed `bins/server/openapi.json`, which a server unit test keeps current) with a
//!   `{param}`, with every method it declares, called with a bearer token and again with the
//!   session cookie and the CSRF header. A request body, where one is declared, is the smallest
//!   valid one the schema allows, so a 404 is never hidden behind a 400.
//! - the pages: poem's router cannot list its routes, so the server's source text
//!   (`bins/server/src`, test modules left out) is scanned for `.at("…")` paths with a
//!   `:param` segment. Each is tried with GET, POST, PUT, PATCH and DELETE; a 405 means the
//!   route has no such method (the router answers it before any handler). Unsafe methods carry
//!   a valid CSRF token of the caller, so CSRF is not what rejects them, and a form with no
//!   other field, so the answer shows that the id is checked before the form is.
//!
//! Which of the owner's ids goes into a path is decided by [`id_for`]; a route it does not know
//! fails the test until it is taught. Admin routes (`/admin/…`) are not tenant-scoped: a user
//! who is not an administrator gets the same 403 there for an existing id and a missing one,
//! which tells nothing about the id. Everywhere else the answer is 404 and its body is the
//! same as for a missing id. HTMX requests to the pages get the same body as for a missing id
//! too (with 200, as HTMX only swaps 2xx answers). The owner's GETs of the same URLs answer
//! 2xx or 3xx, so the 404s are about tenancy and not broken URLs. Ids in a query string
//! (`/export/download?inverter=…`) are checked on their own.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{TimeDelta, Utc};
use deyehard_core::{InverterId, InverterKind, TenantScope, UserId};
use deyehard_store::{ApiKeyStore, DashboardReader, InverterStore, ReadingReader, UserStore};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::account_pages::{Browser, PASSWORD, user};
use crate::dashboard::{push, push_body};
use crate::support::{Backend, TestServer, TestStore, http_client};

on_both_backends!(another_users_session_gets_404_on_every_route_with_an_id);

/// Fewer API operations or page routes with an id than this means the walk is broken.
const MIN_API_OPERATIONS: usize = 14;
const MIN_PAGE_ROUTES: usize = 11;

/// Serial and DC channel name of the owner's inverter: never in the other user's answers.
const SERIAL: &str = "116100000077";
const CHANNEL: &str = "Ann-Secret-Roof";
/// What an id is replaced with to get a missing one.
const MISSING: i64 = 987_654_321;

/// The owner's ids.
struct Owned {
    user: UserId,
    inverter: InverterId,
    key: i64,
}

/// The owner's id for `path` (an API path without its prefix, or a page path).
fn id_for(path: &str, owned: &Owned) -> i64 {
    if path.starts_with("/admin/users/") {
        owned.user.get()
    } else if path.starts_with("/keys/") || path.starts_with("/account/keys/") {
        owned.key
    } else if path.starts_with("/inverters/") || path.starts_with("/admin/inverters/") {
        owned.inverter.get()
    } else {
        panic!("{path}: which of the owner's ids belongs here? Teach `id_for`.")
    }
}

/// Admin routes answer 403 to everyone else, whatever the id.
fn is_admin_route(path: &str) -> bool {
    path.starts_with("/admin/")
}

/// `path` with its one parameter (`{id}` or `:id`) replaced by `id`.
fn fill(path: &str, id: i64) -> String {
    let segments: Vec<String> = path
        .split('/')
        .map(|s| {
            if s.starts_with(':') || (s.starts_with('{') && s.ends_with('}')) {
                id.to_string()
            } else {
                s.to_owned()
            }
        })
        .collect();
    let params = path
        .split('/')
        .filter(|s| s.starts_with(':') || s.starts_with('{'))
        .count();
    assert_eq!(params, 1, "{path}: one id per route is all this test knows");
    segments.join("/")
}

/// The smallest value `schema` accepts: required properties only, `false`, `0`, the first
/// enum value, `"x"`.
fn example(schema: &Value, spec: &Value) -> Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return example(&spec["components"]["schemas"][name], spec);
    }
    for combined in ["allOf", "oneOf", "anyOf"] {
        if let Some(first) = schema[combined].as_array().and_then(|a| a.first()) {
            return example(first, spec);
        }
    }
    if let Some(first) = schema["enum"].as_array().and_then(|a| a.first()) {
        return first.clone();
    }
    match schema["type"].as_str() {
        Some("object") => {
            let mut object = Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                object.insert(name.to_owned(), example(&schema["properties"][name], spec));
            }
            Value::Object(object)
        }
        Some("boolean") => json!(false),
        Some("integer" | "number") => json!(0),
        Some("array") => json!([]),
        Some("string") => json!("x"),
        other => panic!("no example for schema type {other:?}: {schema}"),
    }
}

/// One operation of the API with an id in its path.
struct Operation {
    method: Method,
    /// The path as documented, without the server prefix.
    path: String,
    body: Option<Value>,
}

/// Every operation of the served OpenAPI document whose path has a parameter, and the prefix
/// the API is served under.
async fn api_operations(srv: &TestServer) -> (String, Vec<Operation>) {
    let answer = http_client()
        .get(srv.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let spec: Value = answer.json().await.unwrap();
    let prefix = spec["servers"][0]["url"].as_str().unwrap().to_owned();
    let mut operations = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        if !path.contains('{') {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let body = op["requestBody"]["content"]
                .as_object()
                .and_then(|content| content.values().next())
                .map(|media| example(&media["schema"], &spec));
            operations.push(Operation {
                method,
                path: path.clone(),
                body,
            });
        }
    }
    operations.sort_by_key(|op| method_rank(&op.method));
    (prefix, operations)
}

/// Reads first, deletions last: a broken check shows on the reads before data is gone.
fn method_rank(method: &Method) -> u8 {
    match *method {
        Method::GET => 0,
        Method::DELETE => 2,
        _ => 1,
    }
}

/// The `.at("…")` paths with a parameter in the server's source, test modules left out.
fn page_routes() -> Vec<String> {
    fn sources(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                out.push(code.to_owned());
            }
        }
    }
    let mut texts = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("bins/server/src"),
        &mut texts,
    );
    let mut found = BTreeSet::new();
    for text in &texts {
        for (at, _) in text.match_indices(".at(") {
            let Some(literal) = text[at + 4..].trim_start().strip_prefix('"') else {
                continue;
            };
            let path = &literal[..literal.find('"').unwrap()];
            if path.starts_with('/') && (path.contains("/:") || path.contains('{')) {
                found.insert(path.to_owned());
            }
        }
    }
    found.into_iter().collect()
}

/// A user signed in both ways: a page browser (cookie, CSRF token) and a bearer token.
struct Session {
    browser: Browser,
    token: String,
}

async fn session(srv: &TestServer, email: &str) -> Session {
    let mut browser = Browser::new(srv);
    browser.login(email, PASSWORD).await;
    // A signed-in page, so the browser holds this session's CSRF token.
    assert_eq!(browser.get("/account").await.status, StatusCode::OK);
    assert!(!browser.csrf.is_empty());
    let answer = http_client()
        .post(srv.url("/api/auth/token"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    Session {
        browser,
        token: body["access_token"].as_str().unwrap().to_owned(),
    }
}

/// How a request is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `Authorization: Bearer` (API).
    Bearer,
    /// The session cookie, with the CSRF token in `X-CSRF-Token` (API, HTMX) .
    CookieHeader,
    /// The session cookie, a plain form with the CSRF field (pages).
    CookieForm,
    /// As HTMX sends it: the session cookie, `HX-Request`, the token in `X-CSRF-Token`.
    Htmx,
}

/// Sends `method url` as `who`, returning status and body.
async fn send(
    srv: &TestServer,
    who: &Session,
    via: Via,
    method: &Method,
    url: &str,
    body: Option<&Value>,
) -> (StatusCode, String) {
    let unsafe_method = !matches!(*method, Method::GET | Method::HEAD);
    let mut request = match via {
        Via::Bearer => http_client()
            .request(method.clone(), srv.url(url))
            .bearer_auth(&who.token),
        Via::CookieHeader | Via::CookieForm | Via::Htmx => who.browser.request(method.clone(), url),
    };
    if via == Via::Htmx {
        request = request.header("hx-request", "true");
    }
    if matches!(via, Via::CookieHeader | Via::Htmx) && unsafe_method {
        request = request.header("x-csrf-token", &who.browser.csrf);
    }
    if let Some(body) = body {
        request = request.json(body);
    } else if via == Via::CookieForm && unsafe_method {
        request = request.form(&[("csrf_token", who.browser.csrf.as_str())]);
    } else if via == Via::Htmx && unsafe_method {
        request = request.form(&[("ignored", "")]);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    (status, answer.text().await.unwrap())
}

/// B's answer for the owner's `id` and for a missing one: equal (after the id), and `expected`.
#[allow(clippy::too_many_arguments)]
async fn assert_hidden(
    srv: &TestServer,
    bob: &Session,
    via: Via,
    method: &Method,
    (template, prefix): (&str, &str),
    id: i64,
    body: Option<&Value>,
    expected: Option<StatusCode>,
) -> StatusCode {
    let url = format!("{prefix}{}", fill(template, id));
    let (status, text) = send(srv, bob, via, method, &url, body).await;
    let missing_url = format!("{prefix}{}", fill(template, MISSING));
    let (missing_status, missing_text) = send(srv, bob, via, method, &missing_url, body).await;
    let what = format!("{method} {url} ({via:?})");
    if let Some(expected) = expected {
        assert_eq!(status, expected, "{what}: {text}");
    }
    assert_eq!(status, missing_status, "{what}: like a missing id");
    assert_eq!(
        text,
        missing_text.replace(&MISSING.to_string(), &id.to_string()),
        "{what}: the same body as for a missing id"
    );
    assert!(
        !text.contains(SERIAL) && !text.contains(CHANNEL),
        "{what}: the owner's data leaks: {text}"
    );
    status
}

async fn another_users_session_gets_404_on_every_route_with_an_id(backend: Backend) {
    let db = TestStore::new(backend).await;
    let srv = TestServer::start(&db).await;
    let ann_id = user(&db, "ann@example.com", true, false).await;
    let bob_id = user(&db, "bob@example.com", true, false).await;
    let (ann_scope, bob_scope) = (
        TenantScope::for_tests(ann_id),
        TenantScope::for_tests(bob_id),
    );

    // Ann: an inverter with readings and DC channels, an API key (the one that pushed them).
    let inverter = db.inverter(&ann_scope, InverterKind::Opendtu, SERIAL).await;
    let key = db.api_key(&ann_scope).await;
    let now = Utc::now();
    for minutes in [3, 2, 1] {
        let at = now - TimeDelta::minutes(minutes);
        push(&srv, &key, push_body(SERIAL, at, 420.0, CHANNEL)).await;
    }
    let keys = db.store.api_keys(&ann_scope).await.unwrap();
    let owned = Owned {
        user: ann_id,
        inverter,
        key: keys[0].id.get(),
    };
    let channels = db
        .store
        .dc_channels(&ann_scope, inverter, now)
        .await
        .unwrap();
    assert_eq!(channels.len(), 2, "Ann's inverter has DC channels");
    let window = (now - TimeDelta::hours(1), now + TimeDelta::hours(1));
    let readings = |scope: TenantScope| {
        let store = db.store.clone();
        async move {
            store
                .readings(&scope, inverter, window.0, window.1, 1000)
                .await
                .unwrap()
                .len()
        }
    };
    let readings_before = readings(ann_scope).await;
    assert_eq!(readings_before, 3);
    // Bob has an inverter of his own (for the mixed export below).
    let bobs = db
        .inverter(&bob_scope, InverterKind::Opendtu, "116100000088")
        .await;

    let mut ann = session(&srv, "ann@example.com").await;
    let bob = session(&srv, "bob@example.com").await;

    // The JSON API.
    let (prefix, operations) = api_operations(&srv).await;
    assert!(
        operations.len() >= MIN_API_OPERATIONS,
        "the OpenAPI walk found only {} operations with an id",
        operations.len()
    );
    let documented: Vec<String> = operations
        .iter()
        .map(|op| format!("{} {}", op.method, op.path))
        .collect();
    for must in [
        "GET /inverters/{id}",
        "DELETE /inverters/{id}",
        "DELETE /keys/{id}",
        "GET /inverters/{id}/readings",
        "GET /inverters/{id}/export.csv",
        "GET /inverters/{id}/dc/channels",
    ] {
        assert!(
            documented.iter().any(|d| d == must),
            "{must} in {documented:?}"
        );
    }
    for op in operations.iter().filter(|op| op.method == Method::GET) {
        let url = format!("{prefix}{}", fill(&op.path, id_for(&op.path, &owned)));
        let (status, text) = send(&srv, &ann, Via::Bearer, &op.method, &url, None).await;
        assert!(
            status.is_success() || status.is_redirection(),
            "Ann: GET {url}: {status} {text}"
        );
    }
    for op in &operations {
        let expected = if is_admin_route(&op.path) {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::NOT_FOUND
        };
        let id = id_for(&op.path, &owned);
        for via in [Via::Bearer, Via::CookieHeader] {
            let route = (op.path.as_str(), prefix.as_str());
            assert_hidden(
                &srv,
                &bob,
                via,
                &op.method,
                route,
                id,
                op.body.as_ref(),
                Some(expected),
            )
            .await;
        }
    }

    // The pages.
    let routes = page_routes();
    assert!(
        routes.len() >= MIN_PAGE_ROUTES,
        "the source scan found only {} page routes with an id: {routes:?}",
        routes.len()
    );
    for must in [
        "/inverters/:id",
        "/inverters/:id/dc",
        "/inverters/:id/edit",
        "/account/keys/:id/revoke",
    ] {
        assert!(routes.iter().any(|r| r == must), "{must} in {routes:?}");
    }
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let mut walked = 0;
    for method in &methods {
        for route in &routes {
            let id = id_for(route, &owned);
            let expected = if is_admin_route(route) {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::NOT_FOUND
            };
            let url = fill(route, id);
            let (probe, _) = send(&srv, &bob, Via::CookieForm, method, &url, None).await;
            if probe == StatusCode::METHOD_NOT_ALLOWED {
                continue;
            }
            walked += 1;
            if *method == Method::GET {
                let page = ann.browser.get(&url).await;
                assert!(
                    page.status.is_success() || page.status.is_redirection(),
                    "Ann: GET {url}: {} {}",
                    page.status,
                    page.html
                );
            }
            for via in [Via::CookieForm, Via::Htmx] {
                let want = (via == Via::CookieForm).then_some(expected);
                assert_hidden(&srv, &bob, via, method, (route, ""), id, None, want).await;
            }
        }
    }
    assert!(
        walked >= routes.len(),
        "every page route answers at least one method ({walked} for {routes:?})"
    );

    // Ids in a query string: the export form.
    let (from, to) = (now.date_naive() - TimeDelta::days(1), now.date_naive());
    let export = |ids: &[InverterId]| {
        let mut query = format!("/export/download?from={from}&to={to}");
        for id in ids {
            query.push_str(&format!("&inverter={}", id.get()));
        }
        query
    };
    let csv = ann.browser.get(&export(&[inverter])).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.html);
    for ids in [vec![inverter], vec![bobs, inverter]] {
        let url = export(&ids);
        let (status, text) = send(&srv, &bob, Via::CookieForm, &Method::GET, &url, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{url}: {text}");
        assert!(!text.contains(SERIAL) && !text.contains(CHANNEL), "{url}");
    }

    // Ann's data is as it was: inverter, key, readings, account.
    let still = db.store.inverter(&ann_scope, inverter).await.unwrap();
    assert_eq!(still.owner, ann_id);
    assert_eq!(still.serial.as_ref().map(|s| s.as_str()), Some(SERIAL));
    assert_eq!(still.name, format!("Inverter {SERIAL}"));
    let keys_after = db.store.api_keys(&ann_scope).await.unwrap();
    assert_eq!(keys_after.len(), 1);
    assert!(
        keys_after[0].revoked_at.is_none(),
        "Ann's key is not revoked"
    );
    assert_eq!(readings(ann_scope).await, readings_before);
    assert_eq!(
        db.store
            .dc_channels(&ann_scope, inverter, now)
            .await
            .unwrap()
            .len(),
        2
    );
    let account = db.store.user(&ann_scope).await.unwrap();
    assert!(account.is_active && account.is_verified && !account.is_superuser);
    // And it still works: the key pushes, Ann's session reads.
    push(&srv, &key, push_body(SERIAL, Utc::now(), 430.0, CHANNEL)).await;
    assert_eq!(readings(ann_scope).await, readings_before + 1);
    let page = ann
        .browser
        .get(&format!("/inverters/{}", inverter.get()))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(db.store.inverters(&bob_scope).await.unwrap().len() == 1);
    srv.stop().await;
}
