//! Users, API keys and the admin views, shared by both backends (see [`crate::common`]).

/// Expands `UserStore`, `ApiKeyStore` and `AdminStore` for a backend store type.
macro_rules! impl_accounts {
    ($store:ty) => {
        impl $crate::UserStore for $store {
            async fn create_user(
                &self,
                new: &$crate::NewUser,
            ) -> $crate::StoreResult<$crate::User> {
                use $crate::common::Access;
                let time_zone = new
                    .time_zone
                    .as_deref()
                    .unwrap_or($crate::model::DEFAULT_TIME_ZONE);
                $crate::common::check_time_zone(time_zone)?;
                let locale = new
                    .locale
                    .as_deref()
                    .unwrap_or($crate::model::DEFAULT_LOCALE);
                let mut tx = self.begin_write(Access::Anonymous).await?;
                let row: $crate::rows::UserRow = sqlx::query_as($crate::sql::USER_INSERT)
                    .bind(new.email.trim())
                    .bind(&new.password_hash)
                    .bind(&new.display_name)
                    .bind(time_zone)
                    .bind(locale)
                    .bind(new.is_verified)
                    .bind(new.is_superuser)
                    .bind($crate::ts::Ts::now())
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(row.into())
            }

            async fn user(
                &self,
                scope: &deyehard_core::TenantScope,
            ) -> $crate::StoreResult<$crate::User> {
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let row: $crate::rows::UserRow = sqlx::query_as($crate::sql::USER_BY_ID)
                    .bind($crate::common::uid(scope))
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(row.into())
            }

            async fn user_by_email_unscoped(
                &self,
                email: &str,
            ) -> $crate::StoreResult<Option<$crate::User>> {
                // Credential resolution: reads only the identity table, before any tenant is known.
                let mut tx = self.begin_read($crate::common::Access::Anonymous).await?;
                let row: Option<$crate::rows::UserRow> = sqlx::query_as($crate::sql::USER_BY_EMAIL)
                    .bind(email.trim())
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(row.map(Into::into))
            }

            async fn user_by_id_unscoped(
                &self,
                id: deyehard_core::UserId,
            ) -> $crate::StoreResult<Option<$crate::User>> {
                // Credential resolution: the user a verified session token names.
                let mut tx = self.begin_read($crate::common::Access::Anonymous).await?;
                let row: Option<$crate::rows::UserRow> = sqlx::query_as($crate::sql::USER_BY_ID)
                    .bind(id.get())
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(row.map(Into::into))
            }

            async fn update_profile(
                &self,
                scope: &deyehard_core::TenantScope,
                update: &$crate::ProfileUpdate,
            ) -> $crate::StoreResult<$crate::User> {
                $crate::common::check_time_zone(&update.time_zone)?;
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let row: $crate::rows::UserRow = sqlx::query_as($crate::sql::USER_UPDATE_PROFILE)
                    .bind($crate::common::uid(scope))
                    .bind(&update.display_name)
                    .bind(&update.time_zone)
                    .bind(&update.locale)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(row.into())
            }

            async fn set_password_hash(
                &self,
                scope: &deyehard_core::TenantScope,
                password_hash: &str,
            ) -> $crate::StoreResult<i64> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let version: i64 = sqlx::query_scalar($crate::sql::USER_SET_PASSWORD)
                    .bind($crate::common::uid(scope))
                    .bind(password_hash)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(version)
            }

            async fn bump_session_version(
                &self,
                scope: &deyehard_core::TenantScope,
            ) -> $crate::StoreResult<i64> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let version: i64 = sqlx::query_scalar($crate::sql::USER_BUMP_SESSION)
                    .bind($crate::common::uid(scope))
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(version)
            }

            async fn set_verified(
                &self,
                scope: &deyehard_core::TenantScope,
                verified: bool,
            ) -> $crate::StoreResult<()> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let done = sqlx::query($crate::sql::USER_SET_VERIFIED)
                    .bind($crate::common::uid(scope))
                    .bind(verified)
                    .execute(&mut *tx)
                    .await?;
                $crate::common::expect_one(done.rows_affected())?;
                tx.commit().await?;
                Ok(())
            }

            async fn set_active(
                &self,
                scope: &deyehard_core::TenantScope,
                active: bool,
            ) -> $crate::StoreResult<()> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let done = sqlx::query($crate::sql::USER_SET_ACTIVE)
                    .bind($crate::common::uid(scope))
                    .bind(active)
                    .execute(&mut *tx)
                    .await?;
                $crate::common::expect_one(done.rows_affected())?;
                tx.commit().await?;
                Ok(())
            }

            async fn set_email(
                &self,
                scope: &deyehard_core::TenantScope,
                email: &str,
            ) -> $crate::StoreResult<()> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let done = sqlx::query($crate::sql::USER_SET_EMAIL)
                    .bind($crate::common::uid(scope))
                    .bind(email.trim())
                    .execute(&mut *tx)
                    .await?;
                $crate::common::expect_one(done.rows_affected())?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_user(
                &self,
                scope: &deyehard_core::TenantScope,
            ) -> $crate::StoreResult<()> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let done = sqlx::query($crate::sql::USER_DELETE)
                    .bind($crate::common::uid(scope))
                    .execute(&mut *tx)
                    .await?;
                $crate::common::expect_one(done.rows_affected())?;
                tx.commit().await?;
                Ok(())
            }

            async fn upgrade_password_hash(
                &self,
                scope: &deyehard_core::TenantScope,
                old_hash: &str,
                new_hash: &str,
            ) -> $crate::StoreResult<bool> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let done = sqlx::query($crate::sql::USER_UPGRADE_HASH)
                    .bind($crate::common::uid(scope))
                    .bind(old_hash)
                    .bind(new_hash)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_superuser(
                &self,
                scope: &deyehard_core::TenantScope,
                superuser: bool,
            ) -> $crate::StoreResult<()> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let done = sqlx::query($crate::sql::USER_SET_SUPERUSER)
                    .bind($crate::common::uid(scope))
                    .bind(superuser)
                    .execute(&mut *tx)
                    .await?;
                $crate::common::expect_one(done.rows_affected())?;
                tx.commit().await?;
                Ok(())
            }

            async fn users_unscoped(
                &self,
                search: Option<&str>,
                limit: u32,
                offset: u32,
            ) -> $crate::StoreResult<Vec<$crate::UserOverview>> {
                // The operator's command line: every account, with inverter counts across
                // tenants.
                let mut tx = self.begin_read($crate::common::Access::CrossTenant).await?;
                let rows = Self::user_overviews(&mut tx, search, limit, offset).await?;
                tx.commit().await?;
                Ok(rows)
            }
        }

        impl $crate::ApiKeyStore for $store {
            async fn create_api_key(
                &self,
                scope: &deyehard_core::TenantScope,
                name: &str,
                prefix: &str,
                key_hash: &str,
            ) -> $crate::StoreResult<$crate::ApiKey> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let row: $crate::rows::ApiKeyRow = sqlx::query_as($crate::sql::API_KEY_INSERT)
                    .bind($crate::common::uid(scope))
                    .bind(name)
                    .bind(prefix)
                    .bind(key_hash)
                    .bind($crate::ts::Ts::now())
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(row.into())
            }

            async fn api_keys(
                &self,
                scope: &deyehard_core::TenantScope,
            ) -> $crate::StoreResult<Vec<$crate::ApiKey>> {
                let mut tx = self
                    .begin_read($crate::common::Access::Tenant(scope))
                    .await?;
                let rows: Vec<$crate::rows::ApiKeyRow> = sqlx::query_as($crate::sql::API_KEYS)
                    .bind($crate::common::uid(scope))
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn revoke_api_key(
                &self,
                scope: &deyehard_core::TenantScope,
                id: deyehard_core::ApiKeyId,
            ) -> $crate::StoreResult<()> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let done = sqlx::query($crate::sql::API_KEY_REVOKE)
                    .bind($crate::common::uid(scope))
                    .bind(id.get())
                    .bind($crate::ts::Ts::now())
                    .execute(&mut *tx)
                    .await?;
                $crate::common::expect_one(done.rows_affected())?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_api_key(
                &self,
                scope: &deyehard_core::TenantScope,
                id: deyehard_core::ApiKeyId,
            ) -> $crate::StoreResult<()> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(scope))
                    .await?;
                let done = sqlx::query($crate::sql::API_KEY_DELETE)
                    .bind($crate::common::uid(scope))
                    .bind(id.get())
                    .execute(&mut *tx)
                    .await?;
                $crate::common::expect_one(done.rows_affected())?;
                tx.commit().await?;
                Ok(())
            }

            async fn resolve_api_key_unscoped(
                &self,
                key_hash: &str,
            ) -> $crate::StoreResult<Option<(deyehard_core::TenantScope, deyehard_core::ApiKeyId)>>
            {
                // Cross-tenant by nature: the key hash is the credential that names the tenant.
                let mut tx = self
                    .begin_write($crate::common::Access::CrossTenant)
                    .await?;
                let row: Option<(i64, i64)> = sqlx::query_as($crate::sql::API_KEY_RESOLVE)
                    .bind(key_hash)
                    .bind($crate::ts::Ts::now())
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(row.map(|(key_id, user_id)| {
                    (
                        deyehard_core::TenantScope::from_credential_lookup(
                            deyehard_core::UserId::new(user_id),
                        ),
                        deyehard_core::ApiKeyId::new(key_id),
                    )
                }))
            }
        }

        impl $store {
            /// Opens a write transaction for an admin: re-checks in the database that the actor
            /// is an active superuser, then switches the transaction to cross-tenant visibility.
            async fn begin_admin(
                &self,
                actor: $crate::AdminActor,
            ) -> $crate::StoreResult<sqlx::Transaction<'static, Db>> {
                let mut tx = self
                    .begin_write($crate::common::Access::Tenant(actor.scope()))
                    .await?;
                let admin: Option<i64> = sqlx::query_scalar($crate::sql::USER_IS_ADMIN)
                    .bind(actor.user_id().get())
                    .fetch_optional(&mut *tx)
                    .await?;
                if admin.is_none() {
                    return Err($crate::StoreError::Forbidden);
                }
                Self::cross_tenant(&mut tx).await?;
                Ok(tx)
            }

            /// Users matching `search` (substring of e-mail or name, any case) with their
            /// inverter counts, in a cross-tenant transaction.
            async fn user_overviews(
                tx: &mut sqlx::Transaction<'static, Db>,
                search: Option<&str>,
                limit: u32,
                offset: u32,
            ) -> $crate::StoreResult<Vec<$crate::UserOverview>> {
                let pattern = search
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map($crate::common::like_pattern);
                let rows: Vec<$crate::rows::UserOverviewRow> =
                    sqlx::query_as($crate::sql::ADMIN_USERS)
                        .bind(pattern)
                        .bind($crate::common::limit(limit))
                        .bind($crate::common::limit(offset))
                        .fetch_all(&mut **tx)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| $crate::UserOverview {
                        user: r.user.into(),
                        inverter_count: r.inverter_count,
                    })
                    .collect())
            }
        }

        impl $crate::AdminStore for $store {
            async fn admin_users(
                &self,
                actor: $crate::AdminActor,
                search: Option<&str>,
                limit: u32,
                offset: u32,
            ) -> $crate::StoreResult<Vec<$crate::UserOverview>> {
                let mut tx = self.begin_admin(actor).await?;
                let rows = Self::user_overviews(&mut tx, search, limit, offset).await?;
                tx.commit().await?;
                Ok(rows)
            }

            async fn admin_set_user_flags(
                &self,
                actor: $crate::AdminActor,
                user: deyehard_core::UserId,
                flags: $crate::UserFlags,
            ) -> $crate::StoreResult<()> {
                let mut tx = self.begin_admin(actor).await?;
                let done = sqlx::query($crate::sql::ADMIN_SET_FLAGS)
                    .bind(user.get())
                    .bind(flags.is_active)
                    .bind(flags.is_verified)
                    .bind(flags.is_superuser)
                    .execute(&mut *tx)
                    .await?;
                $crate::common::expect_one(done.rows_affected())?;
                tx.commit().await?;
                Ok(())
            }

            async fn admin_delete_user(
                &self,
                actor: $crate::AdminActor,
                user: deyehard_core::UserId,
            ) -> $crate::StoreResult<()> {
                let mut tx = self.begin_admin(actor).await?;
                let done = sqlx::query($crate::sql::USER_DELETE)
                    .bind(user.get())
                    .execute(&mut *tx)
                    .await?;
                $crate::common::expect_one(done.rows_affected())?;
                tx.commit().await?;
                Ok(())
            }

            async fn admin_inverters(
                &self,
                actor: $crate::AdminActor,
            ) -> $crate::StoreResult<Vec<$crate::Inverter>> {
                let mut tx = self.begin_admin(actor).await?;
                let rows: Vec<$crate::rows::InverterRow> =
                    sqlx::query_as($crate::sql::ADMIN_INVERTERS)
                        .fetch_all(&mut *tx)
                        .await?;
                tx.commit().await?;
                $crate::rows::inverters(rows)
            }

            async fn admin_unclaimed_loggers(
                &self,
                actor: $crate::AdminActor,
            ) -> $crate::StoreResult<Vec<$crate::UnclaimedLogger>> {
                let mut tx = self.begin_admin(actor).await?;
                let rows: Vec<$crate::rows::UnclaimedLoggerRow> =
                    sqlx::query_as($crate::sql::ADMIN_UNCLAIMED)
                        .fetch_all(&mut *tx)
                        .await?;
                tx.commit().await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }
        }
    };
}

pub(crate) use impl_accounts;
