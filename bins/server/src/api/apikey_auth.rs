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
//!
//! - A key revoked or deleted through this server, and the keys of a user deactivated or
//!   deleted through it, stop working at once ([`ApiKeys::forget_key`],
//!   [`ApiKeys::forget_user`]). A key revoked elsewhere (the CLI, another server on the same
//!   database) keeps working here for at most the TTL.
//! - Once half the TTL has passed, the next request of a key looks it up again while the other
//!   requests keep using the cached entry, so a busy key never expires and its requests never all
//!   miss at once. Concurrent misses of one key wait for a single lookup.
//! - `last_used_at` is refreshed about once per half TTL per key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use deyehard_core::auth::api_key;
use deyehard_core::{ApiKeyId, TenantScope, UserId};
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
    /// When the lookup that produced it started.
    fetched: Instant,
    /// Whether a request is looking the key up again.
    refreshing: bool,
}

/// What the cache knows about a key.
enum Lookup {
    /// Cached and fresh.
    Fresh(DeviceAuth),
    /// Cached, past half its TTL: the caller looks it up again.
    Refresh(DeviceAuth),
    /// Not cached (or expired).
    Miss,
}

/// Resolves presented API keys: cache, store lookup, rate limit.
pub struct ApiKeys {
    store: Arc<Store>,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
    /// One gate per key hash being looked up: concurrent misses wait for the first lookup.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Bumped by every invalidation: a lookup that started before one is not cached.
    generation: AtomicU64,
    limiter: Option<KeyedLimiter<ApiKeyId>>,
}

impl ApiKeys {
    /// Key resolution against `store`.
    pub fn new(store: Arc<Store>, options: &ApiKeyOptions) -> Self {
        Self {
            store,
            ttl: options.cache_ttl,
            cache: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
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
            Lookup::Fresh(auth) => auth,
            Lookup::Refresh(auth) => self.refresh(hash, auth).await?,
            Lookup::Miss => self.resolve(hash).await?,
        };
        if let Some(limiter) = &self.limiter {
            limiter.check(&auth.key_id)?;
        }
        Ok(auth)
    }

    /// Drops the cached entry of a key: call after revoking or deleting it.
    pub fn forget_key(&self, key_id: ApiKeyId) {
        self.forget(|auth| auth.key_id == key_id);
    }

    /// Drops the cached entries of a user's keys: call after deactivating or deleting the user.
    pub fn forget_user(&self, user: UserId) {
        self.forget(|auth| auth.scope.user_id() == user);
    }

    fn forget(&self, matches: impl Fn(&DeviceAuth) -> bool) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.lock_cache().retain(|_, c| !matches(&c.auth));
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cached(&self, hash: &str) -> Lookup {
        let now = Instant::now();
        let mut cache = self.lock_cache();
        let Some(entry) = cache.get_mut(hash) else {
            return Lookup::Miss;
        };
        let age = now.saturating_duration_since(entry.fetched);
        if age >= self.ttl {
            Lookup::Miss
        } else if age >= self.ttl / 2 && !entry.refreshing {
            entry.refreshing = true;
            Lookup::Refresh(entry.auth)
        } else {
            Lookup::Fresh(entry.auth)
        }
    }

    /// Looks a cached key up again; while the store cannot answer, the cached entry (still
    /// within its TTL) stands.
    async fn refresh(&self, hash: String, cached: DeviceAuth) -> Result<DeviceAuth, ApiError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let started = Instant::now();
        match self.store.resolve_api_key_unscoped(&hash).await {
            Ok(Some((scope, key_id))) => {
                let auth = DeviceAuth { scope, key_id };
                self.remember(hash, auth, started, generation);
                Ok(auth)
            }
            Ok(None) => {
                self.lock_cache().remove(&hash);
                Err(ApiError::Unauthorized)
            }
            Err(e) => {
                tracing::debug!(error = %e, "refreshing a cached API key failed; keeping it");
                if let Some(entry) = self.lock_cache().get_mut(&hash) {
                    entry.refreshing = false;
                }
                Ok(cached)
            }
        }
    }

    /// Looks a key up in the store; concurrent misses of one key share a single lookup.
    async fn resolve(&self, hash: String) -> Result<DeviceAuth, ApiError> {
        let gate = {
            let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            inflight.entry(hash.clone()).or_default().clone()
        };
        let _turn = gate.lock().await;
        if let Some(auth) = self.peek(&hash) {
            return Ok(auth);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let started = Instant::now();
        let found = self.store.resolve_api_key_unscoped(&hash).await;
        {
            let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            if inflight.get(&hash).is_some_and(|g| Arc::ptr_eq(g, &gate)) {
                inflight.remove(&hash);
            }
        }
        let (scope, key_id) = found?.ok_or(ApiError::Unauthorized)?;
        let auth = DeviceAuth { scope, key_id };
        self.remember(hash, auth, started, generation);
        Ok(auth)
    }

    /// The cached entry while it is within its TTL, without claiming a refresh.
    fn peek(&self, hash: &str) -> Option<DeviceAuth> {
        let cache = self.lock_cache();
        cache
            .get(hash)
            .filter(|entry| entry.fetched.elapsed() < self.ttl)
            .map(|entry| entry.auth)
    }

    /// Caches a lookup that started at `started`, unless an invalidation happened since.
    fn remember(&self, hash: String, auth: DeviceAuth, started: Instant, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut cache = self.lock_cache();
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if cache.len() >= MAX_CACHED_KEYS && !cache.contains_key(&hash) {
            cache.retain(|_, c| now.saturating_duration_since(c.fetched) < self.ttl);
            if cache.len() >= MAX_CACHED_KEYS {
                cache.clear();
            }
        }
        cache.insert(
            hash,
            Cached {
                auth,
                fetched: started,
                refreshing: false,
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

    /// A temporary SQLite store with one user and one key (in clear), and the key's id.
    async fn store_with_key() -> (tempfile::TempDir, Arc<Store>, TenantScope, String, ApiKeyId) {
        use deyehard_store::{NewUser, StoreOptions, UserStore};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db");
        let store = Store::connect(&path.to_string_lossy(), &StoreOptions::default())
            .await
            .unwrap();
        let user = store
            .create_user(&NewUser {
                email: "k@example.com".to_owned(),
                password_hash: "x".to_owned(),
                display_name: "k".to_owned(),
                time_zone: None,
                locale: None,
                is_verified: true,
                is_superuser: false,
            })
            .await
            .unwrap();
        let scope = TenantScope::from_credential_lookup(user.id);
        let key = api_key::generate();
        let created = store
            .create_api_key(&scope, "k", &key.prefix, &key.hash)
            .await
            .unwrap();
        (dir, Arc::new(store), scope, key.plaintext, created.id)
    }

    fn keys(store: &Arc<Store>) -> ApiKeys {
        let options = ApiKeyOptions {
            cache_ttl: Duration::from_secs(60),
            rate_limit: None,
        };
        ApiKeys::new(store.clone(), &options)
    }

    /// Moves the cached entry of `key` back in time by `age`.
    fn age(keys: &ApiKeys, key: &str, age: Duration) {
        let mut cache = keys.lock_cache();
        let entry = cache.get_mut(&api_key::hash(key)).unwrap();
        entry.fetched = entry.fetched.checked_sub(age).unwrap();
    }

    #[tokio::test]
    async fn a_cached_key_is_looked_up_again_past_half_its_ttl() {
        let (_dir, store, scope, key, id) = store_with_key().await;
        let keys = keys(&store);
        assert_eq!(keys.authenticate(&key).await.unwrap().key_id, id);
        store.revoke_api_key(&scope, id).await.unwrap();
        // Revoked behind the server's back: the fresh entry stands…
        age(&keys, &key, Duration::from_secs(29));
        assert!(keys.authenticate(&key).await.is_ok());
        // …until half its TTL has passed; then the next request looks it up again.
        age(&keys, &key, Duration::from_secs(2));
        assert!(matches!(
            keys.authenticate(&key).await,
            Err(ApiError::Unauthorized)
        ));
        assert!(keys.lock_cache().is_empty());
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_lookup_and_forgetting_applies_at_once() {
        let (_dir, store, scope, key, id) = store_with_key().await;
        let keys = Arc::new(keys(&store));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (keys, key) = (keys.clone(), key.clone());
            tasks.spawn(async move { keys.authenticate(&key).await.map(|a| a.key_id) });
        }
        while let Some(result) = tasks.join_next().await {
            assert_eq!(result.unwrap().unwrap(), id);
        }
        assert!(
            keys.inflight.lock().unwrap().is_empty(),
            "no gate is left behind"
        );
        assert_eq!(keys.lock_cache().len(), 1);

        keys.forget_user(scope.user_id());
        assert!(keys.lock_cache().is_empty());
        assert!(keys.authenticate(&key).await.is_ok());
        keys.forget_key(id);
        assert!(keys.lock_cache().is_empty());
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
