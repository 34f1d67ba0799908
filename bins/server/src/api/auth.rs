//! `/api/auth/*`: signup, email verification (and resending it), the token endpoint,
//! "log out everywhere", and the password reset request and confirmation.
//!
//! Answers never tell whether an address is registered: signup and the reset and resend
//! requests answer the same `202` either way (an existing account gets a "you already have
//! an account" mail instead), and a failed login is one `401` for every cause, after the
//! same hashing time.

use chrono::Utc;
use deyehard_core::TenantScope;
use deyehard_core::auth::onetime::{Purpose, binding_fingerprint};
use deyehard_core::auth::password;
use deyehard_store::{NewUser, StoreError, User, UserStore, constraint};
use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::accounts::Accounts;
use crate::error::ApiError;
use crate::http::AppState;
use crate::mail::{Mail, MailKind};
use crate::security::client_ip;
use crate::session::{SessionAuth, clear_session_cookie};

/// The account endpoints that need no session (and "log out everywhere").
pub struct AuthApi;

/// A message for the user.
#[derive(Debug, Object)]
pub struct Message {
    /// What happened, in a sentence.
    pub message: String,
}

impl Message {
    /// A JSON message.
    pub fn new(text: &str) -> Json<Self> {
        Json(Self {
            message: text.to_owned(),
        })
    }
}

/// Signup form.
#[derive(Debug, Object)]
pub struct SignupRequest {
    /// Email address (the login).
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// Password (policy: ≥ 8 characters, a digit, an upper-case letter, not common).
    #[oai(validator(max_length = 1024))]
    pub password: String,
    /// Name shown in the app.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub display_name: String,
    /// IANA time zone (default: the server's).
    pub time_zone: Option<String>,
    /// `en` or `de`.
    pub locale: Option<String>,
}

/// A one-time token from a mailed link.
#[derive(Debug, Object)]
pub struct TokenRequest {
    /// The `token` parameter of the link.
    #[oai(validator(max_length = 4096))]
    pub token: String,
}

/// An email address.
#[derive(Debug, Object)]
pub struct EmailRequest {
    /// The account's address.
    #[oai(validator(max_length = 254))]
    pub email: String,
}

/// Credentials for the token endpoint.
#[derive(Debug, Object)]
pub struct LoginRequest {
    /// Email address.
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// Password.
    #[oai(validator(max_length = 1024))]
    pub password: String,
}

/// A session token for API clients.
#[derive(Debug, Object)]
pub struct AccessToken {
    /// The JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// The caller's CSRF token.
#[derive(Debug, Object)]
pub struct CsrfTokenBody {
    /// Send it as `X-CSRF-Token` (or the `csrf_token` form field).
    pub csrf_token: String,
}

/// Reset confirmation form.
#[derive(Debug, Object)]
pub struct ResetConfirmRequest {
    /// The `token` parameter of the reset link.
    #[oai(validator(max_length = 4096))]
    pub token: String,
    /// The new password.
    #[oai(validator(max_length = 1024))]
    pub password: String,
}

/// A response that also removes the session cookie.
#[derive(ApiResponse)]
pub enum LoggedOut {
    /// Every session of the account has ended.
    #[oai(status = 200)]
    Ok(Json<Message>, #[oai(header = "Set-Cookie")] String),
}

/// The answer to an address that is not one.
pub const INVALID_EMAIL: &str = "This is not a valid email address.";
/// The answer to an empty display name.
pub const NO_DISPLAY_NAME: &str = "Please enter a display name.";
/// The answer to a display name over 100 characters.
pub const NAME_TOO_LONG: &str = "The display name must be at most 100 characters long.";
/// The start of the answer to a time zone that is not an IANA name (the name follows).
pub const UNKNOWN_TIME_ZONE: &str = "Unknown time zone:";

/// The same answer for every signup.
pub const SIGNUP_ACCEPTED: &str =
    "Thanks! Check your inbox: we sent you a message to confirm your email address.";
/// The same answer for every reset request.
pub const RESET_ACCEPTED: &str =
    "If an account exists for this address, we sent it a link to reset the password.";
/// The same answer for every resend request.
pub const RESEND_ACCEPTED: &str =
    "If this address belongs to an unverified account, we sent it a new confirmation link.";

#[OpenApi(prefix_path = "/auth", tag = "super::ApiTags::Auth")]
impl AuthApi {
    /// Create an account; a confirmation link is mailed. The answer is the same whether or
    /// not the address is already registered.
    #[oai(path = "/signup", method = "post")]
    async fn signup(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        body: Json<SignupRequest>,
    ) -> poem::Result<poem_openapi::payload::Json<Message>> {
        let accounts = &state.accounts;
        let ip = client_ip(req, &accounts.settings().trusted_proxies);
        accounts.limits().signup.check(&format!("ip:{ip}"))?;
        Ok(signup(&state, body.0).await?)
    }

    /// Confirm an email address with the token of the mailed link.
    #[oai(path = "/verify", method = "post")]
    async fn verify(
        &self,
        state: poem::web::Data<&AppState>,
        body: Json<TokenRequest>,
    ) -> poem::Result<Json<Message>> {
        verify_email(&state, &body.token).await?;
        Ok(Message::new("Your email address is confirmed."))
    }

    /// Send the confirmation link again (rate-limited). Same answer for every address.
    #[oai(path = "/resend-verification", method = "post")]
    async fn resend(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        body: Json<EmailRequest>,
    ) -> poem::Result<Json<Message>> {
        let ip = client_ip(req, &state.accounts.settings().trusted_proxies);
        resend_verification(&state, ip, &body.email).await?;
        Ok(Message::new(RESEND_ACCEPTED))
    }

    /// Exchange email and password for a bearer token (2 days). Rate-limited per account
    /// and per client address.
    #[oai(path = "/token", method = "post")]
    async fn token(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        body: Json<LoginRequest>,
    ) -> poem::Result<Json<AccessToken>> {
        let ip = client_ip(req, &state.accounts.settings().trusted_proxies);
        let user = login(&state, ip, &body.email, &body.password).await?;
        let token = issue_session(&state.accounts, &user)?;
        Ok(Json(AccessToken {
            access_token: token,
            token_type: "bearer".to_owned(),
            expires_in: deyehard_core::auth::session::SESSION_LIFETIME.num_seconds(),
        }))
    }

    /// End every session of the account (all devices) and remove the session cookie.
    #[oai(path = "/logout-everywhere", method = "post")]
    async fn logout_everywhere(
        &self,
        state: poem::web::Data<&AppState>,
        auth: SessionAuth,
    ) -> poem::Result<LoggedOut> {
        let auth = auth.into_inner();
        state
            .store
            .bump_session_version(&auth.scope)
            .await
            .map_err(ApiError::from)?;
        Ok(LoggedOut::Ok(
            Message::new("You are logged out everywhere."),
            clear_session_cookie(state.accounts.settings().cookie_secure),
        ))
    }

    /// Ask for a password reset link (valid 1 hour). Same answer for every address.
    #[oai(path = "/password-reset", method = "post")]
    async fn password_reset(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        body: Json<EmailRequest>,
    ) -> poem::Result<Json<Message>> {
        let ip = client_ip(req, &state.accounts.settings().trusted_proxies);
        request_reset(&state, ip, &body.email).await?;
        Ok(Message::new(RESET_ACCEPTED))
    }

    /// The CSRF token to send as `X-CSRF-Token` with cookie-authenticated calls (the
    /// response also sets the matching `deyehard_csrf` cookie when it is missing).
    #[oai(path = "/csrf", method = "get")]
    async fn csrf(&self, req: &Request) -> Json<CsrfTokenBody> {
        let token = req
            .extensions()
            .get::<crate::security::CsrfToken>()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        Json(CsrfTokenBody { csrf_token: token })
    }

    /// Set a new password with the token of the reset link; every session ends.
    #[oai(path = "/password-reset/confirm", method = "post")]
    async fn password_reset_confirm(
        &self,
        state: poem::web::Data<&AppState>,
        body: Json<ResetConfirmRequest>,
    ) -> poem::Result<Json<Message>> {
        confirm_reset(&state, &body.token, &body.password).await?;
        Ok(Message::new(
            "Your password has been changed. Please log in with the new one.",
        ))
    }
}

/// Signup, shared by the page and the API.
///
/// # Errors
/// 422 for a bad address, a password the policy refuses, an unknown time zone.
pub async fn signup(state: &AppState, form: SignupRequest) -> Result<Json<Message>, ApiError> {
    let accounts = &state.accounts;
    let email = form.email.trim().to_owned();
    if email.parse::<lettre::Address>().is_err() {
        return Err(ApiError::Unprocessable(INVALID_EMAIL.to_owned()));
    }
    let display_name = check_display_name(&form.display_name)?;
    let time_zone = form
        .time_zone
        .map(|tz| tz.trim().to_owned())
        .filter(|tz| !tz.is_empty())
        .unwrap_or_else(|| accounts.settings().default_time_zone.clone());
    check_time_zone(&time_zone)?;
    password::check_policy(&form.password, Some(&email))
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let locale = form
        .locale
        .filter(|l| l == "de" || l == "en")
        .unwrap_or_else(|| "en".to_owned());
    // Hash first, whatever happens next, so both outcomes take the same time.
    let hash = accounts.hash_password(form.password).await?;
    let new = NewUser {
        email: email.clone(),
        password_hash: hash,
        display_name,
        time_zone: Some(time_zone),
        locale: Some(locale),
        is_verified: false,
        is_superuser: false,
    };
    match state.store.create_user(&new).await {
        Ok(user) => send_verification(accounts, &user, &user.email),
        Err(StoreError::Conflict(name)) if name == constraint::USER_EMAIL => {
            if let Some(existing) = state.store.user_by_email_unscoped(&email).await? {
                accounts.send_mail(Mail {
                    to: existing.email.clone(),
                    name: existing.display_name.clone(),
                    locale: existing.locale.clone(),
                    kind: MailKind::AlreadyRegistered,
                    link: String::new(),
                });
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Message::new(SIGNUP_ACCEPTED))
}

/// A display name from a form, trimmed.
///
/// # Errors
/// 422 when it is empty or longer than 100 characters.
pub fn check_display_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        Err(ApiError::Unprocessable(NO_DISPLAY_NAME.to_owned()))
    } else if name.chars().count() > 100 {
        Err(ApiError::Unprocessable(NAME_TOO_LONG.to_owned()))
    } else {
        Ok(name.to_owned())
    }
}

/// Checks an IANA time zone name from a form.
///
/// # Errors
/// 422 naming the zone when it is unknown.
pub fn check_time_zone(name: &str) -> Result<(), ApiError> {
    match deyehard_core::energy::parse_tz(name) {
        Ok(_) => Ok(()),
        Err(_) => {
            let shown: String = name.chars().take(64).collect();
            Err(ApiError::Unprocessable(format!(
                "{UNKNOWN_TIME_ZONE} {shown:?}"
            )))
        }
    }
}

/// Mails a new verification link when the address belongs to an active, unverified account
/// (and says nothing either way). Rate-limited per client address and per address.
///
/// # Errors
/// 429 when rate-limited; store errors.
pub async fn resend_verification(
    state: &AppState,
    ip: std::net::IpAddr,
    email: &str,
) -> Result<(), ApiError> {
    let accounts = &state.accounts;
    accounts.limits().resend.check(&format!("ip:{ip}"))?;
    accounts
        .limits()
        .resend
        .check(&format!("acct:{}", email.trim().to_lowercase()))?;
    if let Some(user) = state.store.user_by_email_unscoped(email.trim()).await?
        && user.is_active
        && !user.is_verified
    {
        send_verification(accounts, &user, &user.email);
    }
    Ok(())
}

/// Mails a verification link for `address` to the user.
pub fn send_verification(accounts: &Accounts, user: &User, address: &str) {
    let token = accounts.secrets().tokens.seal(
        Purpose::VerifyEmail,
        user.id,
        &address.to_lowercase(),
        Utc::now(),
    );
    accounts.send_mail(Mail {
        to: address.to_owned(),
        name: user.display_name.clone(),
        locale: user.locale.clone(),
        kind: MailKind::Verify,
        link: accounts.link(&format!("/verify?token={token}")),
    });
}

fn link_error(e: deyehard_core::auth::TokenError) -> ApiError {
    ApiError::Unprocessable(e.to_string())
}

/// The answer to a genuine link that was used already or no longer matches the account.
pub const LINK_USED: &str =
    "This link has already been used or is no longer valid. Please request a new one.";

/// Verifies the address a verification token names.
///
/// # Errors
/// 422 with a friendly message for an invalid, expired or used link.
pub async fn verify_email(state: &AppState, token: &str) -> Result<(), ApiError> {
    let payload = state
        .accounts
        .secrets()
        .tokens
        .open(token, Purpose::VerifyEmail, Utc::now())
        .map_err(link_error)?;
    let user = state
        .store
        .user_by_id_unscoped(payload.user_id)
        .await?
        .filter(|u| !u.is_verified && payload.binding_matches(&u.email.to_lowercase()))
        .ok_or_else(|| ApiError::Unprocessable(LINK_USED.to_owned()))?;
    // The sealed link is the credential for this one change.
    let scope = TenantScope::from_credential_lookup(user.id);
    state.store.set_verified(&scope, true).await?;
    Ok(())
}

/// Checks a login (page and token endpoint): rate limits, then the password, with the
/// same time and answer for every kind of failure.
///
/// # Errors
/// 429 when rate-limited, 401 for any wrong credential.
pub async fn login(
    state: &AppState,
    ip: std::net::IpAddr,
    email: &str,
    password: &str,
) -> Result<User, ApiError> {
    let limits = state.accounts.limits();
    limits.login_address.check(&format!("ip:{ip}"))?;
    limits
        .login_account
        .check(&format!("acct:{}", email.trim().to_lowercase()))?;
    let user = state
        .store
        .user_by_email_unscoped(email.trim())
        .await?
        .filter(|u| u.is_active);
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let ok = state
        .accounts
        .verify_password(password.to_owned(), phc)
        .await?;
    match user {
        Some(user) if ok => {
            upgrade_hash(state, &user, password).await;
            Ok(user)
        }
        _ => {
            tracing::info!(%ip, "failed login");
            Err(ApiError::Unauthorized)
        }
    }
}

/// After a successful login with a hash of older parameters (or a bcrypt hash of an imported
/// account), stores a current argon2id hash of the same password. Sessions stay valid; a
/// failure is logged and does not fail the login.
async fn upgrade_hash(state: &AppState, user: &User, password: &str) {
    if !password::needs_rehash(&user.password_hash) {
        return;
    }
    let upgraded = match state.accounts.hash_password(password.to_owned()).await {
        Ok(hash) => {
            let scope = TenantScope::from_credential_lookup(user.id);
            state
                .store
                .upgrade_password_hash(&scope, &user.password_hash, &hash)
                .await
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    match upgraded {
        Ok(_) => {
            tracing::info!(user = %user.id, "password hash upgraded to the current parameters")
        }
        Err(e) => tracing::warn!(user = %user.id, error = %e, "cannot upgrade the password hash"),
    }
}

/// A session token for `user` at their current session version.
///
/// # Errors
/// 500 if signing fails.
pub fn issue_session(accounts: &Accounts, user: &User) -> Result<String, ApiError> {
    accounts
        .secrets()
        .sessions
        .issue(user.id, user.session_version, Utc::now())
        .map_err(|e| ApiError::Internal(Box::new(e)))
}

/// Mails a reset link when the account exists (and says nothing either way).
///
/// # Errors
/// 429 when rate-limited; store errors.
pub async fn request_reset(
    state: &AppState,
    ip: std::net::IpAddr,
    email: &str,
) -> Result<(), ApiError> {
    let accounts = &state.accounts;
    accounts.limits().reset.check(&format!("ip:{ip}"))?;
    accounts
        .limits()
        .reset
        .check(&format!("acct:{}", email.trim().to_lowercase()))?;
    if let Some(user) = state.store.user_by_email_unscoped(email.trim()).await?
        && user.is_active
    {
        let token = accounts.secrets().tokens.seal(
            Purpose::ResetPassword,
            user.id,
            &binding_fingerprint(&user.password_hash),
            Utc::now(),
        );
        accounts.send_mail(Mail {
            to: user.email.clone(),
            name: user.display_name.clone(),
            locale: user.locale.clone(),
            kind: MailKind::Reset,
            link: accounts.link(&format!("/reset-password?token={token}")),
        });
    }
    Ok(())
}

/// Sets a new password from a reset link; the old password's sessions and links die.
///
/// # Errors
/// 422 with a friendly message for a bad link or a password the policy refuses.
pub async fn confirm_reset(
    state: &AppState,
    token: &str,
    new_password: &str,
) -> Result<(), ApiError> {
    let payload = state
        .accounts
        .secrets()
        .tokens
        .open(token, Purpose::ResetPassword, Utc::now())
        .map_err(link_error)?;
    let user = state
        .store
        .user_by_id_unscoped(payload.user_id)
        .await?
        .filter(|u| u.is_active && payload.binding_matches(&binding_fingerprint(&u.password_hash)))
        .ok_or_else(|| ApiError::Unprocessable(LINK_USED.to_owned()))?;
    password::check_policy(new_password, Some(&user.email))
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let hash = state
        .accounts
        .hash_password(new_password.to_owned())
        .await?;
    let scope = TenantScope::from_credential_lookup(user.id);
    state.store.set_password_hash(&scope, &hash).await?;
    Ok(())
}
