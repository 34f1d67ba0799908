//! The summary over all inverters (`/summary`): totals and each inverter's state (a fragment
//! HTMX reloads, `/summary/live`), stacked power with the total on top (the peak of the sum,
//! stale inverters not counted as live), and stacked energy bars per period
//! (`/summary/energy?period=&date=`).

use askama::Template;
use chrono::{TimeDelta, Utc};
use deyehard_store::{DashboardReader, InverterStore};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Request, Response, Route, get, handler};

use super::fmt::Fmt;
use super::inverter::{CHART_REFRESH_S, EnergyFragment, EnergyQuery};
use super::start::LIVE_REFRESH_S;
use super::views::{
    ChartControls, EnergyCard, EnergyCardInput, InverterCard, Totals, page_error, page_fmt,
};
use super::{SignedIn, render, signed_in};
use crate::api::charts::{self, ChartData};
use crate::api::dashboard::{summary_energy_view, summary_view};
use crate::api::ranges;
use crate::error::ApiError;
use crate::http::AppState;
use crate::layout::{Layout, Nav};

/// Adds the summary and its fragments to `route`.
pub fn add_routes(route: Route) -> Route {
    route
        .at("/summary", get(summary_page))
        .at("/summary/live", get(live_fragment))
        .at("/summary/energy", get(energy_fragment))
}

/// The live part: totals and one row per inverter.
pub struct SummaryLive {
    /// Totals.
    pub totals: Totals,
    /// The inverters.
    pub rows: Vec<InverterCard>,
    /// Seconds between reloads.
    pub refresh_s: u32,
}

#[derive(Template)]
#[template(path = "dashboard/summary.html")]
struct SummaryPage {
    layout: Layout,
    tz: String,
    live: SummaryLive,
    controls: ChartControls,
    power: ChartData,
    chart_refresh_s: u32,
    energy: EnergyCard,
}

#[derive(Template)]
#[template(path = "dashboard/summary_live.html")]
struct LiveFragment {
    layout: Layout,
    live: SummaryLive,
}

const TITLE: (&str, &str) = ("Summary", "Übersicht");

async fn live(state: &AppState, page: &SignedIn, fmt: &Fmt) -> Result<SummaryLive, ApiError> {
    let view = summary_view(state, &page.auth, fmt.now).await?;
    Ok(SummaryLive {
        totals: Totals::new(&view, fmt),
        rows: view
            .inverters
            .iter()
            .map(|i| InverterCard::new(i, fmt))
            .collect(),
        refresh_s: LIVE_REFRESH_S,
    })
}

async fn energy_card(
    state: &AppState,
    page: &SignedIn,
    query: &EnergyQuery,
    fmt: &Fmt,
) -> Result<EnergyCard, ApiError> {
    let period = ranges::parse_period(query.period())?;
    let date = ranges::parse_date(query.date(), fmt.tz, fmt.now)?;
    let (view, chart) = summary_energy_view(state, &page.auth, period, date).await?;
    let input = EnergyCardInput {
        urls: ("/summary/energy".to_owned(), "/summary".to_owned()),
        period,
        date,
        around: (view.previous, view.next),
        total_wh: view.total_wh,
        chart,
    };
    Ok(EnergyCard::new(input, fmt))
}

async fn power_chart(state: &AppState, page: &SignedIn, fmt: &Fmt) -> Result<ChartData, ApiError> {
    let scope = &page.auth.scope;
    let from = fmt.now - TimeDelta::hours(24);
    let summary = state.store.summary_power(scope, from, fmt.now, 720).await?;
    let inverters = state.store.inverters(scope).await?;
    Ok(charts::summary_power_chart(&summary, &inverters, fmt.lang))
}

#[handler]
async fn summary_page(
    req: &Request,
    state: Data<&AppState>,
    Query(query): Query<EnergyQuery>,
) -> Response {
    let page = match signed_in(req, &state, Nav::Summary, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    let fmt = page_fmt(&page.layout, &page.auth, Utc::now());
    let parts = async {
        Ok::<_, ApiError>((
            live(&state, &page, &fmt).await?,
            power_chart(&state, &page, &fmt).await?,
            energy_card(&state, &page, &query, &fmt).await?,
        ))
    };
    match parts.await {
        Ok((live, power, energy)) => render(
            &SummaryPage {
                tz: page.auth.user.time_zone.clone(),
                controls: ChartControls::new("summary-power-chart", &fmt),
                chart_refresh_s: CHART_REFRESH_S,
                layout: page.layout,
                live,
                power,
                energy,
            },
            StatusCode::OK,
        ),
        Err(e) => page_error(page.layout, e),
    }
}

#[handler]
async fn live_fragment(req: &Request, state: Data<&AppState>) -> Response {
    let page = match signed_in(req, &state, Nav::Summary, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    let fmt = page_fmt(&page.layout, &page.auth, Utc::now());
    match live(&state, &page, &fmt).await {
        Ok(live) => render(
            &LiveFragment {
                layout: page.layout,
                live,
            },
            StatusCode::OK,
        ),
        Err(e) => page_error(page.layout, e),
    }
}

#[handler]
async fn energy_fragment(
    req: &Request,
    state: Data<&AppState>,
    Query(query): Query<EnergyQuery>,
) -> Response {
    let page = match signed_in(req, &state, Nav::Summary, TITLE).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    let fmt = page_fmt(&page.layout, &page.auth, Utc::now());
    match energy_card(&state, &page, &query, &fmt).await {
        Ok(energy) => render(
            &EnergyFragment {
                layout: page.layout,
                energy,
            },
            StatusCode::OK,
        ),
        Err(e) => page_error(page.layout, e),
    }
}
