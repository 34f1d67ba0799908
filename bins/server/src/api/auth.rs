//! `/api/auth/*`: signup, email verification (and resending it), the token endpoint,
//! "log out everywhere", and the password reset request and confirmation.
//!
//! Answers never tell whether an address is registered: signup and the reset and resend
//! requests answer the same `200` either way (an existing account gets a "you already have
//! an account" mail instead), and a failed login is one `401` for every cause, after the
//! same hashing time.

use deyehard_store::UserStore;
use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

pub use super::auth_flows::{
    LINK_USED, confirm_reset, issue_session, login, request_reset, resend_verification,
    send_verification, signup, verify_email,
};
use crate::error::ApiError;
use crate::http::AppState;
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
