//! Admin operations shared by the JSON API ([`super::admin`]) and the admin pages: the
//! system status, user flags and deletion (an admin cannot lock themselves out), moving an
//! inverter to another owner, and the conversions of the cross-tenant views.

use chrono::Utc;
use deyehard_core::{InverterId, UserId};
use deyehard_store::{
    AdminActor, AdminFleet, AdminStore, ConflictSerial, Maintenance, StoreError, UserFlags,
    UserStore, constraint,
};

use super::admin::{
    AdminConflict, AdminConflictClaim, AdminInverter, AdminUnknownSerial, ReassignRequest,
    SystemStatus,
};
use crate::error::ApiError;
use crate::http::AppState;

/// The answer when an admin tries to take their own rights away or delete themselves.
pub const NOT_YOURSELF: &str = "You cannot deactivate, demote or delete your own account here: \
     ask another administrator, or use the command line.";

/// Sets a user's flags; an admin cannot deactivate or demote themselves.
///
/// # Errors
/// 422 for the admin's own account losing rights, 404 for an unknown user, 403 when the actor
/// is no longer an admin.
pub async fn set_user_flags(
    state: &AppState,
    actor: AdminActor,
    user: UserId,
    flags: UserFlags,
) -> Result<(), ApiError> {
    if user == actor.user_id() && !(flags.is_active && flags.is_superuser) {
        return Err(ApiError::Unprocessable(NOT_YOURSELF.to_owned()));
    }
    state.store.admin_set_user_flags(actor, user, flags).await?;
    state.api_keys.forget_user(user);
    tracing::info!(%user, by = %actor.user_id(), active = flags.is_active, verified = flags.is_verified, admin = flags.is_superuser, "user flags set by an admin");
    Ok(())
}

/// Deletes a user with everything they own; an admin cannot delete themselves here.
///
/// # Errors
/// 422 for the admin's own account, 404 for an unknown user, 403 when the actor is no longer
/// an admin.
pub async fn delete_user(
    state: &AppState,
    actor: AdminActor,
    user: UserId,
) -> Result<(), ApiError> {
    if user == actor.user_id() {
        return Err(ApiError::Unprocessable(NOT_YOURSELF.to_owned()));
    }
    state.store.admin_delete_user(actor, user).await?;
    state.api_keys.forget_user(user);
    state.batcher.forget_inverters(user);
    tracing::info!(%user, by = %actor.user_id(), "user deleted by an admin");
    Ok(())
}

/// The system status (shared with the admin page). The counts are an admin read, so the
/// superuser flag is re-checked in the database.
///
/// # Errors
/// 403 when the actor is no longer an admin; store errors.
pub async fn system_status(state: &AppState, actor: AdminActor) -> Result<SystemStatus, ApiError> {
    let counts = state
        .store
        .admin_counts(actor, Utc::now() - chrono::TimeDelta::hours(1))
        .await?;
    let info = state.store.backend_info().await?;
    Ok(SystemStatus {
        database: format!("{:?}", info.kind).to_lowercase(),
        timescaledb: info.timescaledb,
        retention_days: info.retention_days,
        users: counts.users,
        active_users: counts.active_users,
        verified_users: counts.verified_users,
        superusers: counts.superusers,
        inverters: counts.inverters,
        inverters_seen_last_hour: counts.inverters_seen,
        api_keys: counts.api_keys,
        unclaimed_loggers: counts.unclaimed_loggers,
    })
}

/// The user a reassign names, by id or by email (exactly one).
///
/// # Errors
/// 422 naming the field when neither or both are given, or no such user exists.
pub async fn new_owner(
    state: &AppState,
    actor: AdminActor,
    request: &ReassignRequest,
) -> Result<UserId, ApiError> {
    match (
        request.owner_id,
        request.owner_email.as_deref().map(str::trim),
    ) {
        (Some(id), None) => Ok(UserId::new(id)),
        (None, Some(email)) if !email.is_empty() => {
            let found = state.store.admin_users(actor, Some(email), 10, 0).await?;
            found
                .into_iter()
                .find(|o| o.user.email.eq_ignore_ascii_case(email))
                .map(|o| o.user.id)
                .ok_or_else(|| {
                    ApiError::Unprocessable(format!("owner_email: there is no user {email:?}"))
                })
        }
        _ => Err(ApiError::Unprocessable(
            "give the new owner as either owner_id or owner_email".to_owned(),
        )),
    }
}

/// Moves an inverter to `owner` (shared with the admin page).
///
/// # Errors
/// 404 for an unknown inverter, 422 for an unknown owner, 409 when the owner already has an
/// inverter with this serial.
pub async fn reassign_inverter(
    state: &AppState,
    actor: AdminActor,
    inverter: InverterId,
    owner: UserId,
) -> Result<AdminInverter, ApiError> {
    let moved = state
        .store
        .admin_reassign_inverter(actor, inverter, owner)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(name) if name == constraint::INVERTER_SERIAL => {
                ApiError::Conflict(REASSIGN_SERIAL_TAKEN.to_owned())
            }
            other => other.into(),
        })?;
    // Both the old and the new owner's serial maps changed.
    state.batcher.forget_all_inverters();
    let owner_email = state
        .store
        .user_by_id_unscoped(moved.owner)
        .await?
        .map(|u| u.email)
        .unwrap_or_default();
    tracing::info!(inverter = %moved.id, owner = %moved.owner, "inverter reassigned by an admin");
    Ok(AdminInverter::from(deyehard_store::AdminInverter {
        inverter: moved,
        owner_email,
    }))
}

/// The answer when the new owner already has an inverter with the moved one's serial.
pub const REASSIGN_SERIAL_TAKEN: &str =
    "The new owner already has an inverter with this serial: delete or rename one of them first.";

/// The API view of an unknown serial.
pub fn unknown_serial(row: deyehard_store::AdminUnknownSerial) -> AdminUnknownSerial {
    AdminUnknownSerial {
        owner: row.owner.get(),
        owner_email: row.owner_email,
        inverter_serial: row.serial.inverter_serial,
        dtu_serial: row.serial.dtu_serial,
        first_seen_at: row.serial.first_seen_at,
        last_seen_at: row.serial.last_seen_at,
        times_seen: row.serial.times_seen,
    }
}

/// The API view of a serial conflict.
pub fn conflict(row: deyehard_store::SerialConflict) -> AdminConflict {
    let (kind, serial) = match row.serial {
        ConflictSerial::Device(s) => ("device", s),
        ConflictSerial::Logger(l) => ("logger", l.get().to_string()),
    };
    AdminConflict {
        kind: kind.to_owned(),
        serial,
        claims: row
            .claims
            .into_iter()
            .map(|c| AdminConflictClaim {
                user_id: c.user.get(),
                email: c.email,
                inverter_id: c.inverter.map(|i| i.get()),
                last_seen_at: c.last_seen_at,
                attempts: c.attempts,
            })
            .collect(),
    }
}
