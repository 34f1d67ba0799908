//! Keyed rate limiting (GCRA, from `governor`): one budget per key — an API key for ingestion,
//! an IP address or an e-mail address for the account routes.
//!
//! poem has no rate limiter and `tower_governor` does not fit poem's request type, so this is a
//! small helper that handlers and extractors call: [`KeyedLimiter::check`] answers "go" or "retry
//! after N seconds", which the caller turns into `429 Too Many Requests` with `Retry-After`
//! ([`ApiError::RateLimited`]).
//!
//! The state per key is a few bytes, but keys come from clients, so the map is pruned of keys
//! whose budget is full again whenever it has doubled since the last pruning (amortised, no
//! background task).

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Prune no earlier than at this many tracked keys.
const MIN_PRUNE_AT: usize = 1024;

/// A budget: `per_minute` requests per minute sustained, and up to `burst` at once after a
/// quiet period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    /// Sustained requests per minute.
    pub per_minute: NonZeroU32,
    /// Requests allowed back to back when the budget is full.
    pub burst: NonZeroU32,
}

impl RateQuota {
    /// `per_minute` sustained with a burst of the same size; `None` when `per_minute` is 0
    /// (no limit).
    pub fn per_minute(per_minute: u32) -> Option<Self> {
        NonZeroU32::new(per_minute).map(|n| Self {
            per_minute: n,
            burst: n,
        })
    }
}

/// How long a client must wait before its next request can pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(Duration);

impl RetryAfter {
    /// Whole seconds for the `Retry-After` header: rounded up, at least 1.
    pub fn seconds(self) -> u64 {
        let whole = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        whole.max(1)
    }
}

impl From<RetryAfter> for ApiError {
    fn from(wait: RetryAfter) -> Self {
        ApiError::RateLimited {
            retry_after_s: wait.seconds(),
        }
    }
}

/// One [`RateQuota`] per key.
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    clock: DefaultClock,
    prune_at: AtomicUsize,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// A limiter giving every key `quota`.
    pub fn new(quota: RateQuota) -> Self {
        Self::with_quota(Quota::per_minute(quota.per_minute).allow_burst(quota.burst))
    }

    /// A limiter giving every key `burst` requests at once, then one more every `period` (for
    /// budgets slower than one a minute, such as signups). A zero period counts as one second.
    pub fn with_period(burst: NonZeroU32, period: Duration) -> Self {
        let quota =
            Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN));
        Self::with_quota(quota.allow_burst(burst))
    }

    fn with_quota(quota: Quota) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            prune_at: AtomicUsize::new(MIN_PRUNE_AT),
        }
    }

    /// Spends one request of `key`'s budget, or says how long to wait (nothing is spent then).
    pub fn check(&self, key: &K) -> Result<(), RetryAfter> {
        let result = self
            .limiter
            .check_key(key)
            .map_err(|not_until| RetryAfter(not_until.wait_time_from(self.clock.now())));
        self.maybe_prune();
        result
    }

    /// Forgets keys whose budget is full again once the map has doubled since the last time.
    fn maybe_prune(&self) {
        let len = self.limiter.len();
        if len < self.prune_at.load(Ordering::Relaxed) {
            return;
        }
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let next = self.limiter.len().saturating_mul(2).max(MIN_PRUNE_AT);
        self.prune_at.store(next, Ordering::Relaxed);
    }

    /// Number of keys currently tracked.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(per_minute: u32, burst: u32) -> RateQuota {
        RateQuota {
            per_minute: NonZeroU32::new(per_minute).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn a_key_gets_its_burst_then_waits_while_others_are_unaffected() {
        let limiter = KeyedLimiter::new(quota(60, 3));
        for _ in 0..3 {
            assert!(limiter.check(&"a").is_ok());
        }
        let wait = limiter.check(&"a").unwrap_err();
        // 60 per minute: the next slot opens within a second.
        assert_eq!(wait.seconds(), 1);
        assert!(limiter.check(&"b").is_ok(), "keys have separate budgets");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).seconds(), 1);
        assert_eq!(RetryAfter(Duration::ZERO).seconds(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(59_001)).seconds(), 60);
        assert_eq!(RetryAfter(Duration::from_secs(7)).seconds(), 7);
        let err = ApiError::from(RetryAfter(Duration::from_millis(2500)));
        assert!(matches!(err, ApiError::RateLimited { retry_after_s: 3 }));
    }

    #[test]
    fn a_slow_budget_refills_one_request_per_period() {
        let limiter =
            KeyedLimiter::with_period(NonZeroU32::new(2).unwrap(), Duration::from_secs(300));
        assert!(limiter.check(&"a").is_ok());
        assert!(limiter.check(&"a").is_ok());
        let wait = limiter.check(&"a").unwrap_err().seconds();
        assert!((299..=300).contains(&wait), "{wait} s");
        assert!(limiter.check(&"b").is_ok());
    }

    #[test]
    fn per_minute_zero_means_no_limit() {
        assert_eq!(RateQuota::per_minute(0), None);
        assert_eq!(RateQuota::per_minute(600), Some(quota(600, 600)));
    }

    #[test]
    fn idle_keys_are_pruned_once_the_map_has_grown() {
        // 60 000 per minute: a single request's budget refills within a millisecond.
        let limiter = KeyedLimiter::new(quota(60_000, 1));
        for key in 0..MIN_PRUNE_AT - 1 {
            limiter.check(&key).unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(limiter.tracked(), MIN_PRUNE_AT - 1);
        limiter.check(&usize::MAX).unwrap();
        assert!(limiter.tracked() <= 1, "{} keys left", limiter.tracked());
    }
}
