//! Inverters, logger claims and raw frames, shared by both backends (see [`crate::common`]).

use deyehard_core::{DeviceInfo, LoggerSerial};

use crate::model::InverterFields;

/// Serial columns as bound in SQL.
pub(crate) fn logger_serial(serial: LoggerSerial) -> i64 {
    i64::from(serial.get())
}

/// [`InverterFields`] as bound in SQL.
pub(crate) struct InverterBinds<'a> {
    pub(crate) name: &'a str,
    pub(crate) kind: &'static str,
    pub(crate) serial: Option<&'a str>,
    pub(crate) logger_serial: Option<i64>,
    pub(crate) rated_power_w: Option<f64>,
    pub(crate) mppt_count: Option<i16>,
}

impl<'a> From<&'a InverterFields> for InverterBinds<'a> {
    fn from(fields: &'a InverterFields) -> Self {
        Self {
            name: fields.name.trim(),
            kind: fields.kind.as_str(),
            serial: fields.serial.as_ref().map(|s| s.as_str()),
            logger_serial: fields.logger_serial.map(logger_serial),
            rated_power_w: fields.rated_power_w.filter(|p| p.is_finite()),
            mppt_count: fields.mppt_count.map(i16::from),
        }
    }
}

/// The binds of [`DeviceInfo`] (firmware, rated power, MPPT count).
pub(crate) fn device_info_binds(info: &DeviceInfo) -> (Option<&str>, Option<f64>, Option<i16>) {
    (
        info.firmware_version.as_deref(),
        info.rated_power_w.filter(|p| p.is_finite()),
        info.mppt_count.map(i16::from),
    )
}

/// Expands `InverterStore`, `RawFrameStore` and `UnclaimedLoggerStore` for a backend store type.
macro_rules! impl_devices {
    ($store:ty) => {
        impl $crate::InverterStore for $store {
            async fn create_inverter(
                &self,
                scope: &deyehard_core::TenantScope,
                fields: &$crate::InverterFields,
            ) -> $crate::StoreResult<$crate::Inverter> {
                let f = $crate::common::devices::InverterBinds::from(fields);
                let user = $crate::common::uid(scope);
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let row: $crate::rows::InverterRow = sqlx::query_as($crate::sql::INVERTER_INSERT)
                    .bind(user)
                    .bind(f.name)
                    .bind(f.kind)
                    .bind(f.serial)
                    .bind(f.logger_serial)
                    .bind(f.rated_power_w)
                    .bind(f.mppt_count)
                    .bind($crate::ts::Ts::now())
                    .fetch_one(&mut *tx)
                    .await?;
                let inverter = $crate::Inverter::try_from(row)?;
                sqlx::query($crate::sql::ENERGY_STATE_INSERT)
                    .bind(inverter.id.get())
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(inverter)
            }

            async fn inverter(
                &self,
                scope: &deyehard_core::TenantScope,
                id: deyehard_core::InverterId,
            ) -> $crate::StoreResult<$crate::Inverter> {
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let row: $crate::rows::InverterRow = sqlx::query_as($crate::sql::INVERTER_BY_ID)
                    .bind($crate::common::uid(scope))
                    .bind(id.get())
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                row.try_into()
            }

            async fn inverters(
                &self,
                scope: &deyehard_core::TenantScope,
            ) -> $crate::StoreResult<Vec<$crate::Inverter>> {
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let rows: Vec<$crate::rows::InverterRow> = sqlx::query_as($crate::sql::INVERTERS)
                    .bind($crate::common::uid(scope))
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                $crate::rows::inverters(rows)
            }

            async fn inverter_by_serial(
                &self,
                scope: &deyehard_core::TenantScope,
                serial: &deyehard_core::DeviceSerial,
            ) -> $crate::StoreResult<Option<$crate::Inverter>> {
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let row: Option<$crate::rows::InverterRow> =
                    sqlx::query_as($crate::sql::INVERTER_BY_SERIAL)
                        .bind($crate::common::uid(scope))
                        .bind(serial.as_str())
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.commit().await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn update_inverter(
                &self,
                scope: &deyehard_core::TenantScope,
                id: deyehard_core::InverterId,
                fields: &$crate::InverterFields,
            ) -> $crate::StoreResult<$crate::Inverter> {
                let f = $crate::common::devices::InverterBinds::from(fields);
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let row: $crate::rows::InverterRow = sqlx::query_as($crate::sql::INVERTER_UPDATE)
                    .bind($crate::common::uid(scope))
                    .bind(id.get())
                    .bind(f.name)
                    .bind(f.kind)
                    .bind(f.serial)
                    .bind(f.logger_serial)
                    .bind(f.rated_power_w)
                    .bind(f.mppt_count)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                row.try_into()
            }

            async fn delete_inverter(
                &self,
                scope: &deyehard_core::TenantScope,
                id: deyehard_core::InverterId,
            ) -> $crate::StoreResult<()> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let done = sqlx::query($crate::sql::INVERTER_DELETE)
                    .bind($crate::common::uid(scope))
                    .bind(id.get())
                    .execute(&mut *tx)
                    .await?;
                $crate::common::expect_one(done.rows_affected())?;
                tx.commit().await?;
                Ok(())
            }

            async fn update_device_info(
                &self,
                scope: &deyehard_core::TenantScope,
                id: deyehard_core::InverterId,
                info: &deyehard_core::DeviceInfo,
            ) -> $crate::StoreResult<()> {
                let (firmware, rated, mppt) = $crate::common::devices::device_info_binds(info);
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let done = sqlx::query($crate::sql::INVERTER_DEVICE_INFO)
                    .bind($crate::common::uid(scope))
                    .bind(id.get())
                    .bind(firmware)
                    .bind(rated)
                    .bind(mppt)
                    .execute(&mut *tx)
                    .await?;
                $crate::common::expect_one(done.rows_affected())?;
                tx.commit().await?;
                Ok(())
            }

            async fn touch_inverter(
                &self,
                scope: &deyehard_core::TenantScope,
                id: deyehard_core::InverterId,
                seen_at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<()> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let done = sqlx::query($crate::sql::INVERTER_TOUCH)
                    .bind($crate::common::uid(scope))
                    .bind(id.get())
                    .bind($crate::ts::Ts::new(seen_at))
                    .execute(&mut *tx)
                    .await?;
                $crate::common::expect_one(done.rows_affected())?;
                tx.commit().await?;
                Ok(())
            }

            async fn record_unknown_serial(
                &self,
                scope: &deyehard_core::TenantScope,
                inverter_serial: &str,
                dtu_serial: Option<&str>,
                seen_at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<()> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                sqlx::query($crate::sql::UNKNOWN_SERIAL_UPSERT)
                    .bind($crate::common::uid(scope))
                    .bind(inverter_serial.trim())
                    .bind(dtu_serial)
                    .bind($crate::ts::Ts::new(seen_at))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn unknown_serials(
                &self,
                scope: &deyehard_core::TenantScope,
            ) -> $crate::StoreResult<Vec<$crate::UnknownSerial>> {
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let rows: Vec<$crate::rows::UnknownSerialRow> =
                    sqlx::query_as($crate::sql::UNKNOWN_SERIALS)
                        .bind($crate::common::uid(scope))
                        .fetch_all(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }
        }

        impl $crate::RawFrameStore for $store {
            async fn store_raw_frame(
                &self,
                scope: &deyehard_core::TenantScope,
                inverter: deyehard_core::InverterId,
                frame: &$crate::RawFrameInput<'_>,
            ) -> $crate::StoreResult<()> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                // The (inverter_id, user_id) reference rejects another tenant's inverter.
                sqlx::query($crate::sql::RAW_FRAME_INSERT)
                    .bind(Some($crate::common::uid(scope)))
                    .bind(Some(inverter.get()))
                    .bind($crate::common::devices::logger_serial(frame.logger_serial))
                    .bind($crate::ts::Ts::new(frame.received_at))
                    .bind(i32::from(frame.control))
                    .bind(frame.remote_addr)
                    .bind(frame.bytes)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn raw_frames(
                &self,
                scope: &deyehard_core::TenantScope,
                inverter: deyehard_core::InverterId,
                from: chrono::DateTime<chrono::Utc>,
                to: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::StoreResult<Vec<$crate::RawFrame>> {
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let rows: Vec<$crate::rows::RawFrameRow> = sqlx::query_as($crate::sql::RAW_FRAMES)
                    .bind($crate::common::uid(scope))
                    .bind(inverter.get())
                    .bind($crate::ts::Ts::new(from))
                    .bind($crate::ts::Ts::new(to))
                    .bind($crate::common::limit(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                if rows.is_empty() {
                    Self::check_owned(&mut tx, scope, inverter).await?;
                }
                tx.commit().await?;
                $crate::rows::raw_frames(rows)
            }
        }

        impl $crate::UnclaimedLoggerStore for $store {
            async fn resolve_logger_unscoped(
                &self,
                serial: deyehard_core::LoggerSerial,
            ) -> $crate::StoreResult<Option<$crate::LoggerClaim>> {
                // Cross-tenant by nature: a logger carries no credential; its serial names the
                // claiming tenant.
                let mut tx = self.begin_read($crate::common::Access::CrossTenant).await?;
                let row: Option<(i64, i64, Option<String>)> =
                    sqlx::query_as($crate::sql::LOGGER_RESOLVE)
                        .bind($crate::common::devices::logger_serial(serial))
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.commit().await?;
                let Some((inverter_id, user_id, device_serial)) = row else {
                    return Ok(None);
                };
                let serial = device_serial
                    .as_deref()
                    .map(deyehard_core::DeviceSerial::parse)
                    .transpose()
                    .map_err(|_| $crate::StoreError::corrupt("bad inverter serial"))?;
                Ok(Some($crate::LoggerClaim {
                    scope: deyehard_core::TenantScope::from_credential_lookup(
                        deyehard_core::UserId::new(user_id),
                    ),
                    inverter_id: deyehard_core::InverterId::new(inverter_id),
                    serial,
                }))
            }

            async fn record_unclaimed_frame(
                &self,
                frame: &$crate::RawFrameInput<'_>,
            ) -> $crate::StoreResult<()> {
                // Device-level write (cross-tenant): the frame has no owner yet.
                let serial = $crate::common::devices::logger_serial(frame.logger_serial);
                let received_at = $crate::ts::Ts::new(frame.received_at);
                let mut tx = self
                    .begin_write($crate::common::Access::CrossTenant)
                    .await?;
                sqlx::query($crate::sql::UNCLAIMED_UPSERT)
                    .bind(serial)
                    .bind(received_at)
                    .bind(frame.remote_addr)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query($crate::sql::RAW_FRAME_INSERT)
                    .bind(None::<i64>)
                    .bind(None::<i64>)
                    .bind(serial)
                    .bind(received_at)
                    .bind(i32::from(frame.control))
                    .bind(frame.remote_addr)
                    .bind(frame.bytes)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn take_unclaimed_frames(
                &self,
                scope: &deyehard_core::TenantScope,
                serial: deyehard_core::LoggerSerial,
            ) -> $crate::StoreResult<Vec<$crate::RawFrame>> {
                let user = $crate::common::uid(scope);
                let serial = $crate::common::devices::logger_serial(serial);
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                // Scoped first: the tenant must hold the claim ...
                let inverter: i64 = sqlx::query_scalar($crate::sql::LOGGER_CLAIMED_BY)
                    .bind(user)
                    .bind(serial)
                    .fetch_one(&mut *tx)
                    .await?;
                // ... then cross-tenant, to adopt the logger's ownerless frames.
                Self::cross_tenant(&mut tx).await?;
                let rows: Vec<$crate::rows::RawFrameRow> =
                    sqlx::query_as($crate::sql::RAW_FRAMES_TAKE)
                        .bind(user)
                        .bind(inverter)
                        .bind(serial)
                        .fetch_all(&mut *tx)
                        .await?;
                sqlx::query($crate::sql::UNCLAIMED_DELETE)
                    .bind(serial)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                let mut frames = $crate::rows::raw_frames(rows)?;
                frames.sort_by_key(|f| (f.received_at, f.id));
                Ok(frames)
            }
        }
    };
}

pub(crate) use impl_devices;
