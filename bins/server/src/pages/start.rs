//! The start page (`/`): the signed-in user's inverters at a glance.

use askama::Template;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, Route, get, handler};

use super::{render, signed_in};
use crate::http::AppState;
use crate::layout::{Layout, Nav};

/// Adds the start page to `route`.
pub fn add_routes(route: Route) -> Route {
    route.at("/", get(start_page))
}

#[derive(Template)]
#[template(path = "pages/start.html")]
struct StartPage {
    layout: Layout,
    display_name: String,
}

#[handler]
async fn start_page(req: &Request, state: Data<&AppState>) -> Response {
    let page = match signed_in(req, &state, Nav::Start, ("Start", "Start")).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    render(
        &StartPage {
            display_name: page.auth.user.display_name.clone(),
            layout: page.layout,
        },
        StatusCode::OK,
    )
}
