//! What the inverter pages show, prepared for the templates: inverters with their status and
//! facts in the user's language and time zone, the inverter form with its problems by field,
//! serials pushed but not registered, and the connection help with the user's own values.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use deyehard_store::{ApiKeyStore, UnknownSerial};

use crate::api::inverter_input::{FieldErrors, InverterDraft};
use crate::api::inverters::{InverterInfo, Kind, LiveState};
use crate::error::ApiError;
use crate::http::AppState;
use crate::layout::Lang;
use crate::session::Authenticated;

/// The connection help (`templates/inverters/connect_help.html`) with the user's own values.
pub struct ConnectHelp {
    /// Where an OpenDTU pushes: `BASE_URL/api/opendtu/measurements`.
    pub push_url: String,
    /// The server's host name or address, for a Solarman logger.
    pub host: String,
    /// The collector's port.
    pub port: u16,
    /// Prefixes of the user's active API keys (`dh_…`).
    pub key_prefixes: Vec<String>,
}

impl ConnectHelp {
    /// The values for the user `auth`.
    ///
    /// # Errors
    /// Store errors.
    pub async fn load(state: &AppState, auth: &Authenticated) -> Result<Self, ApiError> {
        let base = &state.accounts.settings().base_url;
        let keys = state.store.api_keys(&auth.scope).await?;
        Ok(Self {
            push_url: format!("{base}/api/opendtu/measurements"),
            host: host_of(base).to_owned(),
            port: state.collector_port,
            key_prefixes: keys
                .into_iter()
                .filter(|k| k.revoked_at.is_none())
                .map(|k| k.prefix)
                .collect(),
        })
    }
}

/// The host of a URL such as `https://solar.example.org:8443/x` (`solar.example.org`).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// One line of an inverter's facts.
pub struct Fact {
    /// What it is.
    pub term: &'static str,
    /// Its value.
    pub value: String,
}

/// An inverter as the list shows it.
pub struct InverterView {
    /// Id.
    pub id: i64,
    /// Name (from the user or the device: escaped by the template).
    pub name: String,
    /// Kind, for people.
    pub kind: &'static str,
    /// `producing`, `idle`, `offline` or `no_data` (picks the badge colour).
    pub state: &'static str,
    /// The state, for people, with the power when producing.
    pub status: String,
    /// Serials, power, firmware, last data.
    pub facts: Vec<Fact>,
}

/// An instant in the user's zone, to the minute.
pub fn local_time(time: DateTime<Utc>, zone: Tz) -> String {
    time.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

impl InverterView {
    pub(crate) fn new(info: InverterInfo, lang: Lang, zone: Tz) -> Self {
        let t = |en: &'static str, de: &'static str| if lang == Lang::De { de } else { en };
        let (state, status) = match info.status.state {
            LiveState::Producing => {
                let watts = info.status.power_ac_w.unwrap_or_default();
                (
                    "producing",
                    format!("{} · {watts:.0} W", t("Producing", "Produziert")),
                )
            }
            LiveState::Idle => ("idle", t("Idle", "Ruht").to_owned()),
            LiveState::Offline => ("offline", t("Offline", "Offline").to_owned()),
            LiveState::NoData => ("no_data", t("No data yet", "Noch keine Daten").to_owned()),
        };
        let mut facts = Vec::new();
        let mut fact = |term, value: Option<String>| {
            if let Some(value) = value {
                facts.push(Fact { term, value });
            }
        };
        fact(t("Serial", "Seriennummer"), info.serial.clone());
        fact(
            t("Logger", "Logger"),
            info.logger_serial.map(|l| l.to_string()),
        );
        fact(
            t("Rated power", "Nennleistung"),
            info.rated_power_w.map(|p| format!("{p} W")),
        );
        fact(
            t("MPPT inputs", "MPPT-Eingänge"),
            info.mppt_count.map(|n| n.to_string()),
        );
        fact(t("Firmware", "Firmware"), info.firmware_version.clone());
        let seen = info.last_seen_at.map(|s| local_time(s, zone));
        fact(t("Last data", "Letzte Daten"), seen);
        let kind = match info.kind {
            Kind::Opendtu => "OpenDTU",
            Kind::Solarman => "Solarman",
            Kind::Victron => "Victron",
        };
        Self {
            id: info.id,
            name: info.name,
            kind,
            state,
            status,
            facts,
        }
    }
}

/// One option of the kind select.
pub struct KindOption {
    /// `opendtu`, …
    pub value: &'static str,
    /// For people.
    pub label: &'static str,
    /// The current choice.
    pub selected: bool,
}

/// One text field of the inverter form.
pub struct InputView {
    /// Form field name.
    pub name: &'static str,
    /// Element id (unique on the page).
    pub id: String,
    /// Label.
    pub label: &'static str,
    /// Help under the field (when there is no error).
    pub hint: &'static str,
    /// Current value.
    pub value: String,
    /// The problem with the value, in the page's language.
    pub error: Option<String>,
    /// `text`, `numeric` or `decimal` (the phone keyboard).
    pub inputmode: &'static str,
}

/// The inverter form: add (`key` = `new`) or edit (`key` = the id).
pub struct FormView {
    /// Prefix of the element ids.
    pub key: String,
    /// The kind choices.
    pub kinds: Vec<KindOption>,
    /// The problem with the kind.
    pub kind_error: Option<String>,
    /// The other fields.
    pub inputs: Vec<InputView>,
}

impl FormView {
    pub(crate) fn new(key: &str, draft: &InverterDraft, errors: &FieldErrors, lang: Lang) -> Self {
        let t = |en: &'static str, de: &'static str| if lang == Lang::De { de } else { en };
        let kind = if draft.kind.is_empty() {
            "opendtu"
        } else {
            draft.kind.as_str()
        };
        let kinds = [
            ("opendtu", "OpenDTU (Hoymiles)"),
            (
                "solarman",
                t("Solarman logger (Deye)", "Solarman-Logger (Deye)"),
            ),
            ("victron", "Victron (Cerbo GX)"),
        ]
        .into_iter()
        .map(|(value, label)| KindOption {
            value,
            label,
            selected: value == kind,
        })
        .collect();
        let input = |name: &'static str, label, hint, value: &str, inputmode| InputView {
            name,
            id: format!("{key}-{name}"),
            label,
            hint,
            value: value.to_owned(),
            error: errors.get(name, lang),
            inputmode,
        };
        let inputs = vec![
            input(
                "name",
                t("Name", "Name"),
                t("E.g. Balcony west.", "Z. B. Balkon West."),
                &draft.name,
                "text",
            ),
            input(
                "serial",
                t("Inverter serial", "Seriennummer des Wechselrichters"),
                t(
                    "Required for OpenDTU and Victron; optional for Solarman (the logger reports it).",
                    "Nötig für OpenDTU und Victron; bei Solarman optional (der Logger meldet sie).",
                ),
                &draft.serial,
                "text",
            ),
            input(
                "logger_serial",
                t("Logger serial", "Seriennummer des Loggers"),
                t(
                    "Solarman only: the number on the logger's label.",
                    "Nur Solarman: die Nummer auf dem Etikett des Loggers.",
                ),
                &draft.logger_serial,
                "numeric",
            ),
            input(
                "rated_power_w",
                t("Rated power (W)", "Nennleistung (W)"),
                t("Optional, e.g. 800.", "Optional, z. B. 800."),
                &draft.rated_power_w,
                "decimal",
            ),
            input(
                "mppt_count",
                t("MPPT inputs", "MPPT-Eingänge"),
                t("Optional, e.g. 2.", "Optional, z. B. 2."),
                &draft.mppt_count,
                "numeric",
            ),
        ];
        Self {
            key: key.to_owned(),
            kinds,
            kind_error: errors.get("kind", lang),
            inputs,
        }
    }
}

/// A serial pushed with the user's key but not registered.
pub struct UnknownView {
    /// The inverter serial.
    pub serial: String,
    /// The DTU that pushed it.
    pub dtu: Option<String>,
    /// Latest push, local time.
    pub last_seen: String,
    /// Pushes so far.
    pub times_seen: i64,
}

impl UnknownView {
    pub(crate) fn new(u: UnknownSerial, zone: Tz) -> Self {
        Self {
            last_seen: local_time(u.last_seen_at, zone),
            serial: u.inverter_serial,
            dtu: u.dtu_serial,
            times_seen: u.times_seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_base_urls() {
        assert_eq!(host_of("https://solar.example.org"), "solar.example.org");
        assert_eq!(host_of("http://127.0.0.1:8000/x"), "127.0.0.1");
        assert_eq!(host_of("http://[::1]:8000"), "::1");
        assert_eq!(host_of("https://user@host.example:8443?q"), "host.example");
        assert_eq!(host_of("solar.local"), "solar.local");
    }
}
