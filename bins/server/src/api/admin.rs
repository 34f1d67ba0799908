//! `/api/admin/*`: user administration and cross-tenant views for superusers.
//!
//! The superuser flag is never taken from a token: the session check re-reads the account,
//! and every store call re-checks `is_superuser` (and `is_active`) in the database in the same
//! transaction ([`AdminActor`]).

use chrono::{DateTime, Utc};
use deyehard_core::UserId;
use deyehard_store::{AdminActor, AdminStore, Maintenance, UserFlags};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::error::ApiError;
use crate::http::AppState;
use crate::session::SessionAuth;

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

/// System status.
#[derive(Debug, Object)]
pub struct SystemStatus {
    /// `sqlite` or `postgres`.
    pub database: String,
    /// TimescaleDB in use.
    pub timescaledb: bool,
    /// Days of raw data kept.
    pub retention_days: u32,
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
fn actor(auth: SessionAuth) -> Result<AdminActor, ApiError> {
    let auth = auth.into_inner();
    if !auth.user.is_superuser {
        return Err(ApiError::Forbidden);
    }
    Ok(AdminActor::new(&auth.scope))
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
        state
            .store
            .admin_set_user_flags(actor, UserId::new(id.0), flags)
            .await
            .map_err(ApiError::from)?;
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
        let actor = actor(auth)?;
        state
            .store
            .admin_delete_user(actor, UserId::new(id.0))
            .await
            .map_err(ApiError::from)?;
        Ok(Done::Done)
    }

    /// Inverters of all tenants, optionally those whose serial contains `serial`.
    #[oai(path = "/inverters", method = "get")]
    async fn inverters(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        serial: Query<Option<String>>,
    ) -> poem::Result<Json<Vec<AdminInverter>>> {
        let actor = actor(auth)?;
        let all = state
            .store
            .admin_inverters(actor)
            .await
            .map_err(ApiError::from)?;
        let wanted = serial.0.unwrap_or_default();
        Ok(Json(
            all.into_iter()
                .map(|i| AdminInverter {
                    id: i.id.get(),
                    owner: i.owner.get(),
                    name: i.name,
                    serial: i.serial.map(|s| s.as_str().to_owned()),
                    logger_serial: i.logger_serial.map(|l| l.get()),
                    last_seen_at: i.last_seen_at,
                })
                .filter(|i| {
                    wanted.is_empty()
                        || i.serial.as_deref().is_some_and(|s| s.contains(&wanted))
                        || i.logger_serial
                            .is_some_and(|l| l.to_string().contains(&wanted))
                })
                .collect(),
        ))
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

    /// Database kind, TimescaleDB, retention.
    #[oai(path = "/status", method = "get")]
    async fn status(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
    ) -> poem::Result<Json<SystemStatus>> {
        let actor = actor(auth)?;
        // An admin read first, so the superuser flag is re-checked in the database.
        state
            .store
            .admin_users(actor, None, 1, 0)
            .await
            .map_err(ApiError::from)?;
        let info = state.store.backend_info().await.map_err(ApiError::from)?;
        Ok(Json(SystemStatus {
            database: format!("{:?}", info.kind).to_lowercase(),
            timescaledb: info.timescaledb,
            retention_days: info.retention_days,
        }))
    }
}
