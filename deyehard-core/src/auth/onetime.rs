//! One-time links: email verification, password reset and email change tokens, sealed with
//! Fernet (AES-128-CBC + HMAC-SHA-256) under `ENCRYPTION_KEY`, so they can be neither read
//! nor forged, and limited in time per [`Purpose`].
//!
//! # Single use through a binding
//! Nothing is stored on the server. Instead every token carries a *binding*: a value that
//! describes the state the link is meant to change. When the link is used, the server
//! recomputes the binding from the current state and compares ([`OneTimePayload::binding_matches`]);
//! once the action is done the state has changed, so the same link no longer matches:
//! - [`Purpose::ResetPassword`]: [`binding_fingerprint`] of the user's current password
//!   hash. After the reset the hash is new, and every earlier reset link is dead.
//! - [`Purpose::VerifyEmail`]: the address being verified. A link for an address the user
//!   has since replaced no longer matches; once verified, reusing it changes nothing.
//! - [`Purpose::ChangeEmail`]: the new address together with the current one (for example
//!   `"{new}\n{current}"`), so the link stops working once the address has changed.
//!
//! # Time
//! The issue time inside the payload is the `now` the caller passes to
//! [`OneTimeTokens::seal`], and [`OneTimeTokens::open`] checks the purpose's time-to-live
//! against its own `now`, so tests are deterministic. (Fernet's own timestamp uses the
//! system clock; it is only used by the library to refuse tokens from more than a minute
//! in the future.)

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use fernet::Fernet;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AuthError;
use crate::UserId;

/// The format version written at the start of every payload.
const PAYLOAD_VERSION: &str = "dh1";
/// How far in the future (by the opener's clock) an issue time may lie: clock skew between
/// replicas.
const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::seconds(60);
/// Tokens longer than this are not even decoded (ours are about 200 characters).
const MAX_TOKEN_LEN: usize = 4096;

/// What a one-time token allows; a token for one purpose cannot be used for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Confirms an email address after signup. Valid for 24 hours.
    VerifyEmail,
    /// Sets a new password without the old one. Valid for 1 hour.
    ResetPassword,
    /// Confirms a new email address. Valid for 24 hours.
    ChangeEmail,
}

impl Purpose {
    /// How long a token for this purpose is valid after it was sealed.
    pub const fn ttl(self) -> TimeDelta {
        match self {
            Self::VerifyEmail | Self::ChangeEmail => TimeDelta::hours(24),
            Self::ResetPassword => TimeDelta::hours(1),
        }
    }

    /// The name written into the token.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::ChangeEmail => "change_email",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::VerifyEmail, Self::ResetPassword, Self::ChangeEmail]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// Why a one-time link cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is genuine but older than its purpose allows.
    #[error("This link has expired. Please request a new one.")]
    Expired,
    /// The token was not sealed with our key, was altered, or is not a token at all.
    #[error("This link is invalid.")]
    Invalid,
    /// The token is genuine but was made for another action.
    #[error("This link is not meant for this action.")]
    WrongPurpose,
}

/// What an opened token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimePayload {
    /// The user the token was made for.
    pub user_id: UserId,
    /// The binding given to [`OneTimeTokens::seal`] (see the module docs).
    pub binding: String,
    /// When the token was sealed.
    pub issued_at: DateTime<Utc>,
}

impl OneTimePayload {
    /// Whether the token's binding equals the one the server computes from the current
    /// state, compared in constant time.
    pub fn binding_matches(&self, current: &str) -> bool {
        self.binding.as_bytes().ct_eq(current.as_bytes()).into()
    }
}

/// A short fingerprint (the first 128 bits of SHA-256, in hex) of a value that should bind
/// a token without being copied into it, such as the current password hash.
pub fn binding_fingerprint(value: &str) -> String {
    hex::encode(&Sha256::digest(value.as_bytes())[..16])
}

/// Seals and opens one-time tokens under the Fernet key `ENCRYPTION_KEY`.
///
/// Its `Debug` does not show the key.
pub struct OneTimeTokens {
    fernet: Fernet,
}

impl fmt::Debug for OneTimeTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneTimeTokens")
            .field("key", &"<redacted>")
            .finish()
    }
}

impl OneTimeTokens {
    /// Builds the sealer from a Fernet key: the URL-safe base64 encoding of 32 bytes, as
    /// Python's `Fernet.generate_key()` and [`OneTimeTokens::generate_key`] produce.
    /// Surrounding white space (a trailing newline in a key file) is ignored.
    ///
    /// # Errors
    /// [`AuthError::InvalidEncryptionKey`], whose message says what a key must look like.
    pub fn new(key: &str) -> Result<Self, AuthError> {
        Fernet::new(key.trim())
            .map(|fernet| Self { fernet })
            .ok_or(AuthError::InvalidEncryptionKey)
    }

    /// A new random key (44 characters of URL-safe base64) from the operating system's
    /// random source.
    ///
    /// # Panics
    /// Only if the operating system cannot provide randomness.
    pub fn generate_key() -> String {
        Fernet::generate_key()
    }

    /// Seals a token for `user` and `purpose` at `now`, carrying `binding`.
    pub fn seal(
        &self,
        purpose: Purpose,
        user: UserId,
        binding: &str,
        now: DateTime<Utc>,
    ) -> String {
        // The binding goes last, so it may contain anything, newlines included.
        let payload = format!(
            "{PAYLOAD_VERSION}\n{}\n{user}\n{}\n{binding}",
            purpose.as_str(),
            now.timestamp()
        );
        self.fernet.encrypt(payload.as_bytes())
    }

    /// Opens a token meant for `purpose` and checks its age at `now`. A token is valid up
    /// to and including `ttl` after it was sealed.
    ///
    /// The caller still has to compare the binding with the current state
    /// ([`OneTimePayload::binding_matches`]) before acting on it.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] for anything not sealed by us, [`TokenError::WrongPurpose`]
    /// for a token of ours made for another purpose, [`TokenError::Expired`] when too old.
    pub fn open(
        &self,
        token: &str,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<OneTimePayload, TokenError> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let plain = self
            .fernet
            .decrypt(token)
            .map_err(|_| TokenError::Invalid)?;
        let plain = String::from_utf8(plain).map_err(|_| TokenError::Invalid)?;
        let mut fields = plain.splitn(5, '\n');
        let mut next = || fields.next().ok_or(TokenError::Invalid);
        if next()? != PAYLOAD_VERSION {
            return Err(TokenError::Invalid);
        }
        let sealed_for = Purpose::parse(next()?).ok_or(TokenError::Invalid)?;
        let user_id = next()?
            .parse::<i64>()
            .map(UserId::new)
            .map_err(|_| TokenError::Invalid)?;
        let issued_at = next()?
            .parse::<i64>()
            .ok()
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
            .ok_or(TokenError::Invalid)?;
        let binding = next()?.to_owned();
        if sealed_for != purpose {
            return Err(TokenError::WrongPurpose);
        }
        let age = now.signed_duration_since(issued_at);
        if age < -MAX_CLOCK_SKEW {
            return Err(TokenError::Invalid);
        }
        if age > purpose.ttl() {
            return Err(TokenError::Expired);
        }
        Ok(OneTimePayload {
            user_id,
            binding,
            issued_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE;

    use super::*;

    const ALL: [Purpose; 3] = [
        Purpose::VerifyEmail,
        Purpose::ResetPassword,
        Purpose::ChangeEmail,
    ];

    fn tokens() -> OneTimeTokens {
        // A fixed key, as an operator would configure it.
        OneTimeTokens::new("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=").unwrap()
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).unwrap()
    }

    #[test]
    fn seal_then_open_round_trips_for_every_purpose() {
        for purpose in ALL {
            let binding = "anna@example.org\nwith | odd ✓ characters\n";
            let token = tokens().seal(purpose, UserId::new(9), binding, t0());
            let payload = tokens()
                .open(&token, purpose, t0() + TimeDelta::minutes(5))
                .unwrap();
            assert_eq!(
                payload,
                OneTimePayload {
                    user_id: UserId::new(9),
                    binding: binding.into(),
                    issued_at: t0()
                }
            );
            assert!(payload.binding_matches(binding));
            assert!(!payload.binding_matches("anna@example.org"));
        }
    }

    #[test]
    fn tokens_are_valid_through_their_ttl_and_expire_one_second_later() {
        assert_eq!(Purpose::VerifyEmail.ttl(), TimeDelta::hours(24));
        assert_eq!(Purpose::ResetPassword.ttl(), TimeDelta::hours(1));
        assert_eq!(Purpose::ChangeEmail.ttl(), TimeDelta::hours(24));
        for purpose in ALL {
            let token = tokens().seal(purpose, UserId::new(9), "b", t0());
            assert!(tokens().open(&token, purpose, t0() + purpose.ttl()).is_ok());
            let late = t0() + purpose.ttl() + TimeDelta::seconds(1);
            assert_eq!(
                tokens().open(&token, purpose, late),
                Err(TokenError::Expired)
            );
        }
    }

    #[test]
    fn a_token_for_one_purpose_does_not_open_for_another() {
        for sealed in ALL {
            let token = tokens().seal(sealed, UserId::new(9), "b", t0());
            for other in ALL.into_iter().filter(|p| *p != sealed) {
                assert_eq!(
                    tokens().open(&token, other, t0()),
                    Err(TokenError::WrongPurpose)
                );
            }
        }
    }

    #[test]
    fn tampered_tokens_and_other_keys_are_invalid() {
        let token = tokens().seal(Purpose::ResetPassword, UserId::new(9), "b", t0());
        let mut bytes = URL_SAFE.decode(&token).unwrap();
        // Flip one bit in the ciphertext, then in the HMAC.
        for index in [30, bytes.len() - 1] {
            bytes[index] ^= 0x01;
            let tampered = URL_SAFE.encode(&bytes);
            assert_eq!(
                tokens().open(&tampered, Purpose::ResetPassword, t0()),
                Err(TokenError::Invalid)
            );
            bytes[index] ^= 0x01;
        }
        let other = OneTimeTokens::new(&OneTimeTokens::generate_key()).unwrap();
        assert_eq!(
            other.open(&token, Purpose::ResetPassword, t0()),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn garbage_is_invalid() {
        let long = "A".repeat(MAX_TOKEN_LEN + 1);
        for garbage in [
            "",
            " ",
            "not a token",
            "gAAAAA",
            "%%%%",
            "gAAAAABk",
            long.as_str(),
        ] {
            assert_eq!(
                tokens().open(garbage, Purpose::VerifyEmail, t0()),
                Err(TokenError::Invalid),
                "{garbage}"
            );
        }
    }

    #[test]
    fn sealed_garbage_payloads_are_invalid() {
        let fernet = Fernet::new("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=").unwrap();
        for payload in [
            "",
            "dh1",
            "dh1\nverify_email\n9\n1780000000",
            "dh2\nverify_email\n9\n1780000000\nb",
            "dh1\nlogin\n9\n1780000000\nb",
            "dh1\nverify_email\nnine\n1780000000\nb",
            "dh1\nverify_email\n9\nsoon\nb",
            "dh1\nverify_email\n9\n9223372036854775807\nb",
        ] {
            let token = fernet.encrypt(payload.as_bytes());
            assert_eq!(
                tokens().open(&token, Purpose::VerifyEmail, t0()),
                Err(TokenError::Invalid),
                "{payload:?}"
            );
        }
        let not_utf8 = fernet.encrypt(&[0xff, 0xfe, b'\n']);
        assert_eq!(
            tokens().open(&not_utf8, Purpose::VerifyEmail, t0()),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn tokens_from_the_future_are_invalid_beyond_the_clock_skew() {
        let token = tokens().seal(Purpose::VerifyEmail, UserId::new(9), "b", t0());
        assert!(
            tokens()
                .open(&token, Purpose::VerifyEmail, t0() - MAX_CLOCK_SKEW)
                .is_ok()
        );
        let early = t0() - MAX_CLOCK_SKEW - TimeDelta::seconds(1);
        assert_eq!(
            tokens().open(&token, Purpose::VerifyEmail, early),
            Err(TokenError::Invalid)
        );
        // The ends of the date range do not overflow.
        let at_min = tokens().open(&token, Purpose::VerifyEmail, DateTime::<Utc>::MIN_UTC);
        assert_eq!(at_min, Err(TokenError::Invalid));
        let at_max = tokens().open(&token, Purpose::VerifyEmail, DateTime::<Utc>::MAX_UTC);
        assert_eq!(at_max, Err(TokenError::Expired));
    }

    #[test]
    fn bad_keys_get_a_clear_error_and_good_ones_work() {
        for bad in [
            "",
            "short",
            "not base64 at all!!",
            &URL_SAFE.encode([1u8; 31]),
        ] {
            let error = OneTimeTokens::new(bad).unwrap_err();
            assert_eq!(error, AuthError::InvalidEncryptionKey, "{bad}");
            assert!(error.to_string().contains("ENCRYPTION_KEY"));
        }
        let key = OneTimeTokens::generate_key();
        assert_eq!(key.len(), 44);
        assert_eq!(URL_SAFE.decode(&key).unwrap().len(), 32);
        assert!(OneTimeTokens::new(&format!("{key}\n")).is_ok());
        assert_ne!(key, OneTimeTokens::generate_key());
    }

    #[test]
    fn binding_fingerprints_are_stable_and_short() {
        let a = binding_fingerprint("$argon2id$v=19$m=19456,t=2,p=1$salt$hash");
        assert_eq!(a.len(), 32);
        assert_eq!(
            a,
            binding_fingerprint("$argon2id$v=19$m=19456,t=2,p=1$salt$hash")
        );
        assert_ne!(
            a,
            binding_fingerprint("$argon2id$v=19$m=19456,t=2,p=1$salt$other")
        );
        // SHA-256("abc"), first 16 bytes.
        assert_eq!(
            binding_fingerprint("abc"),
            "ba7816bf8f01cfea414140de5dae2223"
        );
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(
            format!("{:?}", tokens()),
            "OneTimeTokens { key: \"<redacted>\" }"
        );
    }
}
