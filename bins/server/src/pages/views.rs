//! View models of the dashboard pages, built from the API's views so that pages and API show
//! the same figures: inverter cards and totals, the chart controls, the energy card with its
//! period navigation, the connection help, and the error page.

use askama::Template;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use deyehard_core::energy::Period;
use deyehard_store::LiveState;
use poem::Response;
use poem::http::StatusCode;

use super::fmt::{Fmt, state_badge};
use super::render;
use crate::api::charts::ChartData;
use crate::api::dashboard::{InverterLive, SummaryView};
use crate::api::ranges;
use crate::error::ApiError;
use crate::layout::{Lang, Layout};
use crate::session::Authenticated;

/// The page's formatting for the signed-in user.
pub fn page_fmt(layout: &Layout, auth: &Authenticated, now: DateTime<Utc>) -> Fmt {
    Fmt {
        lang: layout.lang,
        tz: ranges::user_zone(&auth.user.time_zone),
        now,
    }
}

/// The state of an API view, back as the store's value (for its text).
pub fn live_state(live: &InverterLive) -> LiveState {
    match live.state.as_str() {
        "producing" => LiveState::Producing,
        "offline" => LiveState::Offline {
            since: live.offline_since,
        },
        "no_data" => LiveState::NoData,
        _ => LiveState::Idle,
    }
}

/// One inverter on the start page.
#[derive(Debug, Clone)]
pub struct InverterCard {
    /// Inverter id.
    pub id: i64,
    /// Name (escaped by the template).
    pub name: String,
    /// `producing`, `idle`, `offline`, `no_data` (a `data-state` hook).
    pub state: String,
    /// The state as text (`Offline since 14:05`).
    pub state_text: String,
    /// DaisyUI badge class.
    pub badge: &'static str,
    /// Live power.
    pub power: String,
    /// Today's energy.
    pub today: String,
    /// When data last arrived (`14:05 · 5 min ago`), or "never".
    pub last_seen: String,
}

impl InverterCard {
    /// The card of an inverter.
    pub fn new(live: &InverterLive, fmt: &Fmt) -> Self {
        let state = live_state(live);
        let last_seen = live.last_seen_at.map_or_else(
            || lang_pick(fmt.lang, "never", "nie").to_owned(),
            |t| format!("{} · {}", fmt.time(t), fmt.ago(t)),
        );
        Self {
            id: live.id,
            name: live.name.clone(),
            state: live.state.clone(),
            state_text: fmt.state(state),
            badge: state_badge(state),
            power: fmt.power(live.live_power_w),
            today: fmt.energy(live.today_wh),
            last_seen,
        }
    }
}

fn lang_pick(lang: Lang, en: &'static str, de: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::De => de,
    }
}

/// Totals over all inverters.
#[derive(Debug, Clone)]
pub struct Totals {
    /// Live power of the producing inverters.
    pub power: String,
    /// Energy today.
    pub today: String,
    /// Peak of today's summed power.
    pub peak: String,
    /// Lifetime energy.
    pub lifetime: String,
    /// `3 of 4 producing`.
    pub producing: String,
    /// When the figures were computed (local time with seconds).
    pub updated: String,
}

impl Totals {
    /// The totals of a summary.
    pub fn new(view: &SummaryView, fmt: &Fmt) -> Self {
        let count = view.inverters.len();
        Self {
            power: fmt.power(view.live_power_w),
            today: fmt.energy(view.today_wh),
            peak: fmt.power_opt(view.today_peak_w),
            lifetime: fmt.energy(view.lifetime_wh),
            producing: producing_phrase(view.producing, count, fmt.lang),
            updated: view
                .generated_at
                .with_timezone(&fmt.tz)
                .format("%H:%M:%S")
                .to_string(),
        }
    }
}

/// A range button of a chart.
#[derive(Debug, Clone)]
pub struct RangeButton {
    /// Seconds back from now.
    pub seconds: i64,
    /// `1H`, `6H`, `24H`, `7D`, `30D`.
    pub label: &'static str,
    /// The chart starts with it.
    pub active: bool,
}

/// The range controls of a time-series chart (`[data-chart-controls]` in app.js).
#[derive(Debug, Clone)]
pub struct ChartControls {
    /// The `id` of the chart element they drive.
    pub chart_id: &'static str,
    /// The range buttons.
    pub buttons: Vec<RangeButton>,
    /// Initial value of the custom range's start date.
    pub from: String,
    /// Initial value of the custom range's end date.
    pub to: String,
}

impl ChartControls {
    /// 1H … 30D, with 24H active, and yesterday … today as the custom range.
    pub fn new(chart_id: &'static str, fmt: &Fmt) -> Self {
        let today = fmt.now.with_timezone(&fmt.tz).date_naive();
        let buttons = [
            (3600, "1H"),
            (6 * 3600, "6H"),
            (86_400, "24H"),
            (7 * 86_400, "7D"),
            (30 * 86_400, "30D"),
        ]
        .into_iter()
        .map(|(seconds, label)| RangeButton {
            seconds,
            label,
            active: seconds == 86_400,
        })
        .collect();
        Self {
            chart_id,
            buttons,
            from: today.pred_opt().unwrap_or(today).to_string(),
            to: today.to_string(),
        }
    }
}

/// A period tab of an energy card.
#[derive(Debug, Clone)]
pub struct PeriodTab {
    /// `day`, `week`, `month`, `year`.
    pub period: &'static str,
    /// The tab text.
    pub label: &'static str,
    /// The card shows this period.
    pub active: bool,
}

/// An energy card: bars of a period with navigation (an HTMX fragment of its own).
#[derive(Debug, Clone)]
pub struct EnergyCard {
    /// The fragment URL (`/inverters/3/energy`, `/summary/energy`), queried with
    /// `period` and `date`.
    pub fragment: String,
    /// The page URL, for links without JavaScript.
    pub page: String,
    /// The period shown.
    pub period: &'static str,
    /// The date shown.
    pub date: String,
    /// The period as a heading (`Sunday, 15 June 2025`, `June 2025`).
    pub title: String,
    /// Energy of the period.
    pub total: String,
    /// A date of the previous period.
    pub previous: String,
    /// A date of the next period.
    pub next: String,
    /// The next period starts after today.
    pub at_end: bool,
    /// The tabs.
    pub tabs: Vec<PeriodTab>,
    /// The bars.
    pub chart: ChartData,
}

/// What an energy card shows.
pub struct EnergyCardInput {
    /// Fragment and page URLs.
    pub urls: (String, String),
    /// Period and date.
    pub period: Period,
    /// The date.
    pub date: NaiveDate,
    /// Previous and next dates.
    pub around: (NaiveDate, NaiveDate),
    /// The period's energy, Wh.
    pub total_wh: f64,
    /// The bars.
    pub chart: ChartData,
}

impl EnergyCard {
    /// The card for `input`.
    pub fn new(input: EnergyCardInput, fmt: &Fmt) -> Self {
        let (start_of_next, _) =
            deyehard_core::energy::period_bounds(input.period, input.around.1, fmt.tz);
        let tabs = [
            (Period::Day, "Day", "Tag"),
            (Period::Week, "Week", "Woche"),
            (Period::Month, "Month", "Monat"),
            (Period::Year, "Year", "Jahr"),
        ]
        .into_iter()
        .map(|(period, en, de)| PeriodTab {
            period: period.as_str(),
            label: lang_pick(fmt.lang, en, de),
            active: period == input.period,
        })
        .collect();
        Self {
            fragment: input.urls.0,
            page: input.urls.1,
            period: input.period.as_str(),
            date: input.date.to_string(),
            title: period_title(input.period, input.date, fmt.lang),
            total: fmt.energy(input.total_wh),
            previous: input.around.0.to_string(),
            next: input.around.1.to_string(),
            at_end: start_of_next > fmt.now,
            tabs,
            chart: input.chart,
        }
    }
}

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_DE: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
const DAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const DAYS_DE: [&str; 7] = [
    "Montag",
    "Dienstag",
    "Mittwoch",
    "Donnerstag",
    "Freitag",
    "Samstag",
    "Sonntag",
];

/// The heading of a period: `Sunday, 15 June 2025`, `Week 24, 2025`, `June 2025`, `2025`.
pub fn period_title(period: Period, date: NaiveDate, lang: Lang) -> String {
    let (months, days) = match lang {
        Lang::En => (MONTHS_EN, DAYS_EN),
        Lang::De => (MONTHS_DE, DAYS_DE),
    };
    let month = months
        .get(date.month0() as usize)
        .copied()
        .unwrap_or_default();
    let weekday = days
        .get(date.weekday().num_days_from_monday() as usize)
        .copied()
        .unwrap_or_default();
    match (period, lang) {
        (Period::Day, Lang::En) => format!("{weekday}, {} {month} {}", date.day(), date.year()),
        (Period::Day, Lang::De) => format!("{weekday}, {}. {month} {}", date.day(), date.year()),
        (Period::Week, Lang::En) => {
            let week = date.iso_week();
            format!("Week {}, {}", week.week(), week.year())
        }
        (Period::Week, Lang::De) => {
            let week = date.iso_week();
            format!("KW {} / {}", week.week(), week.year())
        }
        (Period::Month, _) => format!("{month} {}", date.year()),
        (Period::Year, _) => date.year().to_string(),
    }
}

#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    message: String,
}

/// The HTML answer to a failed page: 404 for an inverter that is not the user's (the same as
/// a missing one), the error's status and a short message otherwise.
pub fn page_error(mut layout: Layout, error: ApiError) -> Response {
    let status = error.status();
    if status.is_server_error() {
        tracing::error!(error = %error, "page failed");
    }
    let (heading, message) = if status == StatusCode::NOT_FOUND {
        (
            layout.t("Not found", "Nicht gefunden"),
            layout
                .t(
                    "There is no inverter with this number in your account.",
                    "In deinem Konto gibt es keinen Wechselrichter mit dieser Nummer.",
                )
                .to_owned(),
        )
    } else if status.is_client_error() {
        (
            layout.t("Cannot show this", "Kann nicht angezeigt werden"),
            error.to_string(),
        )
    } else {
        (
            layout.t("Something went wrong", "Etwas ist schiefgelaufen"),
            layout
                .t(
                    "Please try again in a moment.",
                    "Bitte versuche es gleich noch einmal.",
                )
                .to_owned(),
        )
    };
    let heading = heading.to_owned();
    layout.title.clone_from(&heading);
    render(
        &ErrorPage {
            layout,
            heading,
            message,
        },
        status,
    )
}

/// `3 of 4 producing` / `3 von 4 produzieren` (`1 von 4 produziert`: German verbs agree).
fn producing_phrase(producing: u32, count: usize, lang: Lang) -> String {
    match lang {
        Lang::En => format!("{producing} of {count} producing"),
        Lang::De if producing == 1 => format!("1 von {count} produziert"),
        Lang::De => format!("{producing} von {count} produzieren"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producing_phrase_agrees_in_german() {
        assert_eq!(producing_phrase(1, 1, Lang::En), "1 of 1 producing");
        assert_eq!(producing_phrase(1, 3, Lang::De), "1 von 3 produziert");
        assert_eq!(producing_phrase(0, 3, Lang::De), "0 von 3 produzieren");
        assert_eq!(producing_phrase(2, 3, Lang::De), "2 von 3 produzieren");
    }

    #[test]
    fn period_titles_in_both_languages() {
        let day = NaiveDate::from_ymd_opt(2025, 6, 15).unwrap();
        assert_eq!(
            period_title(Period::Day, day, Lang::En),
            "Sunday, 15 June 2025"
        );
        assert_eq!(
            period_title(Period::Day, day, Lang::De),
            "Sonntag, 15. Juni 2025"
        );
        assert_eq!(period_title(Period::Week, day, Lang::En), "Week 24, 2025");
        assert_eq!(period_title(Period::Month, day, Lang::De), "Juni 2025");
        assert_eq!(period_title(Period::Year, day, Lang::En), "2025");
    }
}
