//! Session resolution: a JWT from the `deyehard_session` cookie (pages) or from
//! `Authorization: Bearer` (API clients) → signature and expiry checked → the user re-read
//! from the database → session version and `is_active` compared → a [`TenantScope`].
//!
//! Nothing about the user is trusted from the token beyond its id and session version: the
//! superuser flag, verification and activity come from the database on every request.

use chrono::Utc;
use deyehard_core::TenantScope;
use deyehard_store::{User, UserStore};
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::{ApiKey, Bearer};

use crate::error::ApiError;
use crate::http::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "deyehard_session";

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The session cookie (pages, HTMX).
    Cookie,
    /// `Authorization: Bearer` (API clients).
    Bearer,
}

/// A caller whose session was checked against the database just now.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The caller's tenant scope.
    pub scope: TenantScope,
    /// The caller's account as the database has it now.
    pub user: User,
    /// How the caller authenticated.
    pub via: Via,
}

/// What only accounts with a confirmed email address may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifiedOnly {
    /// Creating API keys.
    CreateApiKeys,
    /// Registering inverters.
    RegisterInverters,
}

impl VerifiedOnly {
    /// The message for an unverified account: (English, German).
    pub const fn message(self) -> (&'static str, &'static str) {
        match self {
            Self::CreateApiKeys => (
                "Please confirm your email address first: unverified accounts cannot create API \
                 keys. The link we mailed you confirms it; /verify/resend sends a new one.",
                "Bitte bestätige zuerst deine E-Mail-Adresse: unbestätigte Konten können keine \
                 API-Schlüssel erstellen. Der Link in unserer E-Mail bestätigt sie; unter \
                 /verify/resend bekommst du einen neuen.",
            ),
            Self::RegisterInverters => (
                "Please confirm your email address first: unverified accounts cannot register \
                 inverters. The link we mailed you confirms it; /verify/resend sends a new one.",
                "Bitte bestätige zuerst deine E-Mail-Adresse: unbestätigte Konten können keine \
                 Wechselrichter anlegen. Der Link in unserer E-Mail bestätigt sie; unter \
                 /verify/resend bekommst du einen neuen.",
            ),
        }
    }
}

impl Authenticated {
    /// `Ok` for an account whose email address is confirmed; otherwise
    /// [`ApiError::NotAllowed`] (403) with the English text of [`VerifiedOnly::message`].
    /// Shared by every path that creates API keys or registers inverters.
    ///
    /// # Errors
    /// [`ApiError::NotAllowed`] for an unverified account.
    pub fn require_verified(&self, action: VerifiedOnly) -> Result<(), ApiError> {
        if self.user.is_verified {
            Ok(())
        } else {
            Err(ApiError::NotAllowed(action.message().0.to_owned()))
        }
    }
}

/// Resolves a session token (see the module docs).
///
/// # Errors
/// [`ApiError::Unauthorized`] for a token that is invalid, expired, revoked (old session
/// version) or names a missing or deactivated account; store errors as they are.
pub async fn authenticate(
    state: &AppState,
    token: &str,
    via: Via,
) -> Result<Authenticated, ApiError> {
    let session = state
        .accounts
        .secrets()
        .sessions
        .verify(token, Utc::now())
        .map_err(|_| ApiError::Unauthorized)?;
    let user = state
        .store
        .user_by_id_unscoped(session.user_id())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let scope = TenantScope::from_session(&session, user.session_version, user.is_active)
        .ok_or(ApiError::Unauthorized)?;
    Ok(Authenticated { scope, user, via })
}

/// The session of a page request, from the cookie, if there is a valid one.
pub async fn page_session(state: &AppState, req: &Request) -> Option<Authenticated> {
    let token = crate::security::request_cookie(req, SESSION_COOKIE)?;
    authenticate(state, &token, Via::Cookie).await.ok()
}

/// `Set-Cookie` value that stores a session token.
pub fn session_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    let max_age = deyehard_core::auth::session::SESSION_LIFETIME.num_seconds();
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}")
}

fn state_of(req: &Request) -> poem::Result<&AppState> {
    req.data::<AppState>()
        .ok_or_else(|| ApiError::Internal("the app state is missing".into()).into())
}

/// A session token in `Authorization: Bearer` (from `POST /api/auth/token`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerSession(pub Authenticated);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Authenticated> {
    Ok(authenticate(state_of(req)?, &bearer.token, Via::Bearer).await?)
}

/// The session cookie set by the login page.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "deyehard_session",
    key_in = "cookie",
    checker = "check_cookie"
)]
pub struct CookieSession(pub Authenticated);

async fn check_cookie(req: &Request, key: ApiKey) -> poem::Result<Authenticated> {
    Ok(authenticate(state_of(req)?, &key.key, Via::Cookie).await?)
}

/// Either session credential.
#[derive(SecurityScheme)]
pub enum SessionAuth {
    /// Bearer token.
    Bearer(BearerSession),
    /// Cookie.
    Cookie(CookieSession),
}

impl SessionAuth {
    /// The authenticated caller.
    pub fn into_inner(self) -> Authenticated {
        match self {
            Self::Bearer(BearerSession(a)) | Self::Cookie(CookieSession(a)) => a,
        }
    }
}
