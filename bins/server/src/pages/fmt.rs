//! Numbers, units and times as the dashboard pages show them: in the page's language (decimal
//! comma in German) and the user's time zone. Charts format their own values in app.js; these
//! are the server-rendered figures (stat cards, inverter cards, "offline since …").

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use deyehard_store::LiveState;

use crate::layout::Lang;

/// Formatting for one page: language, time zone and the page's "now".
#[derive(Debug, Clone, Copy)]
pub struct Fmt {
    /// The page's language.
    pub lang: Lang,
    /// The user's time zone.
    pub tz: Tz,
    /// The instant the page shows.
    pub now: DateTime<Utc>,
}

impl Fmt {
    fn t(&self, en: &'static str, de: &'static str) -> &'static str {
        match self.lang {
            Lang::En => en,
            Lang::De => de,
        }
    }

    /// `value` with `digits` decimals and the language's decimal separator.
    pub fn number(&self, value: f64, digits: usize) -> String {
        let text = format!("{value:.digits$}");
        let text = if text.starts_with('-') && text.trim_start_matches(['-', '0', '.']).is_empty() {
            text.trim_start_matches('-').to_owned() // no "-0"
        } else {
            text
        };
        match self.lang {
            Lang::En => text,
            Lang::De => text.replace('.', ","),
        }
    }

    /// Power: `423 W`, `1.25 kW`, `2.10 MW`.
    pub fn power(&self, watts: f64) -> String {
        self.scaled(watts, "W")
    }

    /// Energy: `850 Wh`, `12.35 kWh`, `1.20 MWh`.
    pub fn energy(&self, wh: f64) -> String {
        self.scaled(wh, "Wh")
    }

    /// An optional value, `–` when absent.
    pub fn power_opt(&self, watts: Option<f64>) -> String {
        watts.map_or_else(|| "–".to_owned(), |w| self.power(w))
    }

    /// An optional energy, `–` when absent.
    pub fn energy_opt(&self, wh: Option<f64>) -> String {
        wh.map_or_else(|| "–".to_owned(), |w| self.energy(w))
    }

    /// An optional value with a unit and one decimal (`33.1 V`), `–` when absent.
    pub fn unit_opt(&self, value: Option<f64>, unit: &str, digits: usize) -> String {
        value.map_or_else(
            || "–".to_owned(),
            |v| format!("{} {unit}", self.number(v, digits)),
        )
    }

    fn scaled(&self, value: f64, unit: &str) -> String {
        let magnitude = value.abs();
        if magnitude >= 1e6 {
            format!("{} M{unit}", self.number(value / 1e6, 2))
        } else if magnitude >= 1e3 {
            format!("{} k{unit}", self.number(value / 1e3, 2))
        } else {
            format!("{} {unit}", self.number(value, 0))
        }
    }

    /// A time in the user's zone: `14:05` today, `14 Jun, 14:05` / `14.06., 14:05` this year,
    /// with the year before that.
    pub fn time(&self, time: DateTime<Utc>) -> String {
        let local = time.with_timezone(&self.tz);
        let today = self.now.with_timezone(&self.tz).date_naive();
        let clock = local.format("%H:%M").to_string();
        if local.date_naive() == today {
            return clock;
        }
        let day = self.date(local.date_naive(), local.year() != today.year());
        format!("{day}, {clock}")
    }

    /// A date: `14 Jun` / `14.06.`, with the year when `with_year`.
    pub fn date(&self, date: NaiveDate, with_year: bool) -> String {
        match (self.lang, with_year) {
            (Lang::En, false) => date.format("%-d %b").to_string(),
            (Lang::En, true) => date.format("%-d %b %Y").to_string(),
            (Lang::De, false) => date.format("%d.%m.").to_string(),
            (Lang::De, true) => date.format("%d.%m.%Y").to_string(),
        }
    }

    /// How long ago: `just now`, `5 min ago`, `3 h ago`, `2 days ago`.
    pub fn ago(&self, time: DateTime<Utc>) -> String {
        let age = self.now - time;
        let (n, en, de) = if age < TimeDelta::minutes(1) {
            return self.t("just now", "gerade eben").to_owned();
        } else if age < TimeDelta::hours(1) {
            (age.num_minutes(), "min", "Min.")
        } else if age < TimeDelta::days(2) {
            (age.num_hours(), "h", "Std.")
        } else {
            (age.num_days(), "days", "Tagen")
        };
        match self.lang {
            Lang::En => format!("{n} {en} ago"),
            Lang::De => format!("vor {n} {de}"),
        }
    }

    /// The text of a state: `Producing`, `Idle`, `Offline since 14:05`, `No data yet`.
    pub fn state(&self, state: LiveState) -> String {
        match state {
            LiveState::Producing => self.t("Producing", "Produziert").to_owned(),
            LiveState::Idle => self.t("Idle", "Ruhend").to_owned(),
            LiveState::NoData => self.t("No data yet", "Noch keine Daten").to_owned(),
            LiveState::Offline { since: Some(since) } => {
                format!(
                    "{} {}",
                    self.t("Offline since", "Offline seit"),
                    self.time(since)
                )
            }
            LiveState::Offline { since: None } => self
                .t("Offline for over a week", "Seit über einer Woche offline")
                .to_owned(),
        }
    }
}

/// The DaisyUI badge class of a state.
pub fn state_badge(state: LiveState) -> &'static str {
    match state {
        LiveState::Producing => "badge-success",
        LiveState::Idle => "badge-ghost",
        LiveState::NoData => "badge-warning",
        LiveState::Offline { .. } => "badge-error",
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn fmt(lang: Lang) -> Fmt {
        Fmt {
            lang,
            tz: chrono_tz::Europe::Berlin,
            now: Utc.with_ymd_and_hms(2025, 6, 15, 12, 0, 0).unwrap(),
        }
    }

    #[test]
    fn units_scale_and_follow_the_language() {
        let (en, de) = (fmt(Lang::En), fmt(Lang::De));
        assert_eq!(en.power(423.4), "423 W");
        assert_eq!(en.power(1250.0), "1.25 kW");
        assert_eq!(de.power(1250.0), "1,25 kW");
        assert_eq!(de.energy(2_100_000.0), "2,10 MWh");
        assert_eq!(en.energy(-0.2), "0 Wh");
        assert_eq!(en.power_opt(None), "–");
        assert_eq!(de.unit_opt(Some(33.14), "V", 1), "33,1 V");
    }

    #[test]
    fn times_are_local_and_relative() {
        let (en, de) = (fmt(Lang::En), fmt(Lang::De));
        let t = Utc.with_ymd_and_hms(2025, 6, 15, 11, 55, 0).unwrap();
        assert_eq!(en.time(t), "13:55", "Berlin is UTC+2 in June");
        assert_eq!(en.ago(t), "5 min ago");
        assert_eq!(de.ago(t), "vor 5 Min.");
        let earlier = Utc.with_ymd_and_hms(2025, 6, 1, 8, 0, 0).unwrap();
        assert_eq!(en.time(earlier), "1 Jun, 10:00");
        assert_eq!(de.time(earlier), "01.06., 10:00");
        let last_year = Utc.with_ymd_and_hms(2024, 6, 1, 8, 0, 0).unwrap();
        assert_eq!(de.time(last_year), "01.06.2024, 10:00");
        assert_eq!(
            de.state(LiveState::Offline { since: Some(t) }),
            "Offline seit 13:55"
        );
    }
}
