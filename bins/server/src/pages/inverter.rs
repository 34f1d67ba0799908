//! The dashboard of one inverter (`/inverters/{id}`): stat cards (a fragment HTMX reloads,
//! `/inverters/{id}/live`), the power chart with its ranges, and the energy bars with period
//! navigation (a fragment, `/inverters/{id}/energy?period=&date=`; without JavaScript the
//! same links reload the page with `?period=&date=`).

use askama::Template;
use chrono::{TimeDelta, Utc};
use deyehard_core::InverterId;
use deyehard_store::{DashboardReader, InverterStatus, ReadingReader};
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{Request, Response, Route, get, handler};
use serde::Deserialize;

use super::fmt::{Fmt, state_badge};
use super::views::{ChartControls, EnergyCard, EnergyCardInput, page_error, page_fmt};
use super::{SignedIn, render, signed_in};
use crate::api::charts::{self, ChartData};
use crate::api::dashboard::{InverterLive, energy_view};
use crate::api::ranges;
use crate::error::ApiError;
use crate::http::AppState;
use crate::layout::{Layout, Nav};

/// How often the stat cards reload themselves, seconds.
pub const STATS_REFRESH_S: u32 = 30;
/// How often the power chart polls while a live range is shown, seconds.
pub const CHART_REFRESH_S: u32 = 60;
/// Points of the power chart as first drawn (app.js asks for what the width can show).
const INITIAL_POINTS: u32 = 720;

/// Adds the dashboard and its fragments to `route`.
pub fn add_routes(route: Route) -> Route {
    route
        .at("/inverters/:id", get(dashboard_page))
        .at("/inverters/:id/live", get(stats_fragment))
        .at("/inverters/:id/energy", get(energy_fragment))
}

/// `period` and `date` of the energy card.
#[derive(Debug, Default, Deserialize)]
pub struct EnergyQuery {
    period: Option<String>,
    date: Option<String>,
}

impl EnergyQuery {
    /// `period`, if given.
    pub fn period(&self) -> Option<&str> {
        self.period.as_deref()
    }

    /// `date`, if given.
    pub fn date(&self) -> Option<&str> {
        self.date.as_deref()
    }
}

/// The head of an inverter's pages.
pub struct InverterHead {
    /// Id.
    pub id: i64,
    /// Name (escaped by the template).
    pub name: String,
    /// `OpenDTU`, `Solarman`, `Victron`.
    pub kind: &'static str,
    /// Device serial, else logger serial.
    pub serial: String,
}

impl InverterHead {
    /// The head of `status`'s inverter.
    pub fn new(status: &InverterStatus) -> Self {
        let inverter = &status.inverter;
        let serial = match (&inverter.serial, inverter.logger_serial) {
            (Some(serial), _) => serial.to_string(),
            (None, Some(logger)) => format!("Logger {}", logger.get()),
            (None, None) => String::new(),
        };
        Self {
            id: inverter.id.get(),
            name: inverter.name.clone(),
            kind: match inverter.kind.as_str() {
                "opendtu" => "OpenDTU",
                "solarman" => "Solarman",
                "victron" => "Victron",
                other => other,
            },
            serial,
        }
    }
}

/// The stat cards.
pub struct StatCards {
    /// Inverter id (fragment URL).
    pub id: i64,
    /// State hook and text.
    pub state: String,
    /// State text.
    pub state_text: String,
    /// Badge class.
    pub badge: &'static str,
    /// Current power.
    pub current: String,
    /// Today's peak.
    pub peak: String,
    /// Today's energy.
    pub today: String,
    /// Mean of the last hour.
    pub last_hour: String,
    /// Lifetime energy.
    pub lifetime: String,
    /// Last data.
    pub last_seen: String,
    /// Seconds between reloads.
    pub refresh_s: u32,
}

impl StatCards {
    fn new(status: &InverterStatus, fmt: &Fmt) -> Self {
        let live = InverterLive::new(status, fmt.now);
        let state = status.state(fmt.now);
        Self {
            id: live.id,
            state_text: fmt.state(state),
            badge: state_badge(state),
            state: live.state,
            current: fmt.power(live.live_power_w),
            peak: fmt.power_opt(live.today_peak_w),
            today: fmt.energy(live.today_wh),
            last_hour: fmt.power_opt(live.last_hour_avg_w),
            lifetime: fmt.energy(live.lifetime_wh),
            last_seen: live.last_seen_at.map_or_else(
                || "–".to_owned(),
                |t| format!("{} · {}", fmt.time(t), fmt.ago(t)),
            ),
            refresh_s: STATS_REFRESH_S,
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/inverter.html")]
struct DashboardPage {
    layout: Layout,
    tz: String,
    head: InverterHead,
    stats: StatCards,
    controls: ChartControls,
    power: ChartData,
    chart_refresh_s: u32,
    energy: EnergyCard,
}

#[derive(Template)]
#[template(path = "dashboard/inverter_stats.html")]
struct StatsFragment {
    layout: Layout,
    stats: StatCards,
}

/// The energy card alone (HTMX navigation).
#[derive(Template)]
#[template(path = "dashboard/energy_card.html")]
pub struct EnergyFragment {
    /// The layout (language).
    pub layout: Layout,
    /// The card.
    pub energy: EnergyCard,
}

/// An inverter id from the path; anything else is "not found".
pub fn parse_id(raw: &str) -> Result<InverterId, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(InverterId::new)
        .ok_or(ApiError::NotFound)
}

/// The signed-in page and the inverter's status, or the response to send instead.
pub async fn open(
    req: &Request,
    state: &AppState,
    raw_id: &str,
    title: (&str, &str),
) -> Result<(SignedIn, InverterStatus, Fmt), Response> {
    let page = signed_in(req, state, Nav::Inverters, title).await?;
    let now = Utc::now();
    let status = match parse_id(raw_id) {
        Ok(id) => state
            .store
            .inverter_status(&page.auth.scope, id, now)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match status {
        Ok(status) => {
            let fmt = page_fmt(&page.layout, &page.auth, now);
            Ok((page, status, fmt))
        }
        Err(e) => Err(page_error(page.layout, e)),
    }
}

async fn energy_card(
    state: &AppState,
    page: &SignedIn,
    id: InverterId,
    query: &EnergyQuery,
    fmt: &Fmt,
) -> Result<EnergyCard, ApiError> {
    let period = ranges::parse_period(query.period())?;
    let date = ranges::parse_date(query.date(), fmt.tz, fmt.now)?;
    let (view, buckets) = energy_view(state, &page.auth, id, period, date).await?;
    let input = EnergyCardInput {
        urls: (
            format!("/inverters/{}/energy", id.get()),
            format!("/inverters/{}", id.get()),
        ),
        period,
        date,
        around: (view.previous, view.next),
        total_wh: view.total_wh,
        chart: charts::energy_chart(&buckets, period, fmt.lang),
    };
    Ok(EnergyCard::new(input, fmt))
}

#[handler]
async fn dashboard_page(
    req: &Request,
    state: Data<&AppState>,
    Path(raw_id): Path<String>,
    Query(query): Query<EnergyQuery>,
) -> Response {
    let (page, status, fmt) = match open(req, &state, &raw_id, ("Inverter", "Wechselrichter")).await
    {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let id = status.inverter.id;
    let parts = async {
        let series = state
            .store
            .power_series(
                &page.auth.scope,
                id,
                fmt.now - TimeDelta::hours(24),
                fmt.now,
                INITIAL_POINTS,
            )
            .await?;
        let energy = energy_card(&state, &page, id, &query, &fmt).await?;
        Ok::<_, ApiError>((charts::power_chart(&series, fmt.lang), energy))
    };
    let (power, energy) = match parts.await {
        Ok(parts) => parts,
        Err(e) => return page_error(page.layout, e),
    };
    let mut layout = page.layout;
    layout.title.clone_from(&status.inverter.name);
    render(
        &DashboardPage {
            tz: page.auth.user.time_zone.clone(),
            head: InverterHead::new(&status),
            stats: StatCards::new(&status, &fmt),
            controls: ChartControls::new("power-chart", &fmt),
            chart_refresh_s: CHART_REFRESH_S,
            layout,
            power,
            energy,
        },
        StatusCode::OK,
    )
}

#[handler]
async fn stats_fragment(
    req: &Request,
    state: Data<&AppState>,
    Path(raw_id): Path<String>,
) -> Response {
    match open(req, &state, &raw_id, ("Inverter", "Wechselrichter")).await {
        Ok((page, status, fmt)) => render(
            &StatsFragment {
                stats: StatCards::new(&status, &fmt),
                layout: page.layout,
            },
            StatusCode::OK,
        ),
        Err(response) => response,
    }
}

#[handler]
async fn energy_fragment(
    req: &Request,
    state: Data<&AppState>,
    Path(raw_id): Path<String>,
    Query(query): Query<EnergyQuery>,
) -> Response {
    let page = match signed_in(req, &state, Nav::Inverters, ("Energy", "Energie")).await {
        Ok(page) => page,
        Err(to_login) => return to_login,
    };
    let fmt = page_fmt(&page.layout, &page.auth, Utc::now());
    let card = match parse_id(&raw_id) {
        Ok(id) => energy_card(&state, &page, id, &query, &fmt).await,
        Err(e) => Err(e),
    };
    match card {
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
