//! `/api/keys`: the caller's API keys (for OpenDTU and scripts). The secret is shown once,
//! in the creation response, and stored only as a hash; lists show name, prefix and dates.

use chrono::{DateTime, Utc};
use deyehard_core::auth::api_key;
use deyehard_core::{ApiKeyId, TenantScope};
use deyehard_store::{ApiKey, ApiKeyStore, StoreError};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::error::ApiError;
use crate::http::AppState;
use crate::session::{Authenticated, SessionAuth, VerifiedOnly};

/// The API-key endpoints.
pub struct KeysApi;

/// An API key as listed (never the secret).
#[derive(Debug, Object)]
pub struct KeyInfo {
    /// Id (for revoking).
    pub id: i64,
    /// Name given at creation.
    pub name: String,
    /// The public part after `dh_`, to tell keys apart.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a device last used it.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked (revoked keys no longer work).
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for KeyInfo {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id.get(),
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new key's name.
#[derive(Debug, Object)]
pub struct NewKeyRequest {
    /// A name for the key (e.g. the DTU it is for).
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
}

/// A key just created: the only time the secret is shown.
#[derive(Debug, Object)]
pub struct CreatedKey {
    /// The key as listed.
    #[oai(flatten)]
    pub info: KeyInfo,
    /// The whole key; copy it now, it cannot be shown again.
    pub key: String,
}

/// Creation answer.
#[derive(ApiResponse)]
pub enum Created {
    /// The key was created.
    #[oai(status = 201)]
    Created(Json<CreatedKey>),
}

/// Revocation answer.
#[derive(ApiResponse)]
pub enum Revoked {
    /// The key no longer works.
    #[oai(status = 204)]
    Revoked,
}

#[OpenApi(prefix_path = "/keys", tag = "super::ApiTags::Account")]
impl KeysApi {
    /// The caller's keys, newest first.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
    ) -> poem::Result<Json<Vec<KeyInfo>>> {
        let auth = auth.into_inner();
        let keys = state
            .store
            .api_keys(&auth.scope)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(keys.into_iter().map(KeyInfo::from).collect()))
    }

    /// Create a key (verified accounts only; rate-limited).
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        body: Json<NewKeyRequest>,
    ) -> poem::Result<Created> {
        let created = create_key(&state, &auth.into_inner(), body.name.trim()).await?;
        Ok(Created::Created(Json(created)))
    }

    /// Revoke one of the caller's keys (another user's id is a 404).
    #[oai(path = "/:id", method = "delete")]
    async fn revoke(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        id: Path<i64>,
    ) -> poem::Result<Revoked> {
        let auth = auth.into_inner();
        revoke_key(&state, &auth.scope, ApiKeyId::new(id.0))
            .await
            .map_err(ApiError::from)?;
        Ok(Revoked::Revoked)
    }
}

/// Revokes one of the caller's keys (shared with the keys page); pushes with it are refused
/// from now on.
///
/// # Errors
/// 404 for another tenant's key, store errors.
pub async fn revoke_key(
    state: &AppState,
    scope: &TenantScope,
    id: ApiKeyId,
) -> Result<(), StoreError> {
    state.store.revoke_api_key(scope, id).await?;
    state.api_keys.forget_key(id);
    Ok(())
}

/// Creates a key for a verified caller (shared with the keys page).
///
/// # Errors
/// 403 with a message for an unverified account, 429 when rate-limited.
pub async fn create_key(
    state: &AppState,
    auth: &Authenticated,
    name: &str,
) -> Result<CreatedKey, ApiError> {
    auth.require_verified(VerifiedOnly::CreateApiKeys)?;
    state
        .accounts
        .limits()
        .key_creation
        .check(&format!("user:{}", auth.user.id))?;
    let key = api_key::generate();
    let stored = state
        .store
        .create_api_key(&auth.scope, name, &key.prefix, &key.hash)
        .await?;
    Ok(CreatedKey {
        info: stored.into(),
        key: key.plaintext,
    })
}
