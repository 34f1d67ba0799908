//! Code shared by both backends.
//!
//! Most trait methods are the same text on both backends: the same SQL (see [`crate::sql`]),
//! the same binds (times bind as [`crate::ts::Ts`]) and the same row types. Writing them as
//! generic functions over `sqlx::Database` would need a where-clause for every bound value and
//! row type on every function, so they are written once as macros (`impl_accounts!`, …) that
//! each backend module expands for its store type. The macros rely on inherent items every
//! backend provides under the same names:
//!
//! - `async fn begin_read(&self, access: Access<'_>) -> StoreResult<Transaction<'static, Db>>`
//! - `async fn begin_write(&self, access: Access<'_>) -> StoreResult<Transaction<'static, Db>>`
//! - `async fn cross_tenant(tx: &mut Transaction<'_, Db>) -> StoreResult<()>`: switches an open
//!   transaction to cross-tenant visibility (PostgreSQL: `app.cross_tenant = 'on'`; SQLite: a
//!   no-op, it has no RLS and the shared SQL carries the scoping).
//! - `fn retention_covers_series(&self) -> bool`: TimescaleDB drops old chunks itself.
//! - a `dialect` module with the statements that differ.
//!
//! Backend-specific code (connection setup, bulk writes, series aggregation SQL) lives in
//! `crate::sqlite` and `crate::pg`.

pub(crate) mod accounts;
pub(crate) mod admin;
pub(crate) mod dashboard;
pub(crate) mod dashboard_reads;
pub(crate) mod dashboard_sql;
pub(crate) mod devices;
pub(crate) mod energy;
pub(crate) mod export;
pub(crate) mod frames;
pub(crate) mod maintenance;
pub(crate) mod reads;
pub(crate) mod upkeep;
pub(crate) mod write;

use deyehard_core::TenantScope;

use crate::StoreError;

/// Who a transaction acts for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Access<'a> {
    /// One tenant: PostgreSQL sets `app.current_user_id` and RLS shows only its rows.
    Tenant(&'a TenantScope),
    /// Nobody yet (sign-up, login): only the identity table `users` is meaningful.
    Anonymous,
    /// An explicitly named cross-tenant method (credential resolution, retention, device-level
    /// writes). See each call site.
    CrossTenant,
}

impl Access<'_> {
    /// The tenant id as PostgreSQL's `app.current_user_id` setting ('' for none): digits only.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn tenant_setting(&self) -> String {
        match self {
            Self::Tenant(scope) => scope.user_id().get().to_string(),
            Self::Anonymous | Self::CrossTenant => String::new(),
        }
    }

    /// PostgreSQL's `app.cross_tenant` setting.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn cross_tenant_setting(&self) -> &'static str {
        match self {
            Self::CrossTenant => "on",
            Self::Tenant(_) | Self::Anonymous => "off",
        }
    }
}

/// The scope's user id as bound in SQL.
pub(crate) fn uid(scope: &TenantScope) -> i64 {
    scope.user_id().get()
}

/// Checks an IANA time zone name.
pub(crate) fn check_time_zone(name: &str) -> Result<(), StoreError> {
    name.parse::<chrono_tz::Tz>()
        .map(|_| ())
        .map_err(|_| StoreError::Invalid(format!("unknown time zone {name:?}")))
}

/// A `LIKE … ESCAPE '\'` pattern matching `search` as a lower-case substring.
pub(crate) fn like_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// `LIMIT` values bind as i64.
pub(crate) fn limit(n: u32) -> i64 {
    i64::from(n)
}

/// Fails with [`StoreError::NotFound`] when an UPDATE/DELETE touched no row.
pub(crate) fn expect_one(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("A_b%c\\"), "%a\\_b\\%c\\\\%");
    }

    #[test]
    fn time_zones_are_checked() {
        assert!(check_time_zone("Europe/Berlin").is_ok());
        assert!(matches!(
            check_time_zone("Mars/Olympus"),
            Err(StoreError::Invalid(_))
        ));
    }
}
