//! Rate limits of the account flows: login (per account and per client address), the token
//! endpoint, signup, reset requests, verification resends and API-key creation.
//!
//! Each limit wraps a [`KeyedLimiter`] (the same mechanism as the per-API-key ingestion limit); a
//! refused call becomes [`ApiError::RateLimited`], i.e.
//! `429` with `Retry-After`. Keys are strings such as `"ip:203.0.113.7"` or
//! `"acct:alice@example.com"`, so one limiter can count both. Idle keys are pruned by the
//! limiter itself as its map grows.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::error::ApiError;
use crate::ratelimit::KeyedLimiter;

/// One keyed limit of the account flows: `burst` calls at once, then one more every `period`.
pub struct KeyedLimit(KeyedLimiter<String>);

impl KeyedLimit {
    /// A limit of `burst` calls (at least 1), refilled by one every `period`.
    pub fn new(burst: u32, period: Duration) -> Self {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self(KeyedLimiter::with_period(burst, period))
    }

    /// Counts one call for `key`.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`] with the seconds until the next call is allowed.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        Ok(self.0.check(&key.to_owned())?)
    }
}

/// All limits of the account flows.
pub struct AccountLimits {
    /// Login attempts (page and token endpoint) per account.
    pub login_account: KeyedLimit,
    /// Login attempts (page and token endpoint) per client address.
    pub login_address: KeyedLimit,
    /// Signups per client address.
    pub signup: KeyedLimit,
    /// Password-reset requests, per address and per account.
    pub reset: KeyedLimit,
    /// Verification resends, per address and per account.
    pub resend: KeyedLimit,
    /// API keys created, per user.
    pub key_creation: KeyedLimit,
}

impl Default for AccountLimits {
    fn default() -> Self {
        const MINUTE: Duration = Duration::from_secs(60);
        Self {
            login_account: KeyedLimit::new(5, MINUTE),
            login_address: KeyedLimit::new(20, MINUTE / 6),
            signup: KeyedLimit::new(5, 10 * MINUTE),
            reset: KeyedLimit::new(3, 5 * MINUTE),
            resend: KeyedLimit::new(3, 5 * MINUTE),
            key_creation: KeyedLimit::new(10, MINUTE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_with_retry_after_per_key() {
        let limits = AccountLimits::default();
        let check = |key: &str| limits.reset.check(key);
        for _ in 0..3 {
            assert!(check("ip:192.0.2.1").is_ok());
        }
        match check("ip:192.0.2.1") {
            Err(ApiError::RateLimited { retry_after_s }) => {
                assert!((1..=300).contains(&retry_after_s))
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert!(check("ip:192.0.2.2").is_ok());
    }
}
