//! [`Ts`]: a UTC instant as each backend stores it — `timestamptz` on PostgreSQL, INTEGER
//! milliseconds since the Unix epoch on SQLite — so that SQL text and row types can be shared.
//!
//! Every instant the store writes is truncated to whole milliseconds first, so both backends
//! hold exactly the same values and keyset paging (`next from = last + 1 ms`) is exact.

use chrono::{DateTime, TimeDelta, Utc};

/// A UTC instant with millisecond precision, bindable and decodable on both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Ts(DateTime<Utc>);

impl Ts {
    /// Wraps `time`, truncated to whole milliseconds.
    pub(crate) fn new(time: DateTime<Utc>) -> Self {
        Self(truncate_ms(time))
    }

    /// The current time.
    pub(crate) fn now() -> Self {
        Self::new(Utc::now())
    }

    /// The instant.
    pub(crate) fn get(self) -> DateTime<Utc> {
        self.0
    }

    /// Milliseconds since the Unix epoch.
    pub(crate) fn millis(self) -> i64 {
        self.0.timestamp_millis()
    }

    /// From milliseconds since the Unix epoch, if representable.
    pub(crate) fn from_millis(ms: i64) -> Option<Self> {
        DateTime::from_timestamp_millis(ms).map(Self)
    }
}

/// Drops sub-millisecond precision.
pub(crate) fn truncate_ms(time: DateTime<Utc>) -> DateTime<Utc> {
    let sub_ms = TimeDelta::nanoseconds(i64::from(time.timestamp_subsec_nanos() % 1_000_000));
    time - sub_ms
}

#[cfg(feature = "sqlite")]
mod sqlite_impl {
    use sqlx::encode::IsNull;
    use sqlx::error::BoxDynError;
    use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
    use sqlx::{Decode, Encode, Sqlite, Type};

    use super::Ts;

    impl Type<Sqlite> for Ts {
        fn type_info() -> SqliteTypeInfo {
            <i64 as Type<Sqlite>>::type_info()
        }
        fn compatible(ty: &SqliteTypeInfo) -> bool {
            <i64 as Type<Sqlite>>::compatible(ty)
        }
    }

    impl Encode<'_, Sqlite> for Ts {
        fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
            <i64 as Encode<'_, Sqlite>>::encode(self.millis(), buf)
        }
    }

    impl<'r> Decode<'r, Sqlite> for Ts {
        fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
            let ms = <i64 as Decode<'r, Sqlite>>::decode(value)?;
            Self::from_millis(ms).ok_or_else(|| format!("timestamp {ms} ms is out of range").into())
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres_impl {
    use chrono::{DateTime, Utc};
    use sqlx::encode::IsNull;
    use sqlx::error::BoxDynError;
    use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
    use sqlx::{Decode, Encode, Postgres, Type};

    use super::Ts;

    impl Type<Postgres> for Ts {
        fn type_info() -> PgTypeInfo {
            <DateTime<Utc> as Type<Postgres>>::type_info()
        }
        fn compatible(ty: &PgTypeInfo) -> bool {
            <DateTime<Utc> as Type<Postgres>>::compatible(ty)
        }
    }

    impl Encode<'_, Postgres> for Ts {
        fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
            <DateTime<Utc> as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
        }
    }

    impl<'r> Decode<'r, Postgres> for Ts {
        fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
            <DateTime<Utc> as Decode<'r, Postgres>>::decode(value).map(Self::new)
        }
    }

    impl sqlx::postgres::PgHasArrayType for Ts {
        fn array_type_info() -> PgTypeInfo {
            <DateTime<Utc> as sqlx::postgres::PgHasArrayType>::array_type_info()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_to_milliseconds() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap_or_default();
        let ts = Ts::new(t);
        assert_eq!(ts.millis(), 1_700_000_000_123);
        assert_eq!(Ts::from_millis(ts.millis()), Some(ts));
        assert_eq!(ts.get().timestamp_subsec_nanos(), 123_000_000);
    }
}
