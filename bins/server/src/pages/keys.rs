//! The API keys page (`/account/keys`): the keys with name, prefix, created, last used and
//! revoked; creating one (verified accounts only; the secret is shown once, as selectable
//! text, and stored only as a hash); revoking one after a confirmation (a `<details>`
//! disclosure, no script). Another user's key id answers 404, like a missing one.

use askama::Template;
use deyehard_core::ApiKeyId;
use deyehard_store::ApiKeyStore;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response, Route, get, handler, post};
use serde::Deserialize;

use super::account::{TITLE, local_time};
use super::messages::{error_text, pick, with_retry_after};
use super::{SignedIn, redirect, render, signed_in};
use crate::api::keys::create_key;
use crate::error::ApiError;
use crate::http::AppState;
use crate::layout::{Layout, Nav};

/// Adds the keys page and its forms to `route`.
pub fn add_routes(route: Route) -> Route {
    route
        .at("/account/keys", get(keys_page).post(create_submit))
        .at("/account/keys/:id/revoke", post(revoke_submit))
}

/// A key as the list shows it, times in the user's zone.
struct KeyView {
    id: i64,
    name: String,
    prefix: String,
    created: String,
    last_used: Option<String>,
    revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "accounts/keys.html")]
struct KeysPage {
    layout: Layout,
    tab: &'static str,
    email: String,
    is_verified: bool,
    keys: Vec<KeyView>,
    /// A key just created: (name, the whole key), shown this once.
    created: Option<(String, String)>,
    error: Option<String>,
    notice: Option<String>,
}

/// The page for the signed-in user, with their keys as stored now.
async fn page_for(state: &AppState, page: SignedIn) -> Result<KeysPage, ApiError> {
    let user = &page.auth.user;
    let zone = user.time_zone.as_str();
    let keys = state.store.api_keys(&page.auth.scope).await?;
    let keys = keys
        .into_iter()
        .map(|k| KeyView {
            id: k.id.get(),
            created: local_time(k.created_at, zone),
            last_used: k.last_used_at.map(|t| local_time(t, zone)),
            revoked: k.revoked_at.map(|t| local_time(t, zone)),
            name: k.name,
            prefix: k.prefix,
        })
        .collect();
    Ok(KeysPage {
        email: user.email.clone(),
        is_verified: user.is_verified,
        layout: page.layout,
        tab: "keys",
        keys,
        created: None,
        error: None,
        notice: None,
    })
}

/// Renders the page for `page`, or the reason it cannot be read.
async fn show(
    state: &AppState,
    page: SignedIn,
    edit: impl FnOnce(&mut KeysPage),
    status: StatusCode,
) -> Response {
    let layout = page.layout.clone();
    match page_for(state, page).await {
        Ok(mut view) => {
            edit(&mut view);
            render(&view, status)
        }
        Err(e) => {
            let (status, text) = error_text(layout.lang, &e);
            let heading = ("Something went wrong", "Etwas ist schiefgegangen");
            super::auth::MessagePage::show(layout, heading, text, None, status)
        }
    }
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

#[handler]
async fn keys_page(req: &Request, state: Data<&AppState>, Query(q): Query<DoneQuery>) -> Response {
    let page = match signed_in(req, &state, Nav::Account, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    let notice = (q.done.as_deref() == Some("revoked")).then(|| {
        pick(
            page.layout.lang,
            (
                "The key is revoked: devices using it can no longer push readings.",
                "Der Schlüssel ist widerrufen: Geräte damit können keine Messwerte mehr senden.",
            ),
        )
    });
    show(&state, page, |v| v.notice = notice, StatusCode::OK).await
}

#[derive(Deserialize)]
struct CreateForm {
    name: String,
}

#[handler]
async fn create_submit(
    req: &Request,
    state: Data<&AppState>,
    Form(form): Form<CreateForm>,
) -> Response {
    let page = match signed_in(req, &state, Nav::Account, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    let name = form.name.trim();
    let outcome = if name.is_empty() || name.chars().count() > 100 {
        Err(ApiError::Unprocessable(pick(
            page.layout.lang,
            (
                "Give the key a name of 1 to 100 characters.",
                "Gib dem Schlüssel einen Namen mit 1 bis 100 Zeichen.",
            ),
        )))
    } else {
        create_key(&state, &page.auth, name).await
    };
    match outcome {
        Ok(created) => {
            let shown = Some((created.info.name, created.key));
            show(&state, page, |v| v.created = shown, StatusCode::OK).await
        }
        Err(e) => {
            let (status, text) = error_text(page.layout.lang, &e);
            let resp = show(&state, page, |v| v.error = Some(text), status).await;
            with_retry_after(resp, &e)
        }
    }
}

#[handler]
async fn revoke_submit(req: &Request, state: Data<&AppState>, Path(id): Path<i64>) -> Response {
    let page = match signed_in(req, &state, Nav::Account, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    match crate::api::keys::revoke_key(&state, &page.auth.scope, ApiKeyId::new(id)).await {
        Ok(()) => redirect("/account/keys?done=revoked"),
        Err(e) => {
            let (status, text) = error_text(page.layout.lang, &e.into());
            show(&state, page, |v| v.error = Some(text), status).await
        }
    }
}
