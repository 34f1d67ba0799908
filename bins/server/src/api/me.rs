//! `/api/me`: the caller's account: read it, change profile, password and email address,
//! delete it (with everything it owns).

use chrono::{DateTime, Utc};
use deyehard_core::TenantScope;
use deyehard_core::auth::onetime::Purpose;
use deyehard_core::auth::password;
use deyehard_store::{ProfileUpdate, User, UserStore};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::accounts::{INVALID_EMAIL, check_display_name, check_time_zone};
use crate::api::auth::{AccessToken, LINK_USED, Message, issue_session};
use crate::error::ApiError;
use crate::http::AppState;
use crate::mail::{Mail, MailKind};
use crate::session::{Authenticated, SessionAuth, Via, clear_session_cookie, session_cookie};

/// The account endpoints.
pub struct MeApi;

/// The answer to a wrong current password (password and email change, deletion).
pub const WRONG_PASSWORD: &str = "The current password is not correct.";
/// The answer to an email change to the address the account already has.
pub const SAME_EMAIL: &str = "This is already your email address.";

/// The caller's account.
#[derive(Debug, Object)]
pub struct Me {
    /// User id.
    pub id: i64,
    /// Email address.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// IANA time zone for days and charts.
    pub time_zone: String,
    /// `en` or `de`.
    pub locale: String,
    /// Whether the address is confirmed.
    pub is_verified: bool,
    /// Whether the account is an administrator.
    pub is_superuser: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

impl From<&User> for Me {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.get(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            time_zone: u.time_zone.clone(),
            locale: u.locale.clone(),
            is_verified: u.is_verified,
            is_superuser: u.is_superuser,
            created_at: u.created_at,
        }
    }
}

/// Profile changes (absent fields keep their value).
#[derive(Debug, Object)]
pub struct ProfileRequest {
    /// Display name.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub display_name: Option<String>,
    /// IANA time zone.
    pub time_zone: Option<String>,
    /// `en` or `de`.
    pub locale: Option<String>,
}

/// Password change.
#[derive(Debug, Object)]
pub struct PasswordChange {
    /// The current password.
    #[oai(validator(max_length = 1024))]
    pub current_password: String,
    /// The new password.
    #[oai(validator(max_length = 1024))]
    pub new_password: String,
}

/// Email change.
#[derive(Debug, Object)]
pub struct EmailChange {
    /// The current password.
    #[oai(validator(max_length = 1024))]
    pub password: String,
    /// The new address (confirmed through a mailed link).
    #[oai(validator(max_length = 254))]
    pub new_email: String,
}

/// Confirmation of a password.
#[derive(Debug, Object)]
pub struct PasswordConfirmation {
    /// The current password.
    #[oai(validator(max_length = 1024))]
    pub password: String,
}

/// Answer to a password change: a fresh session (all older ones ended).
#[derive(ApiResponse)]
pub enum PasswordChanged {
    /// Changed; the new token (and, for cookie sessions, a new cookie).
    #[oai(status = 200)]
    Ok(
        Json<AccessToken>,
        #[oai(header = "Set-Cookie")] Option<String>,
    ),
}

/// Answer to a deletion.
#[derive(ApiResponse)]
pub enum Deleted {
    /// The account and everything it owned are gone.
    #[oai(status = 200)]
    Ok(Json<Message>, #[oai(header = "Set-Cookie")] String),
}

#[OpenApi(prefix_path = "/me", tag = "super::ApiTags::Account")]
impl MeApi {
    /// The caller's account.
    #[oai(path = "/", method = "get")]
    async fn me(&self, auth: SessionAuth) -> Json<Me> {
        Json(Me::from(&auth.into_inner().user))
    }

    /// Change display name, time zone or language.
    #[oai(path = "/", method = "patch")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        body: Json<ProfileRequest>,
    ) -> poem::Result<Json<Me>> {
        let user = update_profile(&state, &auth.into_inner(), body.0).await?;
        Ok(Json(Me::from(&user)))
    }

    /// Change the password (needs the current one); every other session ends.
    #[oai(path = "/password", method = "post")]
    async fn password(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        body: Json<PasswordChange>,
    ) -> poem::Result<PasswordChanged> {
        let auth = auth.into_inner();
        let token =
            change_password(&state, &auth, &body.current_password, &body.new_password).await?;
        let cookie = (auth.via == Via::Cookie)
            .then(|| session_cookie(&token, state.accounts.settings().cookie_secure));
        Ok(PasswordChanged::Ok(
            Json(AccessToken {
                access_token: token,
                token_type: "bearer".to_owned(),
                expires_in: deyehard_core::auth::session::SESSION_LIFETIME.num_seconds(),
            }),
            cookie,
        ))
    }

    /// Change the email address (needs the password): a link goes to the new address, a
    /// notice to the current one; the change happens when the link is opened.
    #[oai(path = "/email", method = "post")]
    async fn email(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        body: Json<EmailChange>,
    ) -> poem::Result<Json<Message>> {
        request_email_change(&state, &auth.into_inner(), &body.password, &body.new_email).await?;
        Ok(Message::new(
            "We sent a confirmation link to the new address.",
        ))
    }

    /// Complete an email change with the token of the link mailed to the new address.
    #[oai(path = "/email/confirm", method = "post")]
    async fn email_confirm(
        &self,
        state: Data<&AppState>,
        body: Json<crate::api::auth::TokenRequest>,
    ) -> poem::Result<Json<Message>> {
        confirm_email_change(&state, &body.token).await?;
        Ok(Message::new("Your new email address is confirmed."))
    }

    /// Delete the account (needs the password), with its inverters, keys and readings.
    #[oai(path = "/", method = "delete")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        body: Json<PasswordConfirmation>,
    ) -> poem::Result<Deleted> {
        delete_account(&state, &auth.into_inner(), &body.password).await?;
        Ok(Deleted::Ok(
            Message::new("Your account has been deleted."),
            clear_session_cookie(state.accounts.settings().cookie_secure),
        ))
    }
}

/// Changes name, time zone or language (absent fields keep their value; an unknown language
/// keeps the current one).
///
/// # Errors
/// 422 for an empty name or an unknown time zone.
pub async fn update_profile(
    state: &AppState,
    auth: &Authenticated,
    change: ProfileRequest,
) -> Result<User, ApiError> {
    let user = &auth.user;
    let display_name = match change.display_name {
        Some(name) => check_display_name(&name)?,
        None => user.display_name.clone(),
    };
    let time_zone = match change.time_zone {
        Some(tz) => {
            check_time_zone(tz.trim())?;
            tz.trim().to_owned()
        }
        None => user.time_zone.clone(),
    };
    let update = ProfileUpdate {
        display_name,
        time_zone,
        locale: change
            .locale
            .filter(|l| l == "en" || l == "de")
            .unwrap_or_else(|| user.locale.clone()),
    };
    Ok(state.store.update_profile(&auth.scope, &update).await?)
}

async fn check_current_password(
    state: &AppState,
    auth: &Authenticated,
    password: &str,
) -> Result<(), ApiError> {
    let ok = state
        .accounts
        .verify_password(password.to_owned(), Some(auth.user.password_hash.clone()))
        .await?;
    if ok {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(WRONG_PASSWORD.to_owned()))
    }
}

/// Changes the password and returns a new session token (older sessions end).
///
/// # Errors
/// 422 for a wrong current password or a new one the policy refuses.
pub async fn change_password(
    state: &AppState,
    auth: &Authenticated,
    current: &str,
    new: &str,
) -> Result<String, ApiError> {
    // Guessing the current password through this form costs the same budget as logging in,
    // counted per account apart from the logins themselves.
    state
        .accounts
        .limits()
        .login_account
        .check(&format!("change:{}", auth.user.id))?;
    check_current_password(state, auth, current).await?;
    password::check_policy(new, Some(&auth.user.email))
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let hash = state.accounts.hash_password(new.to_owned()).await?;
    let version = state.store.set_password_hash(&auth.scope, &hash).await?;
    let mut user = auth.user.clone();
    user.session_version = version;
    issue_session(&state.accounts, &user)
}

/// Starts an email change: link to the new address, notice to the old one.
///
/// # Errors
/// 422 for a wrong password or a bad address.
pub async fn request_email_change(
    state: &AppState,
    auth: &Authenticated,
    password: &str,
    new_email: &str,
) -> Result<(), ApiError> {
    let accounts = &state.accounts;
    accounts
        .limits()
        .resend
        .check(&format!("email-change:{}", auth.user.id))?;
    check_current_password(state, auth, password).await?;
    let new_email = new_email.trim();
    if new_email.parse::<lettre::Address>().is_err() {
        return Err(ApiError::Unprocessable(INVALID_EMAIL.to_owned()));
    }
    if new_email.eq_ignore_ascii_case(&auth.user.email) {
        return Err(ApiError::Unprocessable(SAME_EMAIL.to_owned()));
    }
    let user = &auth.user;
    let binding = format!(
        "{}\n{}",
        new_email.to_lowercase(),
        user.email.to_lowercase()
    );
    let token = accounts
        .secrets()
        .tokens
        .seal(Purpose::ChangeEmail, user.id, &binding, Utc::now());
    for (to, kind, link) in [
        (
            new_email.to_owned(),
            MailKind::ChangeEmail,
            accounts.link(&format!("/confirm-email?token={token}")),
        ),
        (
            user.email.clone(),
            MailKind::EmailChanged,
            new_email.to_owned(),
        ),
    ] {
        accounts.send_mail(Mail {
            to,
            name: user.display_name.clone(),
            locale: user.locale.clone(),
            kind,
            link,
        });
    }
    Ok(())
}

/// Completes an email change from the mailed link.
///
/// # Errors
/// 422 with a friendly message for a bad link, 409 when the address was taken meanwhile.
pub async fn confirm_email_change(state: &AppState, token: &str) -> Result<(), ApiError> {
    let payload = state
        .accounts
        .secrets()
        .tokens
        .open(token, Purpose::ChangeEmail, Utc::now())
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let user = state
        .store
        .user_by_id_unscoped(payload.user_id)
        .await?
        .ok_or_else(|| ApiError::Unprocessable(LINK_USED.to_owned()))?;
    let (new_email, current) = payload.binding.split_once('\n').unwrap_or(("", ""));
    if new_email.is_empty()
        || !payload.binding_matches(&format!("{new_email}\n{}", user.email.to_lowercase()))
        || current != user.email.to_lowercase()
    {
        return Err(ApiError::Unprocessable(LINK_USED.to_owned()));
    }
    let scope = TenantScope::from_credential_lookup(user.id);
    state.store.set_email(&scope, new_email).await?;
    state.store.set_verified(&scope, true).await?;
    Ok(())
}

/// Deletes the caller's account after checking the password.
///
/// # Errors
/// 422 for a wrong password.
pub async fn delete_account(
    state: &AppState,
    auth: &Authenticated,
    password: &str,
) -> Result<(), ApiError> {
    state
        .accounts
        .limits()
        .login_account
        .check(&format!("delete:{}", auth.user.id))?;
    check_current_password(state, auth, password).await?;
    state.store.delete_user(&auth.scope).await?;
    state.api_keys.forget_user(auth.user.id);
    state.batcher.forget_inverters(auth.user.id);
    tracing::info!(user = %auth.user.id, "account deleted");
    Ok(())
}
