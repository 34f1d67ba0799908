//! The account pages' texts for what can go wrong, in the page's language.
//!
//! The flows the pages share with the JSON API ([`crate::api::auth`], [`crate::api::me`], …)
//! fail with an [`ApiError`] whose message is English (the API's language). [`error_text`]
//! gives the page's status and text: fixed messages are looked up in one table of English and
//! German pairs, the few messages with a value in them are matched by their start, and
//! anything unknown is shown in English rather than not at all.

use deyehard_core::auth::{PolicyError, TokenError};
use poem::Response;
use poem::http::StatusCode;

use crate::accounts::{INVALID_EMAIL, NAME_TOO_LONG, NO_DISPLAY_NAME, UNKNOWN_TIME_ZONE};
use crate::api::admin_ops::NOT_YOURSELF;
use crate::api::auth::LINK_USED;
use crate::api::me::{SAME_EMAIL, WRONG_PASSWORD};
use crate::error::ApiError;
use crate::layout::Lang;
use crate::session::VerifiedOnly;

/// Every rule of the password policy, in the order the live check lists them.
pub const POLICY_RULES: [PolicyError; 6] = [
    PolicyError::TooLong,
    PolicyError::TooShort,
    PolicyError::NoDigit,
    PolicyError::NoUppercase,
    PolicyError::Common,
    PolicyError::SameAsEmail,
];

/// A rule of the policy as a checklist item (a requirement, not an error) for the live check.
pub fn rule_label(lang: Lang, rule: PolicyError) -> &'static str {
    let (en, de) = match rule {
        PolicyError::TooShort => ("At least 8 characters", "Mindestens 8 Zeichen"),
        PolicyError::TooLong => ("At most 1024 bytes", "Höchstens 1024 Bytes"),
        PolicyError::NoDigit => ("At least one digit (0-9)", "Mindestens eine Ziffer (0-9)"),
        PolicyError::NoUppercase => (
            "At least one upper-case letter",
            "Mindestens ein Großbuchstabe",
        ),
        PolicyError::Common => (
            "Not a common, easily guessed password",
            "Kein verbreitetes, leicht zu erratendes Passwort",
        ),
        PolicyError::SameAsEmail => ("Not your email address", "Nicht deine E-Mail-Adresse"),
    };
    match lang {
        Lang::En => en,
        Lang::De => de,
    }
}

fn policy_german(rule: PolicyError) -> &'static str {
    match rule {
        PolicyError::TooShort => "Das Passwort muss mindestens 8 Zeichen lang sein.",
        PolicyError::TooLong => "Das Passwort darf höchstens 1024 Bytes lang sein.",
        PolicyError::NoDigit => "Das Passwort muss mindestens eine Ziffer (0-9) enthalten.",
        PolicyError::NoUppercase => "Das Passwort muss mindestens einen Großbuchstaben enthalten.",
        PolicyError::Common => {
            "Dieses Passwort ist zu verbreitet und leicht zu erraten. Bitte wähle ein anderes."
        }
        PolicyError::SameAsEmail => "Das Passwort darf nicht deine E-Mail-Adresse sein.",
    }
}

fn token_german(e: TokenError) -> &'static str {
    match e {
        TokenError::Expired => "Dieser Link ist abgelaufen. Bitte fordere einen neuen an.",
        TokenError::Invalid => "Dieser Link ist ungültig.",
        TokenError::WrongPurpose => "Dieser Link ist nicht für diese Aktion gedacht.",
    }
}

/// The fixed messages of the flows, with their German text.
fn fixed_german(english: &str) -> Option<&'static str> {
    const TABLE: [(&str, &str); 8] = [
        (
            LINK_USED,
            "Dieser Link wurde bereits verwendet oder ist nicht mehr gültig. Bitte fordere \
             einen neuen an.",
        ),
        (INVALID_EMAIL, "Das ist keine gültige E-Mail-Adresse."),
        (NO_DISPLAY_NAME, "Bitte gib einen Anzeigenamen ein."),
        (
            NAME_TOO_LONG,
            "Der Anzeigename darf höchstens 100 Zeichen lang sein.",
        ),
        (WRONG_PASSWORD, "Das aktuelle Passwort ist nicht richtig."),
        (SAME_EMAIL, "Das ist bereits deine E-Mail-Adresse."),
        (
            "this email address is already in use",
            "Diese E-Mail-Adresse wird bereits verwendet.",
        ),
        (
            NOT_YOURSELF,
            "Du kannst dein eigenes Konto hier nicht deaktivieren, herabstufen oder löschen: \
             bitte eine andere Administratorin oder einen anderen Administrator, oder nutze \
             die Kommandozeile.",
        ),
    ];
    let rules = POLICY_RULES
        .into_iter()
        .map(|rule| (rule.to_string(), policy_german(rule)));
    let links = [
        TokenError::Expired,
        TokenError::Invalid,
        TokenError::WrongPurpose,
    ]
    .into_iter()
    .map(|e| (e.to_string(), token_german(e)));
    let verified = [VerifiedOnly::CreateApiKeys, VerifiedOnly::RegisterInverters]
        .into_iter()
        .map(|v| (v.message().0.to_owned(), v.message().1));
    TABLE
        .into_iter()
        .map(|(en, de)| (en.to_owned(), de))
        .chain(rules)
        .chain(links)
        .chain(verified)
        .find(|(en, _)| en == english)
        .map(|(_, de)| de)
}

/// An English message of the flows in the page's language.
pub fn translate(lang: Lang, english: &str) -> String {
    if lang == Lang::En {
        return english.to_owned();
    }
    if let Some(german) = fixed_german(english) {
        return german.to_owned();
    }
    if let Some(zone) = english.strip_prefix(UNKNOWN_TIME_ZONE) {
        return format!("Unbekannte Zeitzone:{zone}");
    }
    if let Some(who) = english.strip_prefix("owner_email: there is no user ") {
        return format!("Es gibt kein Konto {who}.");
    }
    english.to_owned()
}

/// Picks the text for `lang` from an (English, German) pair.
pub fn pick(lang: Lang, (en, de): (&str, &str)) -> String {
    match lang {
        Lang::En => en.to_owned(),
        Lang::De => de.to_owned(),
    }
}

/// `resp` with `Retry-After` when `e` says when to come back (rate limits, 503), as the API's
/// error responses have it.
pub fn with_retry_after(mut resp: Response, e: &ApiError) -> Response {
    let seconds = match e {
        ApiError::RateLimited { retry_after_s } | ApiError::Unavailable { retry_after_s } => {
            *retry_after_s
        }
        _ => return resp,
    };
    if let Ok(value) = seconds.to_string().parse() {
        resp.headers_mut().insert("retry-after", value);
    }
    resp
}

/// The status and the text a page shows for a failed flow. Form and link errors are `400`;
/// causes of a 5xx stay in the log (written here, as the API would).
pub fn error_text(lang: Lang, e: &ApiError) -> (StatusCode, String) {
    let text = match e {
        ApiError::Unprocessable(t) | ApiError::NotAllowed(t) | ApiError::Conflict(t) => {
            translate(lang, t)
        }
        ApiError::Unauthorized => pick(
            lang,
            ("Please log in again.", "Bitte melde dich erneut an."),
        ),
        ApiError::Forbidden => pick(
            lang,
            (
                "You are not allowed to do this.",
                "Dazu bist du nicht berechtigt.",
            ),
        ),
        ApiError::NotFound => pick(
            lang,
            (
                "This does not exist (any more).",
                "Das gibt es nicht (mehr).",
            ),
        ),
        ApiError::RateLimited { retry_after_s } => match lang {
            Lang::En => {
                format!("Too many attempts. Please wait {retry_after_s} seconds and try again.")
            }
            Lang::De => format!(
                "Zu viele Versuche. Bitte warte {retry_after_s} Sekunden und versuche es erneut."
            ),
        },
        ApiError::Unavailable { .. } | ApiError::Internal(_) => {
            // Logs the cause, as the API's error response does.
            let _ = poem::error::ResponseError::as_response(e);
            pick(
                lang,
                (
                    "Something went wrong on our side. Please try again later.",
                    "Bei uns ist etwas schiefgegangen. Bitte versuche es später noch einmal.",
                ),
            )
        }
    };
    let status = match e {
        ApiError::Unprocessable(_) => StatusCode::BAD_REQUEST,
        other => other.status(),
    };
    (status, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_message_of_the_flows_has_a_german_text() {
        let mut english: Vec<String> = vec![
            LINK_USED.into(),
            INVALID_EMAIL.into(),
            NO_DISPLAY_NAME.into(),
            NAME_TOO_LONG.into(),
            WRONG_PASSWORD.into(),
            SAME_EMAIL.into(),
            NOT_YOURSELF.into(),
            crate::error::conflict_message(deyehard_store::constraint::USER_EMAIL),
            VerifiedOnly::CreateApiKeys.message().0.into(),
            VerifiedOnly::RegisterInverters.message().0.into(),
        ];
        english.extend(POLICY_RULES.iter().map(ToString::to_string));
        english.extend(
            [
                TokenError::Expired,
                TokenError::Invalid,
                TokenError::WrongPurpose,
            ]
            .iter()
            .map(ToString::to_string),
        );
        for text in english {
            let german = translate(Lang::De, &text);
            assert_ne!(german, text, "no German text for {text:?}");
            assert_eq!(translate(Lang::En, &text), text);
        }
    }

    #[test]
    fn messages_with_values_keep_the_value() {
        let zone = format!("{UNKNOWN_TIME_ZONE} \"Mars/Base\"");
        assert_eq!(
            translate(Lang::De, &zone),
            "Unbekannte Zeitzone: \"Mars/Base\""
        );
        let (status, text) = error_text(Lang::De, &ApiError::RateLimited { retry_after_s: 42 });
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(text.contains("42 Sekunden"), "{text}");
        let (status, text) = error_text(Lang::En, &ApiError::Unprocessable("x".into()));
        assert_eq!((status, text.as_str()), (StatusCode::BAD_REQUEST, "x"));
        assert_eq!(translate(Lang::De, "unknown text"), "unknown text");
    }
}
