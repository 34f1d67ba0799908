//! Retention and health, shared by both backends (see [`crate::common`]). Each backend provides
//! `backend_info_impl()`, `ping_impl()` and `retention_covers_series()`.

use sqlx::migrate::Migrator;

/// The statement that reads the newest applied migration (sqlx's bookkeeping table).
pub(crate) const APPLIED_VERSION: &str = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";

/// `Ok` when the newest migration this build carries is applied; otherwise
/// [`crate::StoreError::Unavailable`] naming both versions (readiness: not ready yet).
pub(crate) fn check_migrated(applied: Option<i64>, migrator: &Migrator) -> crate::StoreResult<()> {
    let needed = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    let applied = applied.unwrap_or(0);
    if applied >= needed {
        return Ok(());
    }
    Err(crate::StoreError::Unavailable(
        format!("the database schema is at version {applied}, this build needs {needed}").into(),
    ))
}

/// Expands `Maintenance` for a backend store type.
macro_rules! impl_maintenance {
    ($store:ty) => {
        impl $crate::Maintenance for $store {
            async fn backend_info(&self) -> $crate::StoreResult<$crate::BackendInfo> {
                self.backend_info_impl().await
            }

            async fn ping(&self) -> $crate::StoreResult<()> {
                self.ping_impl().await
            }

            async fn apply_retention(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                days: u32,
            ) -> $crate::StoreResult<$crate::RetentionReport> {
                use $crate::common::Access;
                if days == 0 {
                    return Err($crate::StoreError::Invalid(
                        "retention must be at least one day".into(),
                    ));
                }
                let cutoff = $crate::ts::Ts::new(now - chrono::TimeDelta::days(i64::from(days)));
                let mut report = $crate::RetentionReport::default();
                // Cross-tenant by nature: the retention window applies to every tenant. Deletes
                // go per inverter (along the primary key) in short transactions so ingestion is
                // never blocked for long.
                if !self.retention_covers_series() {
                    let mut tx = self.begin_read(Access::CrossTenant).await?;
                    let ids: Vec<i64> = sqlx::query_scalar($crate::sql::ALL_INVERTER_IDS)
                        .fetch_all(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    for id in ids {
                        let mut tx = self.begin_write(Access::CrossTenant).await?;
                        report.measurements += sqlx::query($crate::sql::RETAIN_MEASUREMENTS)
                            .bind(id)
                            .bind(cutoff)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                        report.dc_measurements += sqlx::query($crate::sql::RETAIN_DC)
                            .bind(id)
                            .bind(cutoff)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                        tx.commit().await?;
                    }
                }
                let mut tx = self.begin_write(Access::CrossTenant).await?;
                report.raw_frames = sqlx::query($crate::sql::RETAIN_RAW_FRAMES)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query($crate::sql::RETAIN_UNCLAIMED)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(report)
            }
        }
    };
}

pub(crate) use impl_maintenance;
