//! `/api/admin/*`: user administration and cross-tenant views for superusers.
//!
//! The superuser flag is never taken from a token: the session check re-reads the account,
//! and every store call re-checks `is_superuser` (and `is_active`) in the database in the same
//! transaction ([`AdminActor`]).

use chrono::{DateTime, Utc};
use deyehard_core::{InverterId, UserId};
use deyehard_store::{AdminActor, AdminFleet, AdminStore, UserFlags};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::admin_ops::{
    conflict, delete_user, new_owner, reassign_inverter, set_user_flags, system_status,
    unknown_serial,
};
use crate::error::ApiError;
use crate::http::AppState;
use crate::session::{Authenticated, SessionAuth};

/// The admin endpoints.
pub struct AdminApi;

/// A user as the admin sees them.
#[derive(Debug, Object)]
pub struct AdminUser {
    /// User id.
    pub id: i64,
    /// Email address.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// May log in.
    pub is_active: bool,
    /// Address confirmed.
    pub is_verified: bool,
    /// Administrator.
    pub is_superuser: bool,
    /// Inverters owned.
    pub inverter_count: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// New flags of a user.
#[derive(Debug, Object)]
pub struct FlagsRequest {
    /// May log in.
    pub is_active: bool,
    /// Address confirmed.
    pub is_verified: bool,
    /// Administrator.
    pub is_superuser: bool,
}

/// An inverter of any tenant.
#[derive(Debug, Object)]
pub struct AdminInverter {
    /// Inverter id.
    pub id: i64,
    /// Owner's user id.
    pub owner: i64,
    /// Owner's email address.
    pub owner_email: String,
    /// Name.
    pub name: String,
    /// Device serial.
    pub serial: Option<String>,
    /// Solarman logger serial.
    pub logger_serial: Option<u32>,
    /// Last data.
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// A logger that sends frames nobody claimed.
#[derive(Debug, Object)]
pub struct AdminUnclaimedLogger {
    /// Logger serial.
    pub logger_serial: u32,
    /// First frame.
    pub first_seen_at: DateTime<Utc>,
    /// Last frame.
    pub last_seen_at: DateTime<Utc>,
    /// Frames received.
    pub frames_seen: i64,
}

impl From<deyehard_store::AdminInverter> for AdminInverter {
    fn from(row: deyehard_store::AdminInverter) -> Self {
        let i = row.inverter;
        Self {
            id: i.id.get(),
            owner: i.owner.get(),
            owner_email: row.owner_email,
            name: i.name,
            serial: i.serial.map(|s| s.as_str().to_owned()),
            logger_serial: i.logger_serial.map(|l| l.get()),
            last_seen_at: i.last_seen_at,
        }
    }
}

/// The new owner of an inverter: give the user's id or email address.
#[derive(Debug, Object)]
pub struct ReassignRequest {
    /// The new owner's user id.
    pub owner_id: Option<i64>,
    /// The new owner's email address.
    #[oai(validator(max_length = 254))]
    pub owner_email: Option<String>,
}

/// An OpenDTU serial pushed with a tenant's key but not registered by that tenant.
#[derive(Debug, Object)]
pub struct AdminUnknownSerial {
    /// The tenant whose key pushed it.
    pub owner: i64,
    /// That tenant's email address.
    pub owner_email: String,
    /// The inverter serial.
    pub inverter_serial: String,
    /// The DTU that pushed it.
    pub dtu_serial: Option<String>,
    /// First push.
    pub first_seen_at: DateTime<Utc>,
    /// Latest push.
    pub last_seen_at: DateTime<Utc>,
    /// Pushes.
    pub times_seen: i64,
}

/// One tenant's side of a serial conflict.
#[derive(Debug, Object)]
pub struct AdminConflictClaim {
    /// The tenant.
    pub user_id: i64,
    /// The tenant's email address.
    pub email: String,
    /// The tenant's inverter with this serial; absent for a refused claim or a serial pushed
    /// but not registered.
    pub inverter_id: Option<i64>,
    /// Last data, refused claim or push.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Refused claims or unregistered pushes (0 for a registered inverter).
    pub attempts: i64,
}

/// A serial several tenants lay claim to.
#[derive(Debug, Object)]
pub struct AdminConflict {
    /// `device` (an inverter serial) or `logger` (a Solarman logger serial).
    pub kind: String,
    /// The serial.
    pub serial: String,
    /// Registered inverters first, then refused claims and pushes.
    pub claims: Vec<AdminConflictClaim>,
}

/// System status.
#[derive(Debug, Object)]
pub struct SystemStatus {
    /// `sqlite` or `postgres`.
    pub database: String,
    /// TimescaleDB in use.
    pub timescaledb: bool,
    /// Days of raw data kept.
    pub retention_days: u32,
    /// All accounts.
    pub users: i64,
    /// Accounts that may log in.
    pub active_users: i64,
    /// Accounts with a confirmed address.
    pub verified_users: i64,
    /// Administrators.
    pub superusers: i64,
    /// Registered inverters.
    pub inverters: i64,
    /// Inverters with data in the last hour.
    pub inverters_seen_last_hour: i64,
    /// API keys that are not revoked.
    pub api_keys: i64,
    /// Loggers sending frames that nobody claimed.
    pub unclaimed_loggers: i64,
}

/// Change answers.
#[derive(ApiResponse)]
pub enum Done {
    /// Done.
    #[oai(status = 204)]
    Done,
}

/// The acting admin: the flag as the database has it now (the session check re-read the
/// account), and re-checked again by every store call.
///
/// # Errors
/// 403 for a user who is not an administrator.
pub fn admin_actor(auth: &Authenticated) -> Result<AdminActor, ApiError> {
    if !auth.user.is_superuser {
        return Err(ApiError::Forbidden);
    }
    Ok(AdminActor::new(&auth.scope))
}

fn actor(auth: SessionAuth) -> Result<AdminActor, ApiError> {
    admin_actor(&auth.into_inner())
}

#[OpenApi(prefix_path = "/admin", tag = "super::ApiTags::Admin")]
impl AdminApi {
    /// Users whose email or name contains `q`.
    #[oai(path = "/users", method = "get")]
    async fn users(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        q: Query<Option<String>>,
        offset: Query<Option<u32>>,
    ) -> poem::Result<Json<Vec<AdminUser>>> {
        let actor = actor(auth)?;
        let users = state
            .store
            .admin_users(actor, q.0.as_deref(), 100, offset.0.unwrap_or(0))
            .await
            .map_err(ApiError::from)?;
        Ok(Json(
            users
                .into_iter()
                .map(|o| AdminUser {
                    id: o.user.id.get(),
                    email: o.user.email,
                    display_name: o.user.display_name,
                    is_active: o.user.is_active,
                    is_verified: o.user.is_verified,
                    is_superuser: o.user.is_superuser,
                    inverter_count: o.inverter_count,
                    created_at: o.user.created_at,
                })
                .collect(),
        ))
    }

    /// Verify, (de)activate, grant or revoke admin.
    #[oai(path = "/users/:id", method = "put")]
    async fn set_flags(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        id: Path<i64>,
        body: Json<FlagsRequest>,
    ) -> poem::Result<Done> {
        let actor = actor(auth)?;
        let flags = UserFlags {
            is_active: body.is_active,
            is_verified: body.is_verified,
            is_superuser: body.is_superuser,
        };
        set_user_flags(&state, actor, UserId::new(id.0), flags).await?;
        Ok(Done::Done)
    }

    /// Delete a user and everything they own.
    #[oai(path = "/users/:id", method = "delete")]
    async fn delete_user(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        id: Path<i64>,
    ) -> poem::Result<Done> {
        delete_user(&state, actor(auth)?, UserId::new(id.0)).await?;
        Ok(Done::Done)
    }

    /// Inverters of all tenants (100 per page), optionally those whose device or logger serial
    /// contains `serial`.
    #[oai(path = "/inverters", method = "get")]
    async fn inverters(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        serial: Query<Option<String>>,
        offset: Query<Option<u32>>,
    ) -> poem::Result<Json<Vec<AdminInverter>>> {
        let actor = actor(auth)?;
        let found = state
            .store
            .admin_search_inverters(actor, serial.0.as_deref(), 100, offset.0.unwrap_or(0))
            .await
            .map_err(ApiError::from)?;
        Ok(Json(found.into_iter().map(AdminInverter::from).collect()))
    }

    /// Move an inverter, with its readings, energy and raw frames, to another user.
    #[oai(path = "/inverters/:id/owner", method = "put")]
    async fn reassign(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        id: Path<i64>,
        body: Json<ReassignRequest>,
    ) -> poem::Result<Json<AdminInverter>> {
        let actor = actor(auth)?;
        let owner = new_owner(&state, actor, &body.0).await?;
        let moved = reassign_inverter(&state, actor, InverterId::new(id.0), owner).await?;
        Ok(Json(moved))
    }

    /// OpenDTU serials pushed with some tenant's key but not registered by that tenant.
    #[oai(path = "/unknown-serials", method = "get")]
    async fn unknown_serials(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
    ) -> poem::Result<Json<Vec<AdminUnknownSerial>>> {
        let actor = actor(auth)?;
        let rows = state
            .store
            .admin_unknown_serials(actor, 500)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(rows.into_iter().map(unknown_serial).collect()))
    }

    /// Serials several tenants lay claim to: a device serial registered by more than one
    /// tenant (or pushed by another tenant's key), a logger serial whose claim was refused.
    #[oai(path = "/conflicts", method = "get")]
    async fn conflicts(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
    ) -> poem::Result<Json<Vec<AdminConflict>>> {
        let actor = actor(auth)?;
        let rows = state
            .store
            .admin_serial_conflicts(actor)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(rows.into_iter().map(conflict).collect()))
    }

    /// Loggers that send frames nobody claimed.
    #[oai(path = "/unclaimed-loggers", method = "get")]
    async fn unclaimed(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
    ) -> poem::Result<Json<Vec<AdminUnclaimedLogger>>> {
        let actor = actor(auth)?;
        let loggers = state
            .store
            .admin_unclaimed_loggers(actor)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(
            loggers
                .into_iter()
                .map(|l| AdminUnclaimedLogger {
                    logger_serial: l.logger_serial.get(),
                    first_seen_at: l.first_seen_at,
                    last_seen_at: l.last_seen_at,
                    frames_seen: l.frames_seen,
                })
                .collect(),
        ))
    }

    /// Database kind, TimescaleDB, retention, and counts of users, inverters and keys.
    #[oai(path = "/status", method = "get")]
    async fn status(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
    ) -> poem::Result<Json<SystemStatus>> {
        Ok(Json(system_status(&state, actor(auth)?).await?))
    }
}
