//! The store's error: the outcomes callers branch on, and the classification of driver errors.

use std::error::Error as StdError;

use sqlx::error::{DatabaseError, ErrorKind};

/// A boxed cause kept for logs (never shown to end users).
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Names of the unique constraints a [`StoreError::Conflict`] can carry, identical on both
/// backends.
pub mod constraint {
    /// Another user already has this e-mail address (compared case-insensitively).
    pub const USER_EMAIL: &str = "users_email_key";
    /// An API key with this hash exists (practically impossible for generated keys).
    pub const API_KEY_HASH: &str = "api_keys_key_hash_key";
    /// The tenant already has an inverter with this device serial.
    pub const INVERTER_SERIAL: &str = "inverters_user_serial_key";
    /// Some tenant (possibly another one) already claimed this logger serial.
    pub const INVERTER_LOGGER_SERIAL: &str = "inverters_logger_serial_key";
}

/// What can go wrong in a store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist *for this tenant* (another tenant's row is indistinguishable from a
    /// missing one).
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; the payload is the constraint's name (see
    /// [`constraint`]).
    #[error("conflicts with an existing row ({0})")]
    Conflict(String),
    /// The acting user may not do this (admin methods re-check `is_superuser` in the database).
    #[error("not allowed")]
    Forbidden,
    /// The input cannot be stored (e.g. an unknown time zone, an empty range).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The database cannot be reached or is overloaded (connection refused, pool timeout,
    /// database locked, shutting down). Retrying later may succeed: the server answers 503 and
    /// the collector spools.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// Anything else: a bug or a corrupt row. Logged, shown to users as an internal error.
    #[error("database error: {0}")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// A backend error from a message (for rows that cannot be read back into domain types).
    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Self::Backend(what.into().into())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) => classify_database_error(db),
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(Box::new(err)),
            other => Self::Backend(Box::new(other)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        match err {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            other => Self::Backend(Box::new(other)),
        }
    }
}

fn classify_database_error(db: Box<dyn DatabaseError>) -> StoreError {
    match db.kind() {
        ErrorKind::UniqueViolation => return StoreError::Conflict(constraint_name(db.as_ref())),
        // A referenced row (inverter, user) does not exist for this tenant.
        ErrorKind::ForeignKeyViolation => return StoreError::NotFound,
        _ => {}
    }
    if is_unavailable(db.as_ref()) {
        StoreError::Unavailable(Box::new(sqlx::Error::Database(db)))
    } else {
        StoreError::Backend(Box::new(sqlx::Error::Database(db)))
    }
}

/// Whether a database error means "try again later".
fn is_unavailable(db: &dyn DatabaseError) -> bool {
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    #[cfg(feature = "sqlite")]
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        return code.parse().is_ok_and(sqlite_code_unavailable);
    }
    sqlstate_unavailable(&code)
}

#[cfg(feature = "sqlite")]
/// SQLite: the primary result code (low byte of the extended one) is BUSY, LOCKED, IOERR, FULL
/// or CANTOPEN.
fn sqlite_code_unavailable(extended: i64) -> bool {
    matches!(extended & 0xff, 5 | 6 | 10 | 13 | 14)
}

/// PostgreSQL: 08 connection exception, 53 insufficient resources, 57P01-57P03 shutdown /
/// cannot connect now, 40001 / 40P01 serialization failure / deadlock (retryable).
fn sqlstate_unavailable(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
}

/// The unique constraint's name. PostgreSQL reports it; SQLite reports either
/// `index '<name>'` (expression indexes) or the column list, which is mapped back to the index
/// name used by the PostgreSQL schema.
fn constraint_name(db: &dyn DatabaseError) -> String {
    if let Some(name) = db.constraint() {
        return name.to_owned();
    }
    let message = db.message();
    let detail = message
        .strip_prefix("UNIQUE constraint failed: ")
        .unwrap_or(message);
    if let Some(index) = detail
        .strip_prefix("index '")
        .and_then(|rest| rest.strip_suffix('\''))
    {
        return index.to_owned();
    }
    match detail {
        "api_keys.key_hash" => constraint::API_KEY_HASH.to_owned(),
        "inverters.user_id, inverters.serial" => constraint::INVERTER_SERIAL.to_owned(),
        "inverters.logger_serial" => constraint::INVERTER_LOGGER_SERIAL.to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "sqlite")]
    fn sqlite_busy_and_io_errors_are_unavailable() {
        assert!(sqlite_code_unavailable(5)); // SQLITE_BUSY
        assert!(sqlite_code_unavailable(517)); // SQLITE_BUSY_SNAPSHOT
        assert!(!sqlite_code_unavailable(19)); // SQLITE_CONSTRAINT
    }

    #[test]
    fn connection_and_retryable_sqlstates_are_unavailable() {
        assert!(sqlstate_unavailable("08006"));
        assert!(sqlstate_unavailable("57P01"));
        assert!(sqlstate_unavailable("40P01"));
        assert!(!sqlstate_unavailable("23505"));
        assert!(!sqlstate_unavailable(""));
    }
}
