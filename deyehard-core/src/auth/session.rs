//! Login sessions: an HS256 JWT that lives [`SESSION_LIFETIME`] (two days), sent as an
//! HttpOnly cookie by the pages and as a bearer token by API clients.
//!
//! The token carries the user id (`sub`) and the user's *session version* (`ver`). The
//! server bumps the version in the database on a password change or "log out everywhere";
//! [`TenantScope::from_session`] then refuses every older token. Nothing else is kept on
//! the server, so any replica can check any token.
//!
//! Only HS256 is accepted (an `alg: none` or RS256 header is refused), and expiry is
//! checked against the `now` the caller passes, not the system clock, so it is testable.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{AuthError, os_random};
use crate::{TenantScope, UserId};

/// How long a session token is valid after it was issued.
pub const SESSION_LIFETIME: TimeDelta = TimeDelta::days(2);
/// The shortest accepted secret, in bytes (256 bits, the size of the HMAC-SHA-256 key).
pub const MIN_SECRET_LEN: usize = 32;

/// The claims inside a session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The user id, in decimal (JWT subjects are strings).
    pub sub: String,
    /// The user's session version when the token was issued.
    pub ver: i64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
    /// A random token id (128 bits, base64url), unique per login.
    pub jti: String,
}

/// A token whose signature, algorithm and expiry were checked. The server still has to
/// compare [`VerifiedSession::session_version`] with the database, through
/// [`TenantScope::from_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSession {
    user_id: UserId,
    session_version: i64,
    expires_at: DateTime<Utc>,
}

impl VerifiedSession {
    /// The user the token was issued to.
    pub const fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The user's session version when the token was issued.
    pub const fn session_version(&self) -> i64 {
        self.session_version
    }

    /// When the token stops being valid (for a cookie's expiry, or to renew it early).
    pub const fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

/// The keys that sign and check session tokens, made from `AUTH_SECRET`.
///
/// Its `Debug` does not show the secret.
#[derive(Clone)]
pub struct SessionKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl SessionKeys {
    /// Builds the keys from a secret of at least [`MIN_SECRET_LEN`] bytes.
    ///
    /// # Errors
    /// [`AuthError::WeakSecret`] when the secret is shorter.
    pub fn new(secret: &[u8]) -> Result<Self, AuthError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(AuthError::WeakSecret {
                len: secret.len(),
                min: MIN_SECRET_LEN,
            });
        }
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked in `verify` against the caller's clock; the library would use
        // the system clock (and a 60 s leeway).
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        })
    }

    /// Issues a token for `user` at `now`, valid for [`SESSION_LIFETIME`].
    ///
    /// # Errors
    /// [`AuthError::TokenIssue`] if `now` is at the very end of the date range or signing
    /// fails (it does not with a valid key).
    pub fn issue(
        &self,
        user: UserId,
        session_version: i64,
        now: DateTime<Utc>,
    ) -> Result<String, AuthError> {
        let expires_at = now
            .checked_add_signed(SESSION_LIFETIME)
            .ok_or_else(|| AuthError::TokenIssue(format!("{now} is out of range")))?;
        let claims = SessionClaims {
            sub: user.to_string(),
            ver: session_version,
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            jti: URL_SAFE_NO_PAD.encode(os_random::<16>()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::TokenIssue(e.to_string()))
    }

    /// Checks a token's signature (HS256 only) and that it has not expired at `now`.
    ///
    /// A token is valid up to, not including, its `exp` second.
    ///
    /// # Errors
    /// [`AuthError::ExpiredToken`] for an expired token of ours, [`AuthError::InvalidToken`]
    /// for anything else that is wrong (format, signature, algorithm, claims).
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<VerifiedSession, AuthError> {
        let claims = jsonwebtoken::decode::<SessionClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| AuthError::InvalidToken)?
            .claims;
        let user_id = claims
            .sub
            .parse::<i64>()
            .map(UserId::new)
            .map_err(|_| AuthError::InvalidToken)?;
        let expires_at = DateTime::from_timestamp(claims.exp, 0).ok_or(AuthError::InvalidToken)?;
        if now >= expires_at {
            return Err(AuthError::ExpiredToken);
        }
        Ok(VerifiedSession {
            user_id,
            session_version: claims.ver,
            expires_at,
        })
    }
}

impl TenantScope {
    /// Mints the scope for a verified session, given the user's current session version and
    /// active flag as the database has them now (read for [`VerifiedSession::user_id`]).
    ///
    /// `None` when the token's version is not the current one (password changed, logged out
    /// everywhere) or the account is deactivated.
    pub fn from_session(
        session: &VerifiedSession,
        current_session_version: i64,
        is_active: bool,
    ) -> Option<Self> {
        (is_active && session.session_version == current_session_version)
            .then(|| Self::new(session.user_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

    fn keys() -> SessionKeys {
        SessionKeys::new(SECRET).unwrap()
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).unwrap()
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn issue_then_verify_round_trips() {
        let token = keys().issue(UserId::new(42), 3, t0()).unwrap();
        let session = keys().verify(&token, t0() + TimeDelta::hours(47)).unwrap();
        assert_eq!(session.user_id(), UserId::new(42));
        assert_eq!(session.session_version(), 3);
        assert_eq!(session.expires_at(), t0() + SESSION_LIFETIME);
    }

    #[test]
    fn tokens_expire_after_two_days() {
        let token = keys().issue(UserId::new(42), 3, t0()).unwrap();
        let last_valid = t0() + SESSION_LIFETIME - TimeDelta::seconds(1);
        assert!(keys().verify(&token, last_valid).is_ok());
        assert_eq!(
            keys().verify(&token, t0() + SESSION_LIFETIME),
            Err(AuthError::ExpiredToken)
        );
        assert_eq!(
            keys().verify(&token, t0() + TimeDelta::days(30)),
            Err(AuthError::ExpiredToken)
        );
    }

    #[test]
    fn issuing_at_the_end_of_time_is_an_error_not_a_panic() {
        assert!(matches!(
            keys().issue(UserId::new(1), 0, DateTime::<Utc>::MAX_UTC),
            Err(AuthError::TokenIssue(_))
        ));
    }

    #[test]
    fn each_login_gets_its_own_token_id() {
        let a = keys().issue(UserId::new(1), 0, t0()).unwrap();
        let b = keys().issue(UserId::new(1), 0, t0()).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn tampered_claims_are_refused() {
        let token = keys().issue(UserId::new(42), 3, t0()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let forged_claims = claims.replace("\"sub\":\"42\"", "\"sub\":\"1\"");
        assert_ne!(claims, forged_claims);
        let forged = format!("{}.{}.{}", parts[0], b64(&forged_claims), parts[2]);
        assert_eq!(keys().verify(&forged, t0()), Err(AuthError::InvalidToken));
        // A flipped signature character.
        let mut sig = parts[2].to_owned();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        sig.replace_range(..1, flipped);
        let bad_sig = format!("{}.{}.{sig}", parts[0], parts[1]);
        assert_eq!(keys().verify(&bad_sig, t0()), Err(AuthError::InvalidToken));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let other = SessionKeys::new(b"another-secret-that-is-long-enough!!").unwrap();
        let token = other.issue(UserId::new(42), 3, t0()).unwrap();
        assert_eq!(keys().verify(&token, t0()), Err(AuthError::InvalidToken));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let claims = format!(
            r#"{{"sub":"42","ver":3,"iat":{},"exp":{},"jti":"x"}}"#,
            t0().timestamp(),
            t0().timestamp() + 3600
        );
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"None"}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            for signature in ["", "c2lnbmF0dXJl"] {
                let token = format!("{}.{}.{signature}", b64(header), b64(&claims));
                assert_eq!(
                    keys().verify(&token, t0()),
                    Err(AuthError::InvalidToken),
                    "{header} {signature:?}"
                );
            }
        }
        // HS512 with the right secret: a valid signature, but not the algorithm we use.
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &SessionClaims {
                sub: "42".into(),
                ver: 3,
                iat: t0().timestamp(),
                exp: t0().timestamp() + 3600,
                jti: "x".into(),
            },
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(keys().verify(&hs512, t0()), Err(AuthError::InvalidToken));
    }

    #[test]
    fn garbage_and_malformed_claims_are_refused() {
        for garbage in ["", ".", "..", "a.b.c", "not a token", "e30.e30.e30"] {
            assert_eq!(
                keys().verify(garbage, t0()),
                Err(AuthError::InvalidToken),
                "{garbage}"
            );
        }
        let sign = |claims: &str| {
            // Sign arbitrary JSON with our key to reach the claim checks.
            let value: serde_json::Value = serde_json::from_str(claims).unwrap();
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &value,
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap()
        };
        let exp = t0().timestamp() + 60;
        for claims in [
            format!(r#"{{"sub":"forty-two","ver":1,"iat":0,"exp":{exp},"jti":"x"}}"#),
            format!(r#"{{"ver":1,"iat":0,"exp":{exp},"jti":"x"}}"#),
            r#"{"sub":"42","ver":1,"iat":0,"jti":"x"}"#.to_owned(),
            format!(
                r#"{{"sub":"42","ver":1,"iat":0,"exp":{},"jti":"x"}}"#,
                i64::MAX
            ),
        ] {
            assert_eq!(
                keys().verify(&sign(&claims), t0()),
                Err(AuthError::InvalidToken),
                "{claims}"
            );
        }
    }

    #[test]
    fn short_secrets_are_refused_and_debug_hides_the_secret() {
        assert_eq!(
            SessionKeys::new(&[7u8; 31]).err(),
            Some(AuthError::WeakSecret { len: 31, min: 32 })
        );
        assert!(SessionKeys::new(&[7u8; 32]).is_ok());
        let shown = format!("{:?}", keys());
        assert_eq!(shown, "SessionKeys { secret: \"<redacted>\" }");
    }

    #[test]
    fn from_session_checks_version_and_active_flag() {
        let token = keys().issue(UserId::new(42), 3, t0()).unwrap();
        let session = keys().verify(&token, t0()).unwrap();
        assert_eq!(
            TenantScope::from_session(&session, 3, true).map(|s| s.user_id()),
            Some(UserId::new(42))
        );
        assert_eq!(TenantScope::from_session(&session, 4, true), None);
        assert_eq!(TenantScope::from_session(&session, 2, true), None);
        assert_eq!(TenantScope::from_session(&session, 3, false), None);
    }
}
