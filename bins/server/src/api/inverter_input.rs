//! Checking what a user entered for an inverter, once for the JSON API and the pages: every
//! problem names its field, with a message in English and German (the pages show it next to
//! the field, the API prefixes it with the field name).

use deyehard_core::{DeviceSerial, InverterKind, LoggerSerial, ParseIdError};
use deyehard_store::{InverterFields, constraint};
use serde::Deserialize;

use crate::error::ApiError;
use crate::layout::Lang;

/// Longest inverter name.
pub const MAX_NAME_CHARS: usize = 100;
/// Highest rated power accepted, W.
pub const MAX_RATED_POWER_W: f64 = 10_000_000.0;
/// Most MPPT inputs accepted.
pub const MAX_MPPT_COUNT: u8 = 24;

/// The fields of an inverter as entered: text, empty for "none". The page forms post these
/// names; the API fills them from its typed body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct InverterDraft {
    /// `opendtu`, `solarman` or `victron`.
    pub kind: String,
    /// Name shown in the UI.
    pub name: String,
    /// Device serial (required for OpenDTU and Victron, optional for Solarman).
    pub serial: String,
    /// Solarman logger serial (Solarman only, required there).
    pub logger_serial: String,
    /// Rated AC power, W.
    pub rated_power_w: String,
    /// Number of MPPT inputs.
    pub mppt_count: String,
}

/// A field of [`InverterDraft`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `kind`
    Kind,
    /// `name`
    Name,
    /// `serial`
    Serial,
    /// `logger_serial`
    LoggerSerial,
    /// `rated_power_w`
    RatedPower,
    /// `mppt_count`
    MpptCount,
}

impl Field {
    /// The field's name in forms and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Kind => "kind",
            Self::Name => "name",
            Self::Serial => "serial",
            Self::LoggerSerial => "logger_serial",
            Self::RatedPower => "rated_power_w",
            Self::MpptCount => "mppt_count",
        }
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// Empty, but needed (for this kind).
    Required,
    /// Longer than allowed.
    TooLong {
        /// Most characters.
        max: usize,
    },
    /// A character a serial cannot hold.
    BadCharacter(char),
    /// Not a whole number (logger serial, MPPT count) or not a number (rated power).
    NotANumber,
    /// A number outside the allowed range.
    OutOfRange {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
    },
    /// Not one of the kinds.
    UnknownKind,
    /// A logger serial on an inverter that is not a Solarman one.
    OnlyForSolarman,
    /// The user already has an inverter with this serial.
    Taken,
    /// Some account already claimed this logger.
    Claimed,
}

/// A problem with one field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The field.
    pub field: Field,
    /// The problem.
    pub problem: Problem,
}

impl FieldError {
    const fn new(field: Field, problem: Problem) -> Self {
        Self { field, problem }
    }

    /// The conflict a unique constraint reports, as a problem of its field.
    pub fn from_conflict(name: &str) -> Option<Self> {
        match name {
            constraint::INVERTER_SERIAL => Some(Self::new(Field::Serial, Problem::Taken)),
            constraint::INVERTER_LOGGER_SERIAL => {
                Some(Self::new(Field::LoggerSerial, Problem::Claimed))
            }
            _ => None,
        }
    }

    /// The message in `lang`.
    pub fn message(&self, lang: Lang) -> String {
        let t = |en: &str, de: &str| match lang {
            Lang::En => en.to_owned(),
            Lang::De => de.to_owned(),
        };
        match (&self.problem, self.field) {
            (Problem::Required, Field::Serial) => t(
                "OpenDTU and Victron inverters need their serial number.",
                "OpenDTU- und Victron-Wechselrichter brauchen ihre Seriennummer.",
            ),
            (Problem::Required, Field::LoggerSerial) => t(
                "A Solarman inverter needs the serial number of its logger.",
                "Ein Solarman-Wechselrichter braucht die Seriennummer seines Loggers.",
            ),
            (Problem::Required, _) => {
                t("Please fill in this field.", "Bitte fülle dieses Feld aus.")
            }
            (Problem::TooLong { max }, _) => match lang {
                Lang::En => format!("At most {max} characters, please."),
                Lang::De => format!("Bitte höchstens {max} Zeichen."),
            },
            (Problem::BadCharacter(c), _) => match lang {
                Lang::En => format!(
                    "A serial number cannot contain {c:?} (letters and digits only, no spaces)."
                ),
                Lang::De => format!(
                    "Eine Seriennummer darf {c:?} nicht enthalten (nur Buchstaben und Ziffern, keine Leerzeichen)."
                ),
            },
            (Problem::NotANumber, Field::LoggerSerial) => t(
                "A logger serial is a number between 0 and 4294967295 (printed on the logger).",
                "Eine Logger-Seriennummer ist eine Zahl zwischen 0 und 4294967295 (steht auf dem Logger).",
            ),
            (Problem::NotANumber, _) => t("Please enter a number.", "Bitte gib eine Zahl ein."),
            (Problem::OutOfRange { min, max }, _) => match lang {
                Lang::En => format!("Please enter a number from {min} to {max}."),
                Lang::De => format!("Bitte gib eine Zahl von {min} bis {max} ein."),
            },
            (Problem::UnknownKind, _) => t(
                "Choose OpenDTU, Solarman or Victron.",
                "Wähle OpenDTU, Solarman oder Victron.",
            ),
            (Problem::OnlyForSolarman, _) => t(
                "Only Solarman inverters have a logger serial: leave this empty.",
                "Nur Solarman-Wechselrichter haben eine Logger-Seriennummer: lass das Feld leer.",
            ),
            (Problem::Taken, _) => t(
                "You already have an inverter with this serial number.",
                "Du hast bereits einen Wechselrichter mit dieser Seriennummer.",
            ),
            (Problem::Claimed, _) => t(
                "This logger is already registered by an account. If it is yours, ask an administrator to resolve the conflict.",
                "Dieser Logger ist bereits in einem Konto registriert. Wenn er dir gehört, bitte eine Administratorin oder einen Administrator, den Konflikt zu lösen.",
            ),
        }
    }
}

/// The problems of a draft (at least one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// The message for the field named `name`, if it has a problem (for templates).
    pub fn get(&self, name: &str, lang: Lang) -> Option<String> {
        self.0
            .iter()
            .find(|e| e.field.name() == name)
            .map(|e| e.message(lang))
    }

    /// Whether nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The API error: 409 for a taken serial, 422 otherwise; the message names every field.
    pub fn to_api_error(&self) -> ApiError {
        let message = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field.name(), e.message(Lang::En)))
            .collect::<Vec<_>>()
            .join(" ");
        let conflict = self
            .0
            .iter()
            .any(|e| matches!(e.problem, Problem::Taken | Problem::Claimed));
        if conflict {
            ApiError::Conflict(message)
        } else {
            ApiError::Unprocessable(message)
        }
    }
}

impl From<FieldError> for FieldErrors {
    fn from(e: FieldError) -> Self {
        Self(vec![e])
    }
}

impl InverterDraft {
    /// The draft of a stored inverter's fields (for editing).
    pub fn of(fields: &InverterFields) -> Self {
        let text = |v: Option<String>| v.unwrap_or_default();
        Self {
            kind: fields.kind.as_str().to_owned(),
            name: fields.name.clone(),
            serial: text(fields.serial.as_ref().map(ToString::to_string)),
            logger_serial: text(fields.logger_serial.map(|l| l.to_string())),
            rated_power_w: text(fields.rated_power_w.map(|p| p.to_string())),
            mppt_count: text(fields.mppt_count.map(|n| n.to_string())),
        }
    }

    /// Checks every field and the rules between them.
    ///
    /// # Errors
    /// Every problem found, by field.
    pub fn parse(&self) -> Result<InverterFields, FieldErrors> {
        let mut errors = Vec::new();
        let mut check = |field: Field, result: Result<(), Problem>| {
            if let Err(problem) = result {
                errors.push(FieldError::new(field, problem));
            }
        };
        let kind = self.kind.parse::<InverterKind>().ok();
        check(Field::Kind, kind.map(|_| ()).ok_or(Problem::UnknownKind));
        let name = self.name.trim();
        check(Field::Name, text_length(name));
        let serial = optional(&self.serial, |s| {
            DeviceSerial::parse(s).map_err(serial_problem)
        });
        let logger = optional(&self.logger_serial, |s| {
            s.parse::<LoggerSerial>().map_err(|_| Problem::NotANumber)
        });
        let rated = optional(&self.rated_power_w, rated_power);
        let mppt = optional(&self.mppt_count, mppt_count);
        check(
            Field::Serial,
            serial.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        check(
            Field::LoggerSerial,
            logger.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        check(
            Field::RatedPower,
            rated.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        check(
            Field::MpptCount,
            mppt.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        if let (Some(kind), Ok(serial), Ok(logger)) = (kind, &serial, &logger) {
            match kind {
                InverterKind::Solarman if logger.is_none() => {
                    check(Field::LoggerSerial, Err(Problem::Required));
                }
                InverterKind::Opendtu | InverterKind::Victron => {
                    if serial.is_none() {
                        check(Field::Serial, Err(Problem::Required));
                    }
                    if logger.is_some() {
                        check(Field::LoggerSerial, Err(Problem::OnlyForSolarman));
                    }
                }
                InverterKind::Solarman => {}
            }
        }
        match (kind, serial, logger, rated, mppt) {
            (Some(kind), Ok(serial), Ok(logger_serial), Ok(rated_power_w), Ok(mppt_count))
                if errors.is_empty() =>
            {
                Ok(InverterFields {
                    name: name.to_owned(),
                    kind,
                    serial,
                    logger_serial,
                    rated_power_w,
                    mppt_count,
                })
            }
            _ => Err(FieldErrors(errors)),
        }
    }
}

fn optional<T>(
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, Problem>,
) -> Result<Option<T>, Problem> {
    let text = text.trim();
    if text.is_empty() {
        Ok(None)
    } else {
        parse(text).map(Some)
    }
}

fn text_length(name: &str) -> Result<(), Problem> {
    if name.is_empty() {
        Err(Problem::Required)
    } else if name.chars().count() > MAX_NAME_CHARS {
        Err(Problem::TooLong {
            max: MAX_NAME_CHARS,
        })
    } else {
        Ok(())
    }
}

fn serial_problem(e: ParseIdError) -> Problem {
    match e {
        ParseIdError::TooLong { max } => Problem::TooLong { max },
        ParseIdError::BadCharacter(c) => Problem::BadCharacter(c),
        _ => Problem::Required,
    }
}

/// Watts, with a decimal point or (German) a decimal comma.
fn rated_power(text: &str) -> Result<f64, Problem> {
    let normalised = if text.contains('.') {
        text.to_owned()
    } else {
        text.replace(',', ".")
    };
    let watts: f64 = normalised.parse().map_err(|_| Problem::NotANumber)?;
    if watts.is_finite() && (1.0..=MAX_RATED_POWER_W).contains(&watts) {
        Ok(watts)
    } else {
        Err(Problem::OutOfRange {
            min: 1.0,
            max: MAX_RATED_POWER_W,
        })
    }
}

fn mppt_count(text: &str) -> Result<u8, Problem> {
    let range = Problem::OutOfRange {
        min: 1.0,
        max: f64::from(MAX_MPPT_COUNT),
    };
    let n: i64 = text.parse().map_err(|_| Problem::NotANumber)?;
    u8::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_MPPT_COUNT).contains(n))
        .ok_or(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(kind: &str, serial: &str, logger: &str) -> InverterDraft {
        InverterDraft {
            kind: kind.to_owned(),
            name: "Balcony".to_owned(),
            serial: serial.to_owned(),
            logger_serial: logger.to_owned(),
            ..InverterDraft::default()
        }
    }

    fn problems(d: &InverterDraft) -> Vec<(&'static str, Problem)> {
        d.parse()
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| (e.field.name(), e.problem))
            .collect()
    }

    #[test]
    fn kinds_need_their_serials() {
        let ok = draft("opendtu", " 116166771004 ", "").parse().unwrap();
        assert_eq!(ok.serial.unwrap().as_str(), "116166771004");
        assert_eq!(ok.kind, InverterKind::Opendtu);
        let ok = draft("solarman", "", "3939932716").parse().unwrap();
        assert_eq!(ok.logger_serial, Some(LoggerSerial::new(3_939_932_716)));
        assert_eq!(
            problems(&draft("opendtu", "", "")),
            [("serial", Problem::Required)]
        );
        assert_eq!(
            problems(&draft("victron", "HQ1", "17")),
            [("logger_serial", Problem::OnlyForSolarman)]
        );
        assert_eq!(
            problems(&draft("solarman", "2306123456", "")),
            [("logger_serial", Problem::Required)]
        );
        assert_eq!(
            problems(&draft("sma", "1", "")),
            [("kind", Problem::UnknownKind)]
        );
    }

    #[test]
    fn every_bad_field_is_reported_by_name() {
        let d = InverterDraft {
            kind: "opendtu".into(),
            name: " ".into(),
            serial: "11 61".into(),
            logger_serial: "-1".into(),
            rated_power_w: "lots".into(),
            mppt_count: "25".into(),
        };
        let got = problems(&d);
        assert_eq!(
            got,
            [
                ("name", Problem::Required),
                ("serial", Problem::BadCharacter(' ')),
                ("logger_serial", Problem::NotANumber),
                ("rated_power_w", Problem::NotANumber),
                (
                    "mppt_count",
                    Problem::OutOfRange {
                        min: 1.0,
                        max: 24.0
                    }
                ),
            ]
        );
        let err = d.parse().unwrap_err();
        assert_eq!(err.to_api_error().status(), 422);
        let message = err.to_api_error().to_string();
        assert!(
            message.starts_with("name: Please fill in this field. serial: "),
            "{message}"
        );
        assert!(
            err.get("mppt_count", Lang::De)
                .unwrap()
                .contains("von 1 bis 24")
        );
        assert_eq!(err.get("kind", Lang::En), None);
    }

    #[test]
    fn numbers_accept_a_decimal_comma_and_stay_in_range() {
        let mut d = draft("opendtu", "1", "");
        d.rated_power_w = "800,5".into();
        d.mppt_count = "2".into();
        let f = d.parse().unwrap();
        assert_eq!((f.rated_power_w, f.mppt_count), (Some(800.5), Some(2)));
        for bad in ["0", "-5", "inf", "NaN", "1e12"] {
            d.rated_power_w = bad.into();
            assert!(d.parse().is_err(), "{bad}");
        }
        d.rated_power_w = String::new();
        d.name = "x".repeat(101);
        assert_eq!(problems(&d), [("name", Problem::TooLong { max: 100 })]);
    }

    #[test]
    fn conflicts_become_field_errors_and_409() {
        let e = FieldError::from_conflict(constraint::INVERTER_LOGGER_SERIAL).unwrap();
        assert_eq!(e.field, Field::LoggerSerial);
        let api = FieldErrors::from(e).to_api_error();
        assert_eq!(api.status(), 409);
        assert!(
            api.to_string()
                .starts_with("logger_serial: This logger is already registered")
        );
        assert_eq!(FieldError::from_conflict("users_email_key"), None);
    }

    #[test]
    fn a_stored_inverter_round_trips_through_its_draft() {
        let mut d = draft("solarman", "2306123456", "17");
        d.rated_power_w = "600".into();
        d.mppt_count = "2".into();
        let fields = d.parse().unwrap();
        assert_eq!(InverterDraft::of(&fields).parse().unwrap(), fields);
    }
}
