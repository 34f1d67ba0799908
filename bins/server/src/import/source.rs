//! Reading a database of the original service (`../shared/reference/original-schema.md`):
//! users page by page, each user's inverters, the orphans, and each inverter's measurements
//! through two server-side cursors (AC and DC, both in time order) merged into readings.
//!
//! Everything runs in one `REPEATABLE READ READ ONLY` transaction: the import sees one
//! consistent snapshot even while the original service keeps writing, and changes nothing
//! there. Memory stays bounded: users come in pages, measurements in `FETCH` pages.

use std::collections::{HashMap, VecDeque};
use std::str::FromStr;

use anyhow::{Context, bail};
use chrono::{DateTime, TimeDelta, Utc};
use deyehard_core::{DcReading, Reading, Source};
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{AssertSqlSafe, ConnectOptions, FromRow, PgConnection};

/// The tables a database of the original schema has.
const TABLES: [&str; 4] = [
    "user",
    "inverter",
    "inverter_measurements",
    "dc_channel_measurements",
];

/// A DC row this close to an AC row belongs to its reading (the original wrote both from one
/// push, normally with the very same time).
const DC_MATCH_TOLERANCE: TimeDelta = TimeDelta::seconds(2);

/// A row of `user`.
#[derive(Clone, FromRow)]
pub struct SourceUser {
    /// `user.id`.
    pub id: i64,
    /// E-mail address.
    pub email: String,
    /// argon2id or bcrypt hash, as stored.
    pub hashed_password: String,
    /// Account flags.
    pub is_active: bool,
    /// Admin.
    pub is_superuser: bool,
    /// E-mail verified.
    pub is_verified: bool,
    /// First name, may be absent.
    pub first_name: Option<String>,
    /// Last name, may be absent.
    pub last_name: Option<String>,
    /// The plaintext API key of the user's devices.
    pub api_key: Option<String>,
}

impl std::fmt::Debug for SourceUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceUser")
            .field("id", &self.id)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// A row of `inverter`.
#[derive(Debug, Clone, FromRow)]
pub struct SourceInverter {
    /// `inverter.id`.
    pub id: i64,
    /// Owner (`None`: an orphan).
    pub user_id: Option<i64>,
    /// Display name.
    pub name: Option<String>,
    /// Hoymiles serial or Solarman logger serial.
    pub serial_logger: Option<String>,
    /// Firmware, often `-`.
    pub sw_version: Option<String>,
    /// Rated power, W.
    pub rated_power: Option<i64>,
    /// Number of MPPT inputs.
    pub number_of_mppts: Option<i64>,
}

/// What the measurement stream saw, beyond the readings it returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// AC rows read (duplicates included).
    pub ac_rows: u64,
    /// AC rows dropped as duplicates of an earlier row with the same (inverter, time).
    pub duplicates: u64,
    /// DC rows dropped as duplicates of a channel already in the reading.
    pub dc_duplicates: u64,
    /// DC rows with a channel number outside 1…255.
    pub dc_bad_channel: u64,
    /// Readings made of DC rows with no AC row near them.
    pub dc_without_ac: u64,
}

impl StreamStats {
    /// Adds another stream's figures.
    pub fn add(&mut self, other: &Self) {
        self.ac_rows += other.ac_rows;
        self.duplicates += other.duplicates;
        self.dc_duplicates += other.dc_duplicates;
        self.dc_bad_channel += other.dc_bad_channel;
        self.dc_without_ac += other.dc_without_ac;
    }
}

/// The source database, inside its read-only snapshot.
pub struct SourceDb {
    conn: PgConnection,
    fetch_size: u32,
}

impl SourceDb {
    /// Connects, checks the four tables of the original schema exist and opens the snapshot.
    /// `fetch_size` rows are fetched per cursor round trip.
    pub async fn open(url: &str, fetch_size: u32) -> anyhow::Result<Self> {
        const EXPECTED: &str =
            "--from is not a PostgreSQL URL (postgres://user:password@host/database)";
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            bail!(EXPECTED);
        }
        let options = PgConnectOptions::from_str(url)
            .context(EXPECTED)?
            .application_name("deyehard-import-original");
        let place = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        let mut conn = options
            .connect()
            .await
            .with_context(|| format!("cannot connect to the original database at {place}"))?;
        let missing: Vec<String> = sqlx::query_scalar(
            "SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass(quote_ident(t)) IS NULL",
        )
        .bind(TABLES.map(str::to_owned).to_vec())
        .fetch_all(&mut conn)
        .await?;
        if !missing.is_empty() {
            bail!(
                "{place} is not a database of the original service: it lacks the table(s) {}",
                missing.join(", ")
            );
        }
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut conn)
            .await?;
        Ok(Self {
            conn,
            fetch_size: fetch_size.max(1),
        })
    }

    /// Up to `limit` users with an id above `after`, by id.
    pub async fn users_after(&mut self, after: i64, limit: u32) -> anyhow::Result<Vec<SourceUser>> {
        let users = sqlx::query_as(
            "SELECT id::int8 AS id, email, hashed_password, \
                    COALESCE(is_active, true) AS is_active, \
                    COALESCE(is_superuser, false) AS is_superuser, \
                    COALESCE(is_verified, false) AS is_verified, \
                    first_name::text AS first_name, last_name::text AS last_name, \
                    api_key::text AS api_key \
             FROM \"user\" WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut self.conn)
        .await
        .context("cannot read the original users")?;
        Ok(users)
    }

    /// The inverters of a user, by id.
    pub async fn inverters_of(&mut self, user: i64) -> anyhow::Result<Vec<SourceInverter>> {
        self.inverters("WHERE user_id = $1", Some(user)).await
    }

    /// Inverters without an owner: `user_id` NULL, or naming a user that does not exist.
    pub async fn orphans(&mut self) -> anyhow::Result<Vec<SourceInverter>> {
        self.inverters(
            "WHERE user_id IS NULL OR NOT EXISTS (SELECT 1 FROM \"user\" u WHERE u.id = i.user_id)",
            None,
        )
        .await
    }

    async fn inverters(
        &mut self,
        filter: &str,
        user: Option<i64>,
    ) -> anyhow::Result<Vec<SourceInverter>> {
        let sql = format!(
            "SELECT i.id::int8 AS id, i.user_id::int8 AS user_id, i.name::text AS name, \
                    i.serial_logger::text AS serial_logger, i.sw_version::text AS sw_version, \
                    i.rated_power::int8 AS rated_power, \
                    i.number_of_mppts::int8 AS number_of_mppts \
             FROM inverter i {filter} ORDER BY i.id"
        );
        let mut query = sqlx::query_as(AssertSqlSafe(sql));
        if let Some(user) = user {
            query = query.bind(user);
        }
        query
            .fetch_all(&mut self.conn)
            .await
            .context("cannot read the original inverters")
    }

    /// AC rows per inverter id (one scan, for the progress bar).
    pub async fn measurement_counts(&mut self) -> anyhow::Result<HashMap<i64, u64>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT inverter_id::int8, count(*) FROM inverter_measurements GROUP BY inverter_id",
        )
        .fetch_all(&mut self.conn)
        .await
        .context("cannot count the original measurements")?;
        Ok(rows
            .into_iter()
            .map(|(id, n)| (id, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// The readings of one inverter after `after` (all when `None`), in time order.
    pub async fn measurements(
        &mut self,
        inverter: i64,
        after: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Measurements<'_>> {
        // Equal times: the most complete duplicate first, so that is the one kept.
        let declares = [
            "DECLARE import_ac NO SCROLL CURSOR FOR \
             SELECT time, total_output_power::float8 AS power, \
                    yield_day_wh::float8 AS yield_day_wh \
             FROM inverter_measurements \
             WHERE inverter_id = $1 AND ($2::timestamptz IS NULL OR time > $2) \
             ORDER BY time, yield_total_kwh DESC NULLS LAST, yield_day_wh DESC NULLS LAST, \
                      total_output_power DESC NULLS LAST",
            "DECLARE import_dc NO SCROLL CURSOR FOR \
             SELECT time, channel::int8 AS channel, name::text AS name, power::float8 AS power, \
                    voltage::float8 AS voltage, current::float8 AS current, \
                    yield_day_wh::float8 AS yield_day_wh, \
                    yield_total_kwh::float8 AS yield_total_kwh, \
                    irradiation::float8 AS irradiation \
             FROM dc_channel_measurements \
             WHERE inverter_id = $1 AND ($2::timestamptz IS NULL OR time > $2) \
             ORDER BY time, channel",
        ];
        for declare in declares {
            sqlx::query(declare)
                .bind(inverter)
                .bind(after)
                .execute(&mut self.conn)
                .await
                .context("cannot read the original measurements")?;
        }
        Ok(Measurements {
            conn: &mut self.conn,
            fetch_size: self.fetch_size,
            ac: Page::default(),
            dc: Page::default(),
            stats: StreamStats::default(),
        })
    }
}

/// A row of `inverter_measurements`.
#[derive(Debug, Clone, FromRow)]
struct AcRow {
    time: DateTime<Utc>,
    power: Option<f64>,
    yield_day_wh: Option<f64>,
}

/// A row of `dc_channel_measurements`.
#[derive(Debug, Clone, FromRow)]
struct DcRow {
    time: DateTime<Utc>,
    channel: i64,
    name: Option<String>,
    power: Option<f64>,
    voltage: Option<f64>,
    current: Option<f64>,
    yield_day_wh: Option<f64>,
    yield_total_kwh: Option<f64>,
    irradiation: Option<f64>,
}

/// Rows fetched from one cursor and not consumed yet.
struct Page<T> {
    rows: VecDeque<T>,
    exhausted: bool,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self {
            rows: VecDeque::new(),
            exhausted: false,
        }
    }
}

/// The readings of one inverter, in time order (see [`SourceDb::measurements`]). Call
/// [`Measurements::close`] when done.
pub struct Measurements<'a> {
    conn: &'a mut PgConnection,
    fetch_size: u32,
    ac: Page<AcRow>,
    dc: Page<DcRow>,
    stats: StreamStats,
}

impl Measurements<'_> {
    /// What was seen so far.
    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// The next reading: an AC row (its duplicates dropped) with the DC rows within
    /// [`DC_MATCH_TOLERANCE`] of it, or DC rows of one time with no AC row near them.
    ///
    /// `after` is the resume point the cursors were opened with: DC rows just after it belong
    /// to the reading at `after`, which is stored already, and are passed over. DC rows of one
    /// time that all have bad channel numbers make no reading.
    pub async fn next(&mut self, after: Option<DateTime<Utc>>) -> anyhow::Result<Option<Reading>> {
        loop {
            self.fill_ac().await?;
            self.fill_dc().await?;
            let ac_time = self.ac.rows.front().map(|r| r.time);
            let dc_time = self.dc.rows.front().map(|r| r.time);
            // The AC row goes first unless a DC row comes clearly before it.
            let first_ac =
                ac_time.filter(|&ac| dc_time.is_none_or(|dc| dc >= ac - DC_MATCH_TOLERANCE));
            let (mut reading, last_dc) = if let Some(ac) = first_ac {
                (self.take_ac(ac).await?, ac + DC_MATCH_TOLERANCE)
            } else if let Some(dc) = dc_time {
                (Reading::new(dc, Source::Import), dc)
            } else {
                return Ok(None);
            };
            self.attach_dc(&mut reading, last_dc).await?;
            if first_ac.is_none() {
                let resumed_past =
                    after.is_some_and(|after| reading.time <= after + DC_MATCH_TOLERANCE);
                if resumed_past || reading.dc.is_empty() {
                    continue;
                }
                self.stats.dc_without_ac += 1;
                reading.producing = reading
                    .dc
                    .iter()
                    .any(|c| c.power_w.is_some_and(|p| p > 0.0));
            }
            return Ok(Some(reading));
        }
    }

    /// Closes both cursors.
    pub async fn close(self) -> anyhow::Result<()> {
        sqlx::query("CLOSE import_ac")
            .execute(&mut *self.conn)
            .await?;
        sqlx::query("CLOSE import_dc")
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    /// Takes the AC row at `time` and drops the duplicates after it.
    async fn take_ac(&mut self, time: DateTime<Utc>) -> anyhow::Result<Reading> {
        let mut reading = Reading::new(time, Source::Import);
        if let Some(row) = self.ac.rows.pop_front() {
            self.stats.ac_rows += 1;
            reading.power_ac_w = row.power;
            reading.producing = row.power.is_some_and(|p| p > 0.0);
            reading.yield_day_wh = row.yield_day_wh;
            // Not the original's `yield_total_kwh`: it is the sum of the channels' truncated kWh (kept, in
            // Wh, in the DC rows), and our energy maths prefers the lifetime counter, so a
            // counter moving in 1 kWh steps would make each imported step 0 or 1000 Wh.
            reading.yield_total_wh = None;
        }
        loop {
            self.fill_ac().await?;
            match self.ac.rows.front() {
                Some(next) if next.time == time => {
                    self.ac.rows.pop_front();
                    self.stats.ac_rows += 1;
                    self.stats.duplicates += 1;
                }
                _ => return Ok(reading),
            }
        }
    }

    /// Adds the DC rows up to `until` to the reading.
    async fn attach_dc(
        &mut self,
        reading: &mut Reading,
        until: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        loop {
            self.fill_dc().await?;
            let Some(row) = self.dc.rows.front().filter(|r| r.time <= until) else {
                return Ok(());
            };
            let Some(channel) = u8::try_from(row.channel).ok().filter(|c| *c >= 1) else {
                self.stats.dc_bad_channel += 1;
                self.dc.rows.pop_front();
                continue;
            };
            if reading.dc.iter().any(|c| c.channel == channel) {
                self.stats.dc_duplicates += 1;
                self.dc.rows.pop_front();
                continue;
            }
            if let Some(row) = self.dc.rows.pop_front() {
                reading.dc.push(dc_reading(channel, row));
            }
        }
    }

    async fn fill_ac(&mut self) -> anyhow::Result<()> {
        if self.ac.rows.is_empty() && !self.ac.exhausted {
            let rows: Vec<AcRow> = fetch(self.conn, "import_ac", self.fetch_size).await?;
            self.ac.exhausted = rows.len() < self.fetch_size as usize;
            self.ac.rows.extend(rows.into_iter().map(|mut r| {
                r.time = to_millis(r.time);
                r
            }));
        }
        Ok(())
    }

    async fn fill_dc(&mut self) -> anyhow::Result<()> {
        if self.dc.rows.is_empty() && !self.dc.exhausted {
            let rows: Vec<DcRow> = fetch(self.conn, "import_dc", self.fetch_size).await?;
            self.dc.exhausted = rows.len() < self.fetch_size as usize;
            self.dc.rows.extend(rows.into_iter().map(|mut r| {
                r.time = to_millis(r.time);
                r
            }));
        }
        Ok(())
    }
}

async fn fetch<T>(conn: &mut PgConnection, cursor: &str, n: u32) -> anyhow::Result<Vec<T>>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    sqlx::query_as(AssertSqlSafe(format!("FETCH FORWARD {n} FROM {cursor}")))
        .persistent(false)
        .fetch_all(conn)
        .await
        .context("cannot read the original measurements")
}

/// The store keeps milliseconds; rows of one millisecond are one reading.
fn to_millis(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or(time)
}

/// The original's truncated kWh counters, in Wh.
fn kwh_to_wh(kwh: f64) -> f64 {
    kwh * 1000.0
}

fn dc_reading(channel: u8, row: DcRow) -> DcReading {
    DcReading {
        channel,
        name: row.name.filter(|n| !n.trim().is_empty()),
        power_w: row.power,
        voltage_v: row.voltage,
        current_a: row.current,
        yield_day_wh: row.yield_day_wh,
        yield_total_wh: row.yield_total_kwh.map(kwh_to_wh),
        irradiation_pct: row.irradiation,
    }
}
