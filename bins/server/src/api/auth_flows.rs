//! The account flows behind `/api/auth/*` and the visitor pages: signup, email verification
//! (and resending it), login (with the upgrade of outdated password hashes) and the password
//! reset. The endpoints in [`super::auth`] and the pages in `crate::pages` call these, so both
//! answer the same way.

use chrono::Utc;
use deyehard_core::TenantScope;
use deyehard_core::auth::onetime::{Purpose, binding_fingerprint};
use deyehard_core::auth::password;
use deyehard_store::{NewUser, StoreError, User, UserStore, constraint};
use poem_openapi::payload::Json;

use super::auth::{Message, SIGNUP_ACCEPTED, SignupRequest};
use crate::accounts::{Accounts, INVALID_EMAIL, check_display_name, check_time_zone};
use crate::error::ApiError;
use crate::http::AppState;
use crate::mail::{Mail, MailKind};

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
