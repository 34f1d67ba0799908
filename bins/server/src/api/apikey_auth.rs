//! API-key authentication of device pushes: `X-API-Key: KEY`, or `Authorization: Bearer KEY`
//! (what the OpenDTU firmware sends when its header name is set to `Authorization`).
//!
//! [`DeviceAuth`] is the poem-openapi extractor. It documents two security schemes
//! (`ApiKeyHeader`, `ApiKeyBearer`; either one suffices) and resolves the key through
//! [`ApiKeys`]: SHA-256 of the key as presented ([`api_key::hash`]) → the store's credential
//! lookup (`resolve_api_key_unscoped`) → the [`TenantScope`] of the key's owner.
//!
//! - A missing, malformed, unknown or revoked key, or a key of a deactivated user, all get the
//!   same `401` body ([`ApiError::Unauthorized`]): nothing can be probed.
//! - A database that cannot be reached is a `503` with `Retry-After`, never a `401`.
//! - Each key has a request budget ([`crate::ratelimit`]); over it, `429` with `Retry-After`.
//!
//! Resolved keys are cached for [`ApiKeyOptions::cache_ttl`] (10 s by default): every push would
//! otherwise be a write transaction (the lookup records `last_used_at`) on one hot row per key.
//! The price is that a revoked key keeps working on this server for at most that long, and
//! `last_used_at` is refreshed at most once per TTL per key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use deyehard_core::auth::api_key;
use deyehard_core::{ApiKeyId, TenantScope};
use deyehard_store::{ApiKeyStore, Store};
use poem::Request;
use poem::RequestBody;
use poem::http::header::AUTHORIZATION;
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use crate::AppState;
use crate::error::ApiError;
use crate::ratelimit::{KeyedLimiter, RateQuota};

/// The header devices put their key in.
pub const API_KEY_HEADER: &str = "X-API-Key";
/// Name of the header scheme in the OpenAPI document.
const HEADER_SCHEME: &str = "ApiKeyHeader";
/// Name of the bearer scheme in the OpenAPI document.
const BEARER_SCHEME: &str = "ApiKeyBearer";
/// Longer presented keys are refused without a lookup (ours have 44 characters).
const MAX_KEY_LEN: usize = 128;
/// Most cached keys; beyond it, expired entries are dropped and then, if needed, all.
const MAX_CACHED_KEYS: usize = 100_000;

/// How API keys are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyOptions {
    /// How long a resolved key is trusted without asking the store again (0: always ask).
    pub cache_ttl: Duration,
    /// Request budget per key; `None` for no limit.
    pub rate_limit: Option<RateQuota>,
}

impl Default for ApiKeyOptions {
    /// 10 s cache; 600 requests per minute per key with a burst of 600: a DTU pushes once a
    /// minute, so this lets hundreds of DTUs share one key and a whole fleet reboot at once.
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(10),
            rate_limit: RateQuota::per_minute(600),
        }
    }
}

/// A request authenticated by an API key: the tenant the key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceAuth {
    /// The key owner's scope.
    pub scope: TenantScope,
    /// The key that was used.
    pub key_id: ApiKeyId,
}

#[derive(Debug, Clone, Copy)]
struct Cached {
    auth: DeviceAuth,
    expires: Instant,
}

/// Resolves presented API keys: cache, store lookup, rate limit.
pub struct ApiKeys {
    store: Arc<Store>,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
    limiter: Option<KeyedLimiter<ApiKeyId>>,
}

impl ApiKeys {
    /// Key resolution against `store`.
    pub fn new(store: Arc<Store>, options: &ApiKeyOptions) -> Self {
        Self {
            store,
            ttl: options.cache_ttl,
            cache: Mutex::new(HashMap::new()),
            limiter: options.rate_limit.map(KeyedLimiter::new),
        }
    }

    /// The tenant of the key `presented`, after spending one request of its budget.
    pub async fn authenticate(&self, presented: &str) -> Result<DeviceAuth, ApiError> {
        if presented.is_empty()
            || presented.len() > MAX_KEY_LEN
            || presented.bytes().any(|b| !b.is_ascii_graphic())
        {
            return Err(ApiError::Unauthorized);
        }
        let hash = api_key::hash(presented);
        let auth = match self.cached(&hash) {
            Some(auth) => auth,
            None => {
                let (scope, key_id) = self
                    .store
                    .resolve_api_key_unscoped(&hash)
                    .await?
                    .ok_or(ApiError::Unauthorized)?;
                let auth = DeviceAuth { scope, key_id };
                self.remember(hash, auth);
                auth
            }
        };
        if let Some(limiter) = &self.limiter {
            limiter.check(&auth.key_id)?;
        }
        Ok(auth)
    }

    fn cached(&self, hash: &str) -> Option<DeviceAuth> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(hash)
            .filter(|c| c.expires > Instant::now())
            .map(|c| c.auth)
    }

    fn remember(&self, hash: String, auth: DeviceAuth) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED_KEYS {
            cache.retain(|_, c| c.expires > now);
            if cache.len() >= MAX_CACHED_KEYS {
                cache.clear();
            }
        }
        cache.insert(
            hash,
            Cached {
                auth,
                expires: now + self.ttl,
            },
        );
    }
}

/// The key a request presents: `X-API-Key` first, else `Authorization: Bearer …` (the scheme
/// name in any letter case). `None` when neither is there.
pub fn presented_key(req: &Request) -> Option<&str> {
    if let Some(value) = req.headers().get(API_KEY_HEADER) {
        return value.to_str().ok().map(str::trim);
    }
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, key) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim_start())
}

impl<'a> ApiExtractor<'a> for DeviceAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            HEADER_SCHEME,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some(
                    "An API key of the account (`deyehard-server apikey create`, or the account \
                     page) in the `X-API-Key` header. OpenDTU: Authentication Header Name \
                     `X-API-Key`, Authentication Token = the key.",
                ),
                name: Some(API_KEY_HEADER),
                key_in: Some("header"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
        registry.create_security_scheme(
            BEARER_SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "The same API key as `Authorization: Bearer KEY` (what OpenDTU sends when \
                     its Authentication Header Name is `Authorization`).",
                ),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: Some("API key"),
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![HEADER_SCHEME, BEARER_SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = req.data::<AppState>().ok_or_else(|| {
            ApiError::Internal("the application state is not attached to the route".into())
        })?;
        let key = presented_key(req).ok_or(ApiError::Unauthorized)?;
        Ok(state.api_keys.authenticate(key).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder();
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.finish()
    }

    #[test]
    fn the_key_comes_from_either_header() {
        let key = |h: &[(&str, &str)]| presented_key(&request(h)).map(str::to_owned);
        assert_eq!(key(&[("X-API-Key", "k1")]).as_deref(), Some("k1"));
        assert_eq!(key(&[("x-api-key", " k1 ")]).as_deref(), Some("k1"));
        assert_eq!(
            key(&[("Authorization", "Bearer k2")]).as_deref(),
            Some("k2")
        );
        assert_eq!(
            key(&[("authorization", "bearer   k2")]).as_deref(),
            Some("k2")
        );
        assert_eq!(
            key(&[("X-API-Key", "k1"), ("Authorization", "Bearer k2")]).as_deref(),
            Some("k1"),
            "the dedicated header wins"
        );
        assert_eq!(key(&[("Authorization", "Basic dXNlcjpwYXNz")]), None);
        assert_eq!(key(&[("Authorization", "k2")]), None);
        assert_eq!(key(&[]), None);
    }
}
