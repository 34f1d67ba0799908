//! What exports read besides the readings themselves, shared by both backends (see
//! [`crate::common`]).

/// The distinct DC channels of one inverter in a time range.
pub(crate) const DC_CHANNELS: &str = "SELECT DISTINCT channel FROM dc_measurements \
     WHERE user_id = $1 AND inverter_id = $2 AND time >= $3 AND time < $4 ORDER BY channel";

/// Expands `ExportReader` for a backend store type (after `impl_reads!`, whose `check_owned`
/// it uses).
macro_rules! impl_export {
    ($store:ty) => {
        impl $crate::ExportReader for $store {
            async fn export_dc_channels(
                &self,
                scope: &deyehard_core::TenantScope,
                inverter: deyehard_core::InverterId,
                from: chrono::DateTime<chrono::Utc>,
                to: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<Vec<u8>> {
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let channels: Vec<i16> = sqlx::query_scalar($crate::common::export::DC_CHANNELS)
                    .bind($crate::common::uid(scope))
                    .bind(inverter.get())
                    .bind($crate::ts::Ts::new(from))
                    .bind($crate::ts::Ts::new(to))
                    .fetch_all(&mut *tx)
                    .await?;
                if channels.is_empty() {
                    Self::check_owned(&mut tx, scope, inverter).await?;
                }
                tx.commit().await?;
                channels
                    .into_iter()
                    .map(|c| {
                        u8::try_from(c).map_err(|_| $crate::StoreError::corrupt("bad DC channel"))
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use impl_export;
