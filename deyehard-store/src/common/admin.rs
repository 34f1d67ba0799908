//! The admin's fleet tools ([`crate::AdminFleet`]) and the record of refused logger claims,
//! shared by both backends (see [`crate::common`]).
//!
//! Moving an inverter to another owner rewrites `user_id` on the inverter and on every row that
//! references it by `(inverter_id, user_id)`. Those foreign keys are checked at commit instead
//! of per statement: the backend passes the statement that defers them (PostgreSQL
//! `SET CONSTRAINTS ALL DEFERRED`, the keys being `DEFERRABLE` since migration 0003; SQLite
//! `PRAGMA defer_foreign_keys = ON`).

use std::collections::BTreeMap;

use deyehard_core::{InverterId, LoggerSerial, UserId};

use crate::StoreError;
use crate::model::{ConflictClaim, ConflictSerial, SerialConflict};
use crate::rows::InverterRow;
use crate::ts::Ts;

/// The statements of this module (the same text on both backends).
pub(crate) mod sql {
    /// Inverters of all tenants matching a serial pattern, with the owner's address.
    pub(crate) const SEARCH_INVERTERS: &str = "SELECT i.id AS id, i.user_id AS user_id, \
         i.name AS name, i.kind AS kind, i.serial AS serial, i.logger_serial AS logger_serial, \
         i.rated_power_w AS rated_power_w, i.mppt_count AS mppt_count, \
         i.firmware_version AS firmware_version, i.last_seen_at AS last_seen_at, \
         i.created_at AS created_at, u.email AS owner_email \
         FROM inverters i JOIN users u ON u.id = i.user_id \
         WHERE ($1 IS NULL OR lower(i.serial) LIKE $1 ESCAPE '\\' \
         OR CAST(i.logger_serial AS TEXT) LIKE $1 ESCAPE '\\') \
         ORDER BY i.id LIMIT $2 OFFSET $3";
    /// Whether a user exists.
    pub(crate) const USER_EXISTS: &str = "SELECT id FROM users WHERE id = $1";
    /// The inverter's new owner.
    pub(crate) const MOVE_INVERTER: &str = "UPDATE inverters SET user_id = $2 WHERE id = $1";
    /// The rows that reference an inverter by `(inverter_id, user_id)`, moved with it.
    pub(crate) const MOVE_ROWS: [&str; 7] = [
        "UPDATE measurements SET user_id = $2 WHERE inverter_id = $1",
        "UPDATE dc_measurements SET user_id = $2 WHERE inverter_id = $1",
        "UPDATE daily_energy SET user_id = $2 WHERE inverter_id = $1",
        "UPDATE energy_state SET user_id = $2 WHERE inverter_id = $1",
        "UPDATE rollup_5m SET user_id = $2 WHERE inverter_id = $1",
        "UPDATE rollup_1h SET user_id = $2 WHERE inverter_id = $1",
        "UPDATE raw_frames SET user_id = $2 WHERE inverter_id = $1",
    ];
    /// Unknown serials of all tenants that are still not registered.
    pub(crate) const UNKNOWN_SERIALS: &str = "SELECT s.user_id, u.email, s.inverter_serial, \
         s.dtu_serial, s.first_seen_at, s.last_seen_at, s.times_seen \
         FROM unknown_serials s JOIN users u ON u.id = s.user_id WHERE NOT EXISTS \
         (SELECT 1 FROM inverters i WHERE i.user_id = s.user_id AND i.serial = s.inverter_serial) \
         ORDER BY s.last_seen_at DESC, s.inverter_serial LIMIT $1";
    /// Device serials registered by several tenants, or registered by one and pushed by
    /// another: one row per claim.
    pub(crate) const DEVICE_CONFLICTS: &str = "SELECT i.serial AS serial, i.user_id AS user_id, \
         u.email AS email, i.id AS inverter_id, i.last_seen_at AS last_seen_at, 0 AS attempts \
         FROM inverters i JOIN users u ON u.id = i.user_id WHERE i.serial IS NOT NULL AND (\
         EXISTS (SELECT 1 FROM inverters o WHERE o.serial = i.serial AND o.user_id <> i.user_id) \
         OR EXISTS (SELECT 1 FROM unknown_serials s WHERE s.inverter_serial = i.serial \
         AND s.user_id <> i.user_id)) \
         UNION ALL SELECT s.inverter_serial, s.user_id, u.email, NULL, s.last_seen_at, \
         s.times_seen FROM unknown_serials s JOIN users u ON u.id = s.user_id \
         WHERE EXISTS (SELECT 1 FROM inverters o WHERE o.serial = s.inverter_serial \
         AND o.user_id <> s.user_id) AND NOT EXISTS (SELECT 1 FROM inverters m \
         WHERE m.user_id = s.user_id AND m.serial = s.inverter_serial)";
    /// Logger serials claimed by one tenant and refused to another: one row per claim.
    pub(crate) const LOGGER_CONFLICTS: &str = "SELECT i.logger_serial AS serial, \
         i.user_id AS user_id, u.email AS email, i.id AS inverter_id, \
         i.last_seen_at AS last_seen_at, 0 AS attempts \
         FROM inverters i JOIN users u ON u.id = i.user_id WHERE EXISTS (SELECT 1 \
         FROM claim_conflicts c WHERE c.logger_serial = i.logger_serial AND c.user_id <> i.user_id) \
         UNION ALL SELECT c.logger_serial, c.user_id, u.email, NULL, c.last_seen_at, c.attempts \
         FROM claim_conflicts c JOIN users u ON u.id = c.user_id WHERE EXISTS (SELECT 1 \
         FROM inverters i WHERE i.logger_serial = c.logger_serial AND i.user_id <> c.user_id)";
    /// A refused logger claim (in the claimant's scope).
    pub(crate) const RECORD_CLAIM_CONFLICT: &str = "INSERT INTO claim_conflicts (user_id, \
         logger_serial, first_seen_at, last_seen_at, attempts) VALUES ($1, $2, $3, $3, 1) \
         ON CONFLICT (user_id, logger_serial) DO UPDATE SET \
         last_seen_at = CASE WHEN excluded.last_seen_at > claim_conflicts.last_seen_at \
         THEN excluded.last_seen_at ELSE claim_conflicts.last_seen_at END, \
         attempts = claim_conflicts.attempts + 1";
    /// The status page's counts.
    pub(crate) const COUNTS: &str = "SELECT \
         (SELECT count(*) FROM users) AS users, \
         (SELECT count(*) FROM users WHERE is_active) AS active_users, \
         (SELECT count(*) FROM users WHERE is_verified) AS verified_users, \
         (SELECT count(*) FROM users WHERE is_superuser) AS superusers, \
         (SELECT count(*) FROM inverters) AS inverters, \
         (SELECT count(*) FROM inverters WHERE last_seen_at >= $1) AS inverters_seen, \
         (SELECT count(*) FROM api_keys WHERE revoked_at IS NULL) AS api_keys, \
         (SELECT count(*) FROM unclaimed_loggers) AS unclaimed_loggers";
}

/// A row of [`sql::SEARCH_INVERTERS`].
#[derive(sqlx::FromRow)]
pub(crate) struct AdminInverterRow {
    #[sqlx(flatten)]
    pub(crate) inverter: InverterRow,
    pub(crate) owner_email: String,
}

/// A row of [`sql::UNKNOWN_SERIALS`].
#[derive(sqlx::FromRow)]
pub(crate) struct AdminUnknownSerialRow {
    pub(crate) user_id: i64,
    pub(crate) email: String,
    pub(crate) inverter_serial: String,
    pub(crate) dtu_serial: Option<String>,
    pub(crate) first_seen_at: Ts,
    pub(crate) last_seen_at: Ts,
    pub(crate) times_seen: i64,
}

impl From<AdminUnknownSerialRow> for crate::AdminUnknownSerial {
    fn from(r: AdminUnknownSerialRow) -> Self {
        Self {
            owner: UserId::new(r.user_id),
            owner_email: r.email,
            serial: crate::UnknownSerial {
                inverter_serial: r.inverter_serial,
                dtu_serial: r.dtu_serial,
                first_seen_at: r.first_seen_at.get(),
                last_seen_at: r.last_seen_at.get(),
                times_seen: r.times_seen,
            },
        }
    }
}

/// A row of [`sql::DEVICE_CONFLICTS`] (`S` = `String`) or [`sql::LOGGER_CONFLICTS`] (`i64`).
#[derive(sqlx::FromRow)]
pub(crate) struct ConflictRow<S> {
    pub(crate) serial: S,
    pub(crate) user_id: i64,
    pub(crate) email: String,
    pub(crate) inverter_id: Option<i64>,
    pub(crate) last_seen_at: Option<Ts>,
    pub(crate) attempts: i64,
}

/// A row of [`sql::COUNTS`].
#[derive(sqlx::FromRow)]
pub(crate) struct CountsRow {
    users: i64,
    active_users: i64,
    verified_users: i64,
    superusers: i64,
    inverters: i64,
    inverters_seen: i64,
    api_keys: i64,
    unclaimed_loggers: i64,
}

impl From<CountsRow> for crate::AdminCounts {
    fn from(r: CountsRow) -> Self {
        Self {
            users: r.users,
            active_users: r.active_users,
            verified_users: r.verified_users,
            superusers: r.superusers,
            inverters: r.inverters,
            inverters_seen: r.inverters_seen,
            api_keys: r.api_keys,
            unclaimed_loggers: r.unclaimed_loggers,
        }
    }
}

/// Groups conflict rows by serial: registered inverters first (by id), then refused claims and
/// pushes (most recent first). Serials in ascending order, device serials before loggers.
pub(crate) fn group_conflicts(
    devices: Vec<ConflictRow<String>>,
    loggers: Vec<ConflictRow<i64>>,
) -> Result<Vec<SerialConflict>, StoreError> {
    let mut groups: BTreeMap<ConflictSerial, Vec<ConflictClaim>> = BTreeMap::new();
    let logger_serial = |s: i64| {
        u32::try_from(s)
            .map(LoggerSerial::new)
            .map_err(|_| StoreError::corrupt(format!("bad logger serial {s}")))
    };
    for r in devices {
        let serial = ConflictSerial::Device(r.serial.clone());
        groups.entry(serial).or_default().push(claim(&r));
    }
    for r in loggers {
        let serial = ConflictSerial::Logger(logger_serial(r.serial)?);
        groups.entry(serial).or_default().push(claim(&r));
    }
    Ok(groups
        .into_iter()
        .map(|(serial, mut claims)| {
            claims.sort_by(|a, b| match (a.inverter, b.inverter) {
                (Some(x), Some(y)) => x.get().cmp(&y.get()),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => b.last_seen_at.cmp(&a.last_seen_at),
            });
            SerialConflict { serial, claims }
        })
        .collect())
}

fn claim<S>(r: &ConflictRow<S>) -> ConflictClaim {
    ConflictClaim {
        user: UserId::new(r.user_id),
        email: r.email.clone(),
        inverter: r.inverter_id.map(InverterId::new),
        last_seen_at: r.last_seen_at.map(Ts::get),
        attempts: r.attempts,
    }
}

/// Expands [`crate::AdminFleet`] and the inherent `record_claim_conflict` for a backend store
/// type; `$defer_fks` is the backend's statement that defers foreign key checks to the commit.
macro_rules! impl_admin {
    ($store:ty, $defer_fks:literal) => {
        impl $store {
            /// Records that the scope's tenant tried to claim `serial` while another tenant held
            /// the claim (called by [`crate::Store`] when a claim is refused).
            pub(crate) async fn record_claim_conflict(
                &self,
                scope: &deyehard_core::TenantScope,
                serial: deyehard_core::LoggerSerial,
            ) -> $crate::StoreResult<()> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                sqlx::query($crate::common::admin::sql::RECORD_CLAIM_CONFLICT)
                    .bind($crate::common::uid(scope))
                    .bind(i64::from(serial.get()))
                    .bind($crate::ts::Ts::now())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
        }

        impl $crate::AdminFleet for $store {
            async fn admin_search_inverters(
                &self,
                actor: $crate::AdminActor,
                search: Option<&str>,
                limit: u32,
                offset: u32,
            ) -> $crate::StoreResult<Vec<$crate::AdminInverter>> {
                let mut tx = self.begin_admin(actor).await?;
                let pattern = search
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map($crate::common::like_pattern);
                let rows: Vec<$crate::common::admin::AdminInverterRow> =
                    sqlx::query_as($crate::common::admin::sql::SEARCH_INVERTERS)
                        .bind(pattern)
                        .bind($crate::common::limit(limit))
                        .bind($crate::common::limit(offset))
                        .fetch_all(&mut *tx)
                        .await?;
                tx.commit().await?;
                rows.into_iter()
                    .map(|r| {
                        Ok($crate::AdminInverter {
                            inverter: r.inverter.try_into()?,
                            owner_email: r.owner_email,
                        })
                    })
                    .collect()
            }

            async fn admin_reassign_inverter(
                &self,
                actor: $crate::AdminActor,
                inverter: deyehard_core::InverterId,
                new_owner: deyehard_core::UserId,
            ) -> $crate::StoreResult<$crate::Inverter> {
                use $crate::common::admin::sql;
                let mut tx = self.begin_admin(actor).await?;
                let owner: Option<i64> = sqlx::query_scalar(sql::USER_EXISTS)
                    .bind(new_owner.get())
                    .fetch_optional(&mut *tx)
                    .await?;
                if owner.is_none() {
                    return Err($crate::StoreError::Invalid(format!(
                        "there is no user with the id {new_owner}"
                    )));
                }
                sqlx::query($defer_fks).execute(&mut *tx).await?;
                let moved = sqlx::query(sql::MOVE_INVERTER)
                    .bind(inverter.get())
                    .bind(new_owner.get())
                    .execute(&mut *tx)
                    .await?;
                $crate::common::expect_one(moved.rows_affected())?;
                for statement in sql::MOVE_ROWS {
                    sqlx::query(statement)
                        .bind(inverter.get())
                        .bind(new_owner.get())
                        .execute(&mut *tx)
                        .await?;
                }
                let row: $crate::rows::InverterRow = sqlx::query_as($crate::sql::INVERTER_BY_ID)
                    .bind(new_owner.get())
                    .bind(inverter.get())
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                row.try_into()
            }

            async fn admin_unknown_serials(
                &self,
                actor: $crate::AdminActor,
                limit: u32,
            ) -> $crate::StoreResult<Vec<$crate::AdminUnknownSerial>> {
                let mut tx = self.begin_admin(actor).await?;
                let rows: Vec<$crate::common::admin::AdminUnknownSerialRow> =
                    sqlx::query_as($crate::common::admin::sql::UNKNOWN_SERIALS)
                        .bind($crate::common::limit(limit))
                        .fetch_all(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn admin_serial_conflicts(
                &self,
                actor: $crate::AdminActor,
            ) -> $crate::StoreResult<Vec<$crate::SerialConflict>> {
                use $crate::common::admin::{ConflictRow, group_conflicts, sql};
                let mut tx = self.begin_admin(actor).await?;
                let devices: Vec<ConflictRow<String>> = sqlx::query_as(sql::DEVICE_CONFLICTS)
                    .fetch_all(&mut *tx)
                    .await?;
                let loggers: Vec<ConflictRow<i64>> = sqlx::query_as(sql::LOGGER_CONFLICTS)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                group_conflicts(devices, loggers)
            }

            async fn admin_counts(
                &self,
                actor: $crate::AdminActor,
                seen_since: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<$crate::AdminCounts> {
                let mut tx = self.begin_admin(actor).await?;
                let row: $crate::common::admin::CountsRow =
                    sqlx::query_as($crate::common::admin::sql::COUNTS)
                        .bind($crate::ts::Ts::new(seen_since))
                        .fetch_one(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(row.into())
            }
        }
    };
}

pub(crate) use impl_admin;
