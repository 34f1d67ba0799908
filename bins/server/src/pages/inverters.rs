//! The inverter pages (`/inverters`): the list with live status; adding an inverter (also in
//! one click for a serial that was pushed but is not registered); editing one in place;
//! deleting one after a confirmation step; and the help for connecting a device.
//!
//! Everything works as plain HTML forms and links. With HTMX, the same URLs answer with
//! fragments: the edit and delete links swap the inverter's list item for a form, saving or
//! cancelling swaps it back; the add form swaps the page's `#inverters` section. HTMX only
//! swaps 2xx answers, so answers to HTMX requests carry 200 where a plain request gets
//! 403/404/422 (the content is the same).
//!
//! Problems with a field are shown under it, in the page's language. The data the templates
//! show is prepared in [`super::inverter_views`].

use askama::Template;
use chrono::Utc;
use deyehard_core::InverterId;
use deyehard_store::InverterStore;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{IntoResponse, Request, Response, Route, get, handler};
use serde::Deserialize;

use super::inverter_views::{ConnectHelp, FormView, InverterView, UnknownView};
use super::{SignedIn, is_htmx, redirect, render, signed_in};
use crate::api::inverter_input::{FieldErrors, InverterDraft};
use crate::api::inverters::{
    InverterFailure, create_inverter, delete_inverter, fields_of, inverters_with_status,
    update_inverter,
};
use crate::api::readings::user_zone;
use crate::error::ApiError;
use crate::http::AppState;
use crate::layout::{Lang, Layout, Nav};

/// Adds the inverter pages to `route`.
pub fn add_routes(route: Route) -> Route {
    route
        .at("/inverters", get(list_page).post(create))
        .at("/inverters/:id/item", get(show_item))
        .at("/inverters/:id/edit", get(edit_form).post(update))
        .at("/inverters/:id/delete", get(delete_confirm).post(delete))
}

const TITLE: (&str, &str) = ("Inverters", "Wechselrichter");

#[derive(Template)]
#[template(path = "inverters/list.html")]
struct ListPage {
    layout: Layout,
    inverters: Vec<InverterView>,
    unknown: Vec<UnknownView>,
    form: FormView,
    verified: bool,
    connect: ConnectHelp,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "inverters/item_fragment.html")]
struct ItemFragment {
    layout: Layout,
    inv: InverterView,
}

#[derive(Template)]
#[template(path = "inverters/edit_item.html")]
struct EditFragment {
    layout: Layout,
    id: i64,
    form: FormView,
}

#[derive(Template)]
#[template(path = "inverters/edit.html")]
struct EditPage {
    layout: Layout,
    id: i64,
    name: String,
    form: FormView,
}

#[derive(Template)]
#[template(path = "inverters/delete_item.html")]
struct DeleteFragment {
    layout: Layout,
    inv: InverterView,
}

#[derive(Template)]
#[template(path = "inverters/delete.html")]
struct DeletePage {
    layout: Layout,
    inv: InverterView,
}

#[derive(Template)]
#[template(path = "inverters/message.html")]
struct MessagePage {
    layout: Layout,
    heading: String,
    text: String,
}

/// The status for an answer: 200 for HTMX (which swaps only 2xx), else `status`.
fn status_for(req: &Request, status: StatusCode) -> StatusCode {
    if is_htmx(req) { StatusCode::OK } else { status }
}

/// A page for a failure: "not found" (the same for another user's inverter) or a general
/// error (logged by the error's own response).
fn failure_page(req: &Request, mut layout: Layout, err: &ApiError) -> Response {
    let lang = layout.lang;
    let t = |en: &str, de: &str| {
        if lang == Lang::De {
            de.to_owned()
        } else {
            en.to_owned()
        }
    };
    let (heading, text) = match err {
        ApiError::NotFound => (
            t("Not found", "Nicht gefunden"),
            t(
                "There is no such inverter among yours.",
                "Unter deinen Wechselrichtern gibt es diesen nicht.",
            ),
        ),
        ApiError::Internal(_) | ApiError::Unavailable { .. } => {
            let _ = poem::error::ResponseError::as_response(err);
            (
                t("Something went wrong", "Etwas ist schiefgegangen"),
                t(
                    "Please try again in a moment.",
                    "Bitte versuche es gleich noch einmal.",
                ),
            )
        }
        other => (t("Not possible", "Nicht möglich"), other.to_string()),
    };
    layout.title.clone_from(&heading);
    render(
        &MessagePage {
            layout,
            heading,
            text,
        },
        status_for(req, err.status()),
    )
}

#[derive(Deserialize)]
struct ListQuery {
    added: Option<i64>,
    deleted: Option<String>,
}

#[handler]
async fn list_page(req: &Request, state: Data<&AppState>, Query(q): Query<ListQuery>) -> Response {
    let page = match signed_in(req, &state, Nav::Inverters, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    let lang = page.layout.lang;
    let notice = match (q.added, q.deleted) {
        (Some(_), _) => Some(pick(
            lang,
            "The inverter was added.",
            "Der Wechselrichter wurde hinzugefügt.",
        )),
        (None, Some(_)) => Some(pick(
            lang,
            "The inverter was deleted.",
            "Der Wechselrichter wurde gelöscht.",
        )),
        (None, None) => None,
    };
    let draft = InverterDraft::default();
    list_response(
        req,
        &state,
        page,
        (&draft, &FieldErrors::default()),
        notice,
        StatusCode::OK,
    )
    .await
}

fn pick(lang: Lang, en: &str, de: &str) -> String {
    if lang == Lang::De { de } else { en }.to_owned()
}

async fn list_response(
    req: &Request,
    state: &AppState,
    page: SignedIn,
    (draft, errors): (&InverterDraft, &FieldErrors),
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let SignedIn { auth, layout } = page;
    let loaded = async {
        let infos = inverters_with_status(state, &auth.scope, Utc::now()).await?;
        let unknown = state.store.unknown_serials(&auth.scope).await?;
        let connect = ConnectHelp::load(state, &auth).await?;
        Ok::<_, ApiError>((infos, unknown, connect))
    };
    let (infos, unknown, connect) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return failure_page(req, layout, &e),
    };
    let (lang, zone) = (layout.lang, user_zone(&auth));
    let list = ListPage {
        inverters: infos
            .into_iter()
            .map(|i| InverterView::new(i, lang, zone))
            .collect(),
        unknown: unknown
            .into_iter()
            .map(|u| UnknownView::new(u, zone))
            .collect(),
        form: FormView::new("new", draft, errors, lang),
        verified: auth.user.is_verified,
        connect,
        notice,
        layout,
    };
    render(&list, status_for(req, status))
}

#[handler]
async fn create(
    req: &Request,
    state: Data<&AppState>,
    Form(draft): Form<InverterDraft>,
) -> Response {
    let page = match signed_in(req, &state, Nav::Inverters, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    let lang = page.layout.lang;
    match create_inverter(&state, &page.auth, &draft).await {
        Ok(_) if is_htmx(req) => {
            let notice = pick(
                lang,
                "The inverter was added.",
                "Der Wechselrichter wurde hinzugefügt.",
            );
            let empty = InverterDraft::default();
            list_response(
                req,
                &state,
                page,
                (&empty, &FieldErrors::default()),
                Some(notice),
                StatusCode::OK,
            )
            .await
        }
        Ok(inv) => redirect(&format!("/inverters?added={}", inv.id)),
        Err(InverterFailure::Fields(errors)) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            list_response(req, &state, page, (&draft, &errors), None, status).await
        }
        Err(InverterFailure::Api(e @ ApiError::NotAllowed(_))) => {
            list_response(
                req,
                &state,
                page,
                (&draft, &FieldErrors::default()),
                None,
                e.status(),
            )
            .await
        }
        Err(InverterFailure::Api(e)) => failure_page(req, page.layout, &e),
    }
}

/// The signed-in page and the inverter `id` with its status, or the answer to give instead.
async fn inverter_page(
    req: &Request,
    state: &AppState,
    id: i64,
) -> Result<(SignedIn, InverterView), Response> {
    let page = signed_in(req, state, Nav::Inverters, TITLE).await?;
    let found = inverters_with_status(state, &page.auth.scope, Utc::now())
        .await
        .and_then(|all| {
            all.into_iter()
                .find(|i| i.id == id)
                .ok_or(ApiError::NotFound)
        });
    match found {
        Ok(info) => {
            let view = InverterView::new(info, page.layout.lang, user_zone(&page.auth));
            Ok((page, view))
        }
        Err(e) => Err(failure_page(req, page.layout, &e)),
    }
}

#[handler]
async fn show_item(req: &Request, state: Data<&AppState>, Path(id): Path<i64>) -> Response {
    match inverter_page(req, &state, id).await {
        Ok(_) if !is_htmx(req) => redirect("/inverters"),
        Ok((page, inv)) => render(
            &ItemFragment {
                layout: page.layout,
                inv,
            },
            StatusCode::OK,
        ),
        Err(answer) => answer,
    }
}

fn edit_answer(
    req: &Request,
    page: SignedIn,
    id: i64,
    name: String,
    draft: &InverterDraft,
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    let form = FormView::new(&id.to_string(), draft, errors, page.layout.lang);
    if is_htmx(req) {
        render(
            &EditFragment {
                layout: page.layout,
                id,
                form,
            },
            StatusCode::OK,
        )
    } else {
        let mut layout = page.layout;
        layout.title = format!("{} · {name}", layout.t("Edit", "Bearbeiten"));
        render(
            &EditPage {
                layout,
                id,
                name,
                form,
            },
            status,
        )
    }
}

#[handler]
async fn edit_form(req: &Request, state: Data<&AppState>, Path(id): Path<i64>) -> Response {
    let page = match signed_in(req, &state, Nav::Inverters, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    match state
        .store
        .inverter(&page.auth.scope, InverterId::new(id))
        .await
    {
        Ok(inv) => {
            let draft = InverterDraft::of(&fields_of(&inv));
            edit_answer(
                req,
                page,
                id,
                inv.name,
                &draft,
                &FieldErrors::default(),
                StatusCode::OK,
            )
        }
        Err(e) => failure_page(req, page.layout, &e.into()),
    }
}

#[handler]
async fn update(
    req: &Request,
    state: Data<&AppState>,
    Path(id): Path<i64>,
    Form(draft): Form<InverterDraft>,
) -> Response {
    let page = match signed_in(req, &state, Nav::Inverters, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    match update_inverter(&state, &page.auth.scope, InverterId::new(id), &draft).await {
        Ok(_) if is_htmx(req) => match inverter_page(req, &state, id).await {
            Ok((page, inv)) => render(
                &ItemFragment {
                    layout: page.layout,
                    inv,
                },
                StatusCode::OK,
            ),
            Err(answer) => answer,
        },
        Ok(_) => redirect("/inverters"),
        Err(InverterFailure::Fields(errors)) => {
            let name = draft.name.clone();
            edit_answer(
                req,
                page,
                id,
                name,
                &draft,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(InverterFailure::Api(e)) => failure_page(req, page.layout, &e),
    }
}

#[handler]
async fn delete_confirm(req: &Request, state: Data<&AppState>, Path(id): Path<i64>) -> Response {
    match inverter_page(req, &state, id).await {
        Ok((page, inv)) if is_htmx(req) => render(
            &DeleteFragment {
                layout: page.layout,
                inv,
            },
            StatusCode::OK,
        ),
        Ok((page, inv)) => {
            let mut layout = page.layout;
            layout.title = format!("{} · {}", layout.t("Delete", "Löschen"), inv.name);
            render(&DeletePage { layout, inv }, StatusCode::OK)
        }
        Err(answer) => answer,
    }
}

#[handler]
async fn delete(req: &Request, state: Data<&AppState>, Path(id): Path<i64>) -> Response {
    let page = match signed_in(req, &state, Nav::Inverters, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    match delete_inverter(&state, &page.auth.scope, InverterId::new(id)).await {
        // HTMX swaps the list item for nothing.
        Ok(()) if is_htmx(req) => StatusCode::OK.into_response(),
        Ok(()) => redirect("/inverters?deleted=1"),
        Err(e) => failure_page(req, page.layout, &e.into()),
    }
}
