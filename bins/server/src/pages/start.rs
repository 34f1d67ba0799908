//! The start page (`/`): every inverter of the signed-in user with its live power, state and
//! today's energy, the totals, and (without inverters) how to connect a device. The live part
//! is a fragment (`/start/live`) that HTMX reloads every 30 seconds.

use askama::Template;
use chrono::Utc;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, Route, get, handler};

use super::inverter_views::ConnectHelp;
use super::views::{InverterCard, Totals, page_error, page_fmt};
use super::{SignedIn, render, signed_in};
use crate::api::dashboard::summary_view;
use crate::error::ApiError;
use crate::http::AppState;
use crate::layout::{Layout, Nav};

/// How often the live part reloads itself, seconds.
pub const LIVE_REFRESH_S: u32 = 30;

/// Adds the start page and its live fragment to `route`.
pub fn add_routes(route: Route) -> Route {
    route
        .at("/", get(start_page))
        .at("/start/live", get(start_live))
}

/// The live part: totals and one card per inverter.
pub struct LiveView {
    /// Totals over all inverters.
    pub totals: Totals,
    /// The inverters.
    pub cards: Vec<InverterCard>,
    /// Seconds between reloads.
    pub refresh_s: u32,
}

#[derive(Template)]
#[template(path = "dashboard/start.html")]
struct StartPage {
    layout: Layout,
    display_name: String,
    live: LiveView,
    connect: ConnectHelp,
}

#[derive(Template)]
#[template(path = "dashboard/start_live.html")]
struct StartLive {
    layout: Layout,
    live: LiveView,
}

async fn live_view(state: &AppState, page: &SignedIn) -> Result<LiveView, ApiError> {
    let now = Utc::now();
    let view = summary_view(state, &page.auth, now).await?;
    let fmt = page_fmt(&page.layout, &page.auth, now);
    Ok(LiveView {
        totals: Totals::new(&view, &fmt),
        cards: view
            .inverters
            .iter()
            .map(|i| InverterCard::new(i, &fmt))
            .collect(),
        refresh_s: LIVE_REFRESH_S,
    })
}

#[handler]
async fn start_page(req: &Request, state: Data<&AppState>) -> Response {
    let page = match signed_in(req, &state, Nav::Start, ("Start", "Start")).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    let parts = async {
        let live = live_view(&state, &page).await?;
        let connect = ConnectHelp::load(&state, &page.auth).await?;
        Ok::<_, ApiError>((live, connect))
    };
    match parts.await {
        Ok((live, connect)) => render(
            &StartPage {
                display_name: page.auth.user.display_name.clone(),
                layout: page.layout,
                live,
                connect,
            },
            StatusCode::OK,
        ),
        Err(e) => page_error(page.layout, e),
    }
}

#[handler]
async fn start_live(req: &Request, state: Data<&AppState>) -> Response {
    let page = match signed_in(req, &state, Nav::Start, ("Start", "Start")).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    match live_view(&state, &page).await {
        Ok(live) => render(
            &StartLive {
                layout: page.layout,
                live,
            },
            StatusCode::OK,
        ),
        Err(e) => page_error(page.layout, e),
    }
}
