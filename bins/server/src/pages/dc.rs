//! The DC channels of an inverter (`/inverters/{id}/dc`): one card per channel (power,
//! voltage, current, today, lifetime) and a chart comparing one metric across the channels,
//! to spot a weak panel. Channel names come from the device and are escaped like any text.

use askama::Template;
use chrono::TimeDelta;
use deyehard_store::{DashboardReader, DcChannelStatus, DcMetric};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Request, Response, Route, get, handler};

use super::fmt::Fmt;
use super::inverter::{CHART_REFRESH_S, InverterHead, open};
use super::render;
use super::views::{ChartControls, page_error};
use crate::api::charts::{self, ChartData};
use crate::error::ApiError;
use crate::http::AppState;
use crate::layout::{Lang, Layout};

/// A reading older than this is labelled "as of …".
const FRESH: TimeDelta = TimeDelta::minutes(15);

/// Adds the DC page to `route`.
pub fn add_routes(route: Route) -> Route {
    route.at("/inverters/:id/dc", get(dc_page))
}

/// One channel card.
pub struct ChannelCard {
    /// 1-based channel.
    pub channel: u8,
    /// Name from the device, else "Input N" (escaped by the template).
    pub label: String,
    /// Power.
    pub power: String,
    /// Voltage.
    pub voltage: String,
    /// Current.
    pub current: String,
    /// Irradiation.
    pub irradiation: String,
    /// Energy today.
    pub today: String,
    /// Lifetime energy.
    pub lifetime: String,
    /// "as of 21:03" when the reading is not recent.
    pub as_of: Option<String>,
}

impl ChannelCard {
    fn new(c: &DcChannelStatus, fmt: &Fmt) -> Self {
        let stale = fmt.now - c.time > FRESH || !c.reachable;
        Self {
            channel: c.channel,
            label: charts::channel_label(c.channel, c.name.as_deref(), fmt.lang),
            power: fmt.power_opt(c.power_w),
            voltage: fmt.unit_opt(c.voltage_v, "V", 1),
            current: fmt.unit_opt(c.current_a, "A", 2),
            irradiation: fmt.unit_opt(c.irradiation_pct, "%", 1),
            today: fmt.energy_opt(c.today_wh),
            lifetime: fmt.energy_opt(c.lifetime_wh),
            as_of: stale.then(|| fmt.time(c.time)),
        }
    }
}

/// A metric button of the comparison chart.
pub struct MetricButton {
    /// `power`, `voltage`, …
    pub metric: &'static str,
    /// The button text.
    pub label: &'static str,
    /// The chart starts with it.
    pub active: bool,
}

fn metric_buttons(lang: Lang) -> Vec<MetricButton> {
    DcMetric::ALL
        .into_iter()
        .map(|metric| {
            let (en, de) = match metric {
                DcMetric::Power => ("Power", "Leistung"),
                DcMetric::Voltage => ("Voltage", "Spannung"),
                DcMetric::Current => ("Current", "Strom"),
                DcMetric::Irradiation => ("Irradiation", "Einstrahlung"),
                DcMetric::DayEnergy => ("Energy today", "Energie heute"),
            };
            MetricButton {
                metric: metric.as_str(),
                label: if lang == Lang::De { de } else { en },
                active: metric == DcMetric::Power,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "dashboard/dc.html")]
struct DcPage {
    layout: Layout,
    tz: String,
    head: InverterHead,
    channels: Vec<ChannelCard>,
    controls: ChartControls,
    metrics: Vec<MetricButton>,
    chart: ChartData,
    chart_refresh_s: u32,
}

#[handler]
async fn dc_page(req: &Request, state: Data<&AppState>, Path(raw_id): Path<String>) -> Response {
    let title = ("DC channels", "DC-Eingänge");
    let (page, status, fmt) = match open(req, &state, &raw_id, title).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let id = status.inverter.id;
    let scope = &page.auth.scope;
    let parts = async {
        let channels = state.store.dc_channels(scope, id, fmt.now).await?;
        let from = fmt.now - TimeDelta::hours(24);
        let series = state
            .store
            .dc_metric_series(scope, id, DcMetric::Power, from, fmt.now, 720)
            .await?;
        Ok::<_, ApiError>((channels, charts::dc_chart(&series, fmt.lang)))
    };
    let (channels, chart) = match parts.await {
        Ok(parts) => parts,
        Err(e) => return page_error(page.layout, e),
    };
    let mut layout = page.layout;
    layout.title = format!("{} · {}", layout.t(title.0, title.1), status.inverter.name);
    render(
        &DcPage {
            tz: page.auth.user.time_zone.clone(),
            head: InverterHead::new(&status),
            channels: channels.iter().map(|c| ChannelCard::new(c, &fmt)).collect(),
            controls: ChartControls::new("dc-chart", &fmt),
            metrics: metric_buttons(fmt.lang),
            chart,
            chart_refresh_s: CHART_REFRESH_S,
            layout,
        },
        StatusCode::OK,
    )
}
