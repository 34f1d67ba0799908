//! Rate limits of the account flows: login (per account and per client address), the token
//! endpoint, signup, reset requests, verification resends and API-key creation.
//!
//! Each limit is a keyed token bucket (governor); a refused call becomes
//! [`ApiError::RateLimited`], i.e. `429` with `Retry-After`. Keys are strings such as
//! `"ip:203.0.113.7"` or `"acct:alice@example.com"`, so one limiter can count both.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// One keyed limit: `burst` calls at once, then one more every `period`.
#[derive(Clone)]
pub struct KeyedLimit {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl KeyedLimit {
    /// A limit of `burst` calls, refilled by one every `period`.
    pub fn new(burst: u32, period: Duration) -> Self {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Self {
            limiter: Arc::new(RateLimiter::keyed(quota)),
        }
    }

    /// Counts one call for `key`.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`] with the seconds until the next call is allowed.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                ApiError::RateLimited {
                    retry_after_s: wait.as_secs().max(1),
                }
            })
    }

    /// Forgets keys whose bucket is full again (bounded memory).
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// All limits of the account flows.
#[derive(Clone)]
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

impl AccountLimits {
    /// Prunes every limiter once per `every`, for as long as the runtime runs.
    pub fn spawn_janitor(&self, every: Duration) {
        let limits = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                for limit in [
                    &limits.login_account,
                    &limits.login_address,
                    &limits.signup,
                    &limits.reset,
                    &limits.resend,
                    &limits.key_creation,
                ] {
                    limit.prune();
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_with_retry_after_per_key() {
        let limit = KeyedLimit::new(2, Duration::from_secs(30));
        assert!(limit.check("a").is_ok());
        assert!(limit.check("a").is_ok());
        match limit.check("a") {
            Err(ApiError::RateLimited { retry_after_s }) => {
                assert!((1..=30).contains(&retry_after_s))
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert!(limit.check("b").is_ok());
    }
}
