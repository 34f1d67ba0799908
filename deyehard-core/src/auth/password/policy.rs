//! The password policy: at least [`MIN_PASSWORD_CHARS`] characters, a digit, an upper-case
//! letter, not a common password, not the account's email address; at most
//! [`MAX_PASSWORD_BYTES`] bytes.
//!
//! The common-password list (`common-passwords.txt`, a few hundred entries in lower case,
//! English and German) is compiled in. A password counts as common when, in lower case, it
//! is on the list, or is on the list once the digits and punctuation at its start and end
//! are stripped: "Password1!" and "!Sommer2024" are both rejected.

use std::collections::HashSet;
use std::sync::LazyLock;

/// The fewest characters (Unicode scalar values) a password may have.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The most bytes (UTF-8) a password may have.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// One rule of the policy that a password breaks.
///
/// `Display` gives an English sentence for the user; [`PolicyError::code`] gives a stable
/// key the UI can translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PolicyError {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("The password must be at least 8 characters long.")]
    TooShort,
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    #[error("The password must be at most 1024 bytes long.")]
    TooLong,
    /// No digit 0–9.
    #[error("The password must contain at least one digit (0-9).")]
    NoDigit,
    /// No upper-case letter.
    #[error("The password must contain at least one upper-case letter.")]
    NoUppercase,
    /// A well-known password, possibly with digits or punctuation around it.
    #[error("This password is too common and easy to guess. Please choose another one.")]
    Common,
    /// The account's email address, or the part of it before the `@`.
    #[error("The password must not be your email address.")]
    SameAsEmail,
}

impl PolicyError {
    /// A stable, machine-readable key for translations and API clients:
    /// `too_short`, `too_long`, `no_digit`, `no_uppercase`, `common`, `same_as_email`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::TooShort => "too_short",
            Self::TooLong => "too_long",
            Self::NoDigit => "no_digit",
            Self::NoUppercase => "no_uppercase",
            Self::Common => "common",
            Self::SameAsEmail => "same_as_email",
        }
    }
}

/// Checks a new password against the policy and returns the first rule it breaks, in the
/// order of [`check_policy_all`].
///
/// `email` is the account's address, when known (signup, password change).
///
/// # Errors
/// The first [`PolicyError`] found.
pub fn check_policy(password: &str, email: Option<&str>) -> Result<(), PolicyError> {
    match check_policy_all(password, email).first() {
        Some(broken) => Err(*broken),
        None => Ok(()),
    }
}

/// Every rule a password breaks (empty when it is acceptable), for live validation in a
/// form. Order: too long, too short, no digit, no upper-case letter, common, same as email.
///
/// A password over [`MAX_PASSWORD_BYTES`] gives only [`PolicyError::TooLong`]: it is not
/// inspected further.
pub fn check_policy_all(password: &str, email: Option<&str>) -> Vec<PolicyError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return vec![PolicyError::TooLong];
    }
    let mut broken = Vec::new();
    if password.chars().count() < MIN_PASSWORD_CHARS {
        broken.push(PolicyError::TooShort);
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        broken.push(PolicyError::NoDigit);
    }
    if !password.chars().any(char::is_uppercase) {
        broken.push(PolicyError::NoUppercase);
    }
    let lower = password.to_lowercase();
    let core = strip_decoration(&lower);
    if is_common(&lower) || is_common(core) {
        broken.push(PolicyError::Common);
    }
    if email.is_some_and(|email| resembles_email(&lower, core, email)) {
        broken.push(PolicyError::SameAsEmail);
    }
    broken
}

/// Whether the (lower-case) password or its undecorated core equals the email address, its
/// local part, or the local part without its own digits and punctuation. Parts shorter
/// than four characters are ignored so that "a@x.de" does not forbid every "A…1" password.
fn resembles_email(lower: &str, core: &str, email: &str) -> bool {
    let email = email.trim().to_lowercase();
    let local = email
        .split_once('@')
        .map_or(email.as_str(), |(local, _)| local);
    [email.as_str(), local, strip_decoration(local)]
        .into_iter()
        .filter(|target| target.chars().count() >= 4)
        .any(|target| target == lower || target == core)
}

/// The password without the digits and ASCII punctuation at its start and end.
fn strip_decoration(password: &str) -> &str {
    password
        .trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c.is_whitespace())
}

fn is_common(candidate: &str) -> bool {
    static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
        include_str!("common-passwords.txt")
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    });
    !candidate.is_empty() && COMMON.contains(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "Zaunkoenig-Abend-73";

    #[test]
    fn a_good_password_passes() {
        assert_eq!(check_policy(GOOD, Some("anna@example.org")), Ok(()));
        assert_eq!(check_policy(GOOD, None), Ok(()));
        assert!(check_policy_all(GOOD, None).is_empty());
        // Exactly 8 characters, non-ASCII upper case.
        assert_eq!(check_policy("Ärger-42", None), Ok(()));
    }

    #[test]
    fn every_rule_has_its_code_and_message() {
        let cases = [
            (
                "Ab1defg",
                PolicyError::TooShort,
                "too_short",
                "The password must be at least 8 characters long.",
            ),
            (
                "Abcdefghij",
                PolicyError::NoDigit,
                "no_digit",
                "The password must contain at least one digit (0-9).",
            ),
            (
                "abcdefgh1",
                PolicyError::NoUppercase,
                "no_uppercase",
                "The password must contain at least one upper-case letter.",
            ),
            (
                "Password1",
                PolicyError::Common,
                "common",
                "This password is too common and easy to guess. Please choose another one.",
            ),
        ];
        for (password, error, code, message) in cases {
            assert_eq!(check_policy(password, None), Err(error), "{password}");
            assert_eq!(error.code(), code);
            assert_eq!(error.to_string(), message);
        }
        let long = format!("A1{}", "x".repeat(MAX_PASSWORD_BYTES - 1));
        assert_eq!(check_policy(&long, None), Err(PolicyError::TooLong));
        assert_eq!(PolicyError::TooLong.code(), "too_long");
        assert_eq!(
            PolicyError::TooLong.to_string(),
            "The password must be at most 1024 bytes long."
        );
        assert_eq!(
            check_policy("Anna.Schmidt7", Some("anna.schmidt7@example.org")),
            Err(PolicyError::SameAsEmail)
        );
        assert_eq!(PolicyError::SameAsEmail.code(), "same_as_email");
        assert_eq!(
            PolicyError::SameAsEmail.to_string(),
            "The password must not be your email address."
        );
    }

    #[test]
    fn the_limits_are_inclusive() {
        let max = format!("A1{}", "x".repeat(MAX_PASSWORD_BYTES - 2));
        assert_eq!(max.len(), MAX_PASSWORD_BYTES);
        assert_eq!(check_policy(&max, None), Ok(()));
        // Eight characters but more bytes: characters count, not bytes.
        assert_eq!(check_policy("Ä1ööööö", None), Err(PolicyError::TooShort));
        assert_eq!(check_policy("Ä1öööööö", None), Ok(()));
    }

    #[test]
    fn common_passwords_are_caught_with_case_and_decoration() {
        for password in [
            "Password1",
            "PASSWORD1",
            "Password1!",
            "Password123!!",
            "!Password1",
            "Qwerty12345",
            "Sommer2024!",
        ] {
            assert_eq!(
                check_policy(password, None),
                Err(PolicyError::Common),
                "{password}"
            );
        }
        assert!(check_policy_all("P@ssw0rd", None).contains(&PolicyError::Common));
        assert!(check_policy_all("12345678", None).contains(&PolicyError::Common));
        // Digits and punctuation in the middle are kept: this is not "password".
        assert_eq!(check_policy("Pass-9-word", None), Ok(()));
    }

    #[test]
    fn the_email_and_its_local_part_are_refused_case_insensitively() {
        let email = Some("Max.Power42@Example.org");
        assert_eq!(
            check_policy("max.power42@example.ORG", email),
            Err(PolicyError::SameAsEmail)
        );
        assert_eq!(
            check_policy("MAX.POWER42", email),
            Err(PolicyError::SameAsEmail)
        );
        assert_eq!(
            check_policy("Max.Power42!", email),
            Err(PolicyError::SameAsEmail)
        );
        assert_eq!(
            check_policy("Max.Power2025", email),
            Err(PolicyError::SameAsEmail)
        );
        assert_eq!(check_policy("Max.Power42-Solar", email), Ok(()));
        assert_eq!(check_policy(GOOD, Some("  ")), Ok(()));
        // A very short local part does not forbid every password that starts with it.
        assert_eq!(check_policy("A1234567-Kiwi", Some("a@example.org")), Ok(()));
        assert_eq!(check_policy("A12345678!", Some("a@example.org")), Ok(()));
    }

    #[test]
    fn all_lists_every_broken_rule_in_order() {
        assert_eq!(
            check_policy_all("abc", None),
            vec![
                PolicyError::TooShort,
                PolicyError::NoDigit,
                PolicyError::NoUppercase
            ]
        );
        assert_eq!(
            check_policy_all("password", Some("password@example.org")),
            vec![
                PolicyError::NoDigit,
                PolicyError::NoUppercase,
                PolicyError::Common,
                PolicyError::SameAsEmail
            ]
        );
        assert_eq!(check_policy_all("", None)[0], PolicyError::TooShort);
        // Huge input: only `TooLong`, without looking further.
        assert_eq!(
            check_policy_all(&"a".repeat(1 << 20), None),
            vec![PolicyError::TooLong]
        );
    }

    #[test]
    fn the_bundled_list_is_clean_and_large_enough() {
        let text = include_str!("common-passwords.txt");
        let entries: Vec<&str> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert!(entries.len() >= 300, "only {} entries", entries.len());
        for entry in &entries {
            assert_eq!(
                *entry,
                entry.trim(),
                "{entry:?} has surrounding white space"
            );
            assert_eq!(*entry, entry.to_lowercase(), "{entry:?} is not lower case");
            assert!(is_common(entry));
        }
        let unique: HashSet<&&str> = entries.iter().collect();
        assert_eq!(unique.len(), entries.len(), "duplicate entries");
    }
}
