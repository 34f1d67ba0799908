//! PostgreSQL statements that differ from SQLite's (array binds, row locks, `LEAST`/`GREATEST`,
//! interval arithmetic), and the TimescaleDB helpers.

use sqlx::postgres::PgPool;

use crate::StoreResult;

/// Bucket index of a `timestamptz` column relative to `$3`, with `$5` the width in ms (times
/// are whole milliseconds, so the cast is exact).
macro_rules! bucket_index {
    ($column:literal) => {
        concat!(
            "((extract(epoch FROM (",
            $column,
            " - $3)) * 1000)::bigint / $5)"
        )
    };
}

/// The tenant condition on the `inverters` rows of a write, `user_id IS NOT DISTINCT FROM $1`:
/// the same as `user_id = $1` (the column is `NOT NULL`), but no index can answer it, so the
/// planner reaches the rows through the batch's ids (a primary-key probe each) and checks the
/// tenant on the row. With `=`, a generic plan made while the table's statistics are missing or
/// say the tenant has a handful of inverters reads all of the tenant's rows through
/// `inverters_user_idx` and joins them to the batch's ids, once per id: measured on a fresh
/// database with 128 inverters, 6.7 ms of a batch's 8.8 ms last statement, and the plan stays
/// cached in the connection after `ANALYZE` corrects the statistics.
macro_rules! same_tenant {
    ($alias:literal) => {
        concat!($alias, ".user_id IS NOT DISTINCT FROM $1")
    };
}

/// Power buckets from raw rows: `$3` base, `$4` end, `$5` bucket width in ms.
pub(crate) const SERIES_RAW: &str = concat!(
    "SELECT ",
    bucket_index!("time"),
    " AS idx, count(*) AS n, sum(power_ac_w) AS total, min(power_ac_w) AS lo, \
     max(power_ac_w) AS hi FROM measurements WHERE user_id = $1 AND inverter_id = $2 \
     AND time >= $3 AND time < $4 AND reachable AND power_ac_w IS NOT NULL \
     GROUP BY 1 ORDER BY 1"
);

/// Power buckets from the 5-minute rollup.
pub(crate) const SERIES_5M: &str = concat!(
    "SELECT ",
    bucket_index!("bucket"),
    " AS idx, sum(samples)::bigint AS n, sum(power_sum) AS total, min(power_min) AS lo, \
     max(power_max) AS hi FROM rollup_5m WHERE user_id = $1 AND inverter_id = $2 \
     AND bucket >= $3 AND bucket < $4 AND samples > 0 GROUP BY 1 ORDER BY 1"
);

/// Power buckets from the hourly rollup.
pub(crate) const SERIES_1H: &str = concat!(
    "SELECT ",
    bucket_index!("bucket"),
    " AS idx, sum(samples)::bigint AS n, sum(power_sum) AS total, min(power_min) AS lo, \
     max(power_max) AS hi FROM rollup_1h WHERE user_id = $1 AND inverter_id = $2 \
     AND bucket >= $3 AND bucket < $4 AND samples > 0 GROUP BY 1 ORDER BY 1"
);

/// DC power buckets per channel from raw rows of reachable readings.
pub(crate) const SERIES_DC: &str = concat!(
    "SELECT d.channel AS channel, ",
    bucket_index!("d.time"),
    " AS idx, count(*) AS n, sum(d.power_w) AS total, min(d.power_w) AS lo, \
     max(d.power_w) AS hi FROM dc_measurements d JOIN measurements m \
     ON m.inverter_id = d.inverter_id AND m.time = d.time AND m.reachable \
     WHERE d.user_id = $1 AND d.inverter_id = $2 AND d.time >= $3 AND d.time < $4 \
     AND d.power_w IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"
);

/// Locks the write targets of a batch: the `inverters` rows of the tenant `user` among `ids`
/// (`same_tenant!`: reached by id only), in id order. Concurrent writers of one inverter
/// serialize here, before touching any other row (no deadlocks); its `energy_state` row needs no
/// lock of its own, as every transaction that changes it holds this one (writers), or a stronger
/// one on the inverter row (a deletion, a move to another owner). The lock is the one the
/// batch's `last_seen_at` update takes anyway; until the commit it makes a deletion of the
/// inverter, or its move to another owner, wait, so neither can miss the batch's rows
/// (migration 0004: `measurements` and `dc_measurements` have no per-row foreign key).
///
/// A statement of its own, taken before the batch's reads, whose snapshots therefore see every
/// write committed by earlier writers of these inverters. Its text holds the values (integers
/// only, so formatting is safe) because [`ReadingWriter::write_readings`] sends it in the
/// round trip of `BEGIN` (simple query protocol, no parameters).
///
/// [`ReadingWriter::write_readings`]: crate::ReadingWriter::write_readings
pub(crate) fn lock_targets(user: i64, ids: &[i64]) -> String {
    let ids = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    format!(
        "SELECT count(*) FROM (SELECT FROM inverters i \
         WHERE i.id = ANY('{{{ids}}}'::bigint[]) AND i.user_id IS NOT DISTINCT FROM {user} \
         ORDER BY i.id FOR NO KEY UPDATE) AS locked"
    )
}

/// The reads and the AC rows of a batch whose targets [`lock_targets`] locked, in one
/// statement: its rows are the targets (`kind` 0: the scope's inverters among `$2`, with the
/// owner's time zone, the rated power and the energy state), the keys of the AC rows inserted
/// (`kind` 1: `inverter_id`, `time`), the stored `daily_energy` rows of the day spans (`kind` 2;
/// `$18` inverters, `$19`–`$20` first and last days) and the stored bucket energies of the bucket
/// spans (`kind` 3: `inverter_id`, `energy_wh`, and the bucket in `time`; `$21` inverters,
/// `$22`–`$23` first and last buckets).
///
/// The AC rows (`$3`–`$17`, keys unique) are inserted for the targets only (their ids gathered
/// once into an array: as a join, the `UNNEST` of the rows was read again for every target). A
/// key already stored is skipped by `NOT EXISTS` rather than `ON CONFLICT`, whose speculative
/// insertion costs more per row: the writers of an inverter hold its lock, so no other
/// transaction can insert the same key meanwhile, and this statement's snapshot, taken after
/// the lock, sees every row committed before.
pub(crate) const WRITE_START: &str = concat!(
    "WITH t AS (SELECT s.inverter_id, u.time_zone, i.rated_power_w, s.last_sample_time, \
     s.last_time, s.last_power_w, s.last_yield_day_wh, s.last_yield_total_wh, \
     s.last_pending_total_wh FROM energy_state s JOIN inverters i ON i.id = s.inverter_id \
     JOIN users u ON u.id = s.user_id WHERE s.user_id = $1 AND s.inverter_id = ANY($2) AND ",
    same_tenant!("i"),
    "), ins AS (INSERT INTO measurements (inverter_id, time, user_id, power_ac_w, voltage_ac_v, \
     current_ac_a, frequency_hz, power_factor, power_dc_w, temperature_c, yield_day_wh, \
     yield_total_wh, reachable, producing, source, received_at) \
     SELECT u.inverter_id, u.time, $1, u.power_ac_w, u.voltage_ac_v, u.current_ac_a, \
     u.frequency_hz, u.power_factor, u.power_dc_w, u.temperature_c, u.yield_day_wh, \
     u.yield_total_wh, u.reachable, u.producing, u.source, u.received_at \
     FROM UNNEST($4::bigint[], $5::timestamptz[], $6::float8[], $7::float8[], $8::float8[], \
     $9::float8[], $10::float8[], $11::float8[], $12::float8[], $13::float8[], $14::float8[], \
     $15::bool[], $16::bool[], $17::text[], $3::timestamptz[]) AS u(inverter_id, time, \
     power_ac_w, voltage_ac_v, current_ac_a, frequency_hz, power_factor, power_dc_w, \
     temperature_c, yield_day_wh, yield_total_wh, reachable, producing, source, received_at) \
     WHERE u.inverter_id = ANY(ARRAY(SELECT inverter_id FROM t)) AND NOT EXISTS (SELECT 1 \
     FROM measurements m WHERE m.inverter_id = u.inverter_id AND m.time = u.time) \
     RETURNING inverter_id, time) \
     SELECT 0 AS kind, inverter_id, time_zone, rated_power_w, last_sample_time, \
     last_time, last_power_w, last_yield_day_wh, last_yield_total_wh, last_pending_total_wh, \
     NULL::date AS day, NULL::float8 AS energy_wh, NULL::float8 AS peak_power_w, \
     NULL::bigint AS samples, NULL::timestamptz AS state_last_time, \
     NULL::float8 AS state_power_w, NULL::float8 AS state_yield_day_wh, \
     NULL::float8 AS state_yield_total_wh, NULL::float8 AS state_pending_total_wh, \
     NULL::timestamptz AS time FROM t \
     UNION ALL SELECT 1, inverter_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, time FROM ins \
     UNION ALL SELECT 2, d.inverter_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, d.day, \
     d.energy_wh, d.peak_power_w, d.samples, d.state_last_time, d.state_power_w, \
     d.state_yield_day_wh, d.state_yield_total_wh, d.state_pending_total_wh, NULL \
     FROM UNNEST($18::bigint[], $19::date[], $20::date[]) AS r(inverter_id, first_day, last_day) \
     JOIN daily_energy d ON d.inverter_id = r.inverter_id AND d.day >= r.first_day \
     AND d.day <= r.last_day WHERE d.user_id = $1 \
     UNION ALL SELECT 3, b.inverter_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
     b.energy_wh, NULL, NULL, NULL, NULL, NULL, NULL, NULL, b.bucket \
     FROM UNNEST($21::bigint[], $22::timestamptz[], $23::timestamptz[]) \
     AS r(inverter_id, first_bucket, last_bucket) \
     JOIN rollup_5m b ON b.inverter_id = r.inverter_id AND b.bucket >= r.first_bucket \
     AND b.bucket <= r.last_bucket WHERE b.user_id = $1"
);

/// The rest of a batch after its reads, in one statement (one round trip instead of seven):
/// each part is a data-modifying `WITH` query over `UNNEST` of column arrays (an empty array
/// writes nothing), each touched row written once, all under the same Row-Level Security
/// policies as separate statements.
///
/// - DC rows of the stored readings (`$2`–`$11`, keys unique), skipping stored keys as
///   [`WRITE_START`] does (a DC row that outlived its AC row, e.g. TimescaleDB dropping
///   the chunks of the two tables at different times);
/// - `daily_energy` rows (`$12` `updated_at`, `$13`–`$22`, keys unique);
/// - the energy state of every target (`$23`–`$29`);
/// - 5-minute buckets whose energy moved, with their power deltas (`$30`–`$36`), and buckets
///   with power deltas alone (`$37`–`$42`), two disjoint key sets;
/// - hourly buckets (`$43`–`$48`);
/// - `last_seen_at` of the inverters moved forward (`$49` ids, `$50` times; `same_tenant!`).
///
/// The recomputation of late days uses it too, with days and bucket energies only (zero power
/// deltas leave a bucket's power columns as they are).
pub(crate) const WRITE_REST: &str = concat!(
    "WITH dc AS (INSERT INTO dc_measurements (inverter_id, \
     time, channel, user_id, name, power_w, voltage_v, current_a, yield_day_wh, yield_total_wh, \
     irradiation_pct) SELECT u.inverter_id, u.time, u.channel, $1, u.name, u.power_w, \
     u.voltage_v, u.current_a, u.yield_day_wh, u.yield_total_wh, u.irradiation_pct \
     FROM UNNEST($2::bigint[], $3::timestamptz[], $4::int2[], $5::text[], $6::float8[], \
     $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::float8[]) \
     AS u(inverter_id, time, channel, name, power_w, voltage_v, current_a, yield_day_wh, \
     yield_total_wh, irradiation_pct) WHERE NOT EXISTS (SELECT 1 FROM dc_measurements d \
     WHERE d.inverter_id = u.inverter_id AND d.time = u.time AND d.channel = u.channel)), \
     days AS (INSERT INTO daily_energy (inverter_id, day, user_id, energy_wh, peak_power_w, \
     samples, state_last_time, state_power_w, state_yield_day_wh, state_yield_total_wh, \
     state_pending_total_wh, updated_at) SELECT u.inverter_id, u.day, $1, u.energy_wh, \
     u.peak_power_w, u.samples, u.state_last_time, u.state_power_w, u.state_yield_day_wh, \
     u.state_yield_total_wh, u.state_pending_total_wh, $12 \
     FROM UNNEST($13::bigint[], $14::date[], $15::float8[], $16::float8[], $17::bigint[], \
     $18::timestamptz[], $19::float8[], $20::float8[], $21::float8[], $22::float8[]) \
     AS u(inverter_id, day, energy_wh, peak_power_w, samples, state_last_time, state_power_w, \
     state_yield_day_wh, state_yield_total_wh, state_pending_total_wh) \
     ON CONFLICT (inverter_id, day) DO UPDATE SET energy_wh = excluded.energy_wh, \
     peak_power_w = excluded.peak_power_w, samples = excluded.samples, \
     state_last_time = excluded.state_last_time, state_power_w = excluded.state_power_w, \
     state_yield_day_wh = excluded.state_yield_day_wh, \
     state_yield_total_wh = excluded.state_yield_total_wh, \
     state_pending_total_wh = excluded.state_pending_total_wh, updated_at = excluded.updated_at), \
     states AS (UPDATE energy_state s SET last_sample_time = u.last_sample_time, \
     last_time = u.last_time, last_power_w = u.last_power_w, \
     last_yield_day_wh = u.last_yield_day_wh, last_yield_total_wh = u.last_yield_total_wh, \
     last_pending_total_wh = u.last_pending_total_wh \
     FROM UNNEST($23::bigint[], $24::timestamptz[], $25::timestamptz[], $26::float8[], \
     $27::float8[], $28::float8[], $29::float8[]) AS u(inverter_id, last_sample_time, \
     last_time, last_power_w, last_yield_day_wh, last_yield_total_wh, last_pending_total_wh) \
     WHERE s.user_id = $1 AND s.inverter_id = u.inverter_id), \
     five_energy AS (INSERT INTO rollup_5m (inverter_id, bucket, user_id, samples, power_sum, \
     power_min, power_max, energy_wh) SELECT u.inverter_id, u.bucket, $1, u.samples, \
     u.power_sum, u.power_min, u.power_max, u.energy_wh \
     FROM UNNEST($30::bigint[], $31::timestamptz[], $32::bigint[], $33::float8[], \
     $34::float8[], $35::float8[], $36::float8[]) AS u(inverter_id, bucket, samples, power_sum, \
     power_min, power_max, energy_wh) \
     ON CONFLICT (inverter_id, bucket) DO UPDATE SET \
     samples = rollup_5m.samples + excluded.samples, \
     power_sum = rollup_5m.power_sum + excluded.power_sum, \
     power_min = LEAST(rollup_5m.power_min, excluded.power_min), \
     power_max = GREATEST(rollup_5m.power_max, excluded.power_max), \
     energy_wh = excluded.energy_wh), \
     five AS (INSERT INTO rollup_5m (inverter_id, bucket, user_id, samples, power_sum, \
     power_min, power_max, energy_wh) SELECT u.inverter_id, u.bucket, $1, u.samples, \
     u.power_sum, u.power_min, u.power_max, 0 \
     FROM UNNEST($37::bigint[], $38::timestamptz[], $39::bigint[], $40::float8[], \
     $41::float8[], $42::float8[]) AS u(inverter_id, bucket, samples, power_sum, power_min, \
     power_max) ON CONFLICT (inverter_id, bucket) DO UPDATE SET \
     samples = rollup_5m.samples + excluded.samples, \
     power_sum = rollup_5m.power_sum + excluded.power_sum, \
     power_min = LEAST(rollup_5m.power_min, excluded.power_min), \
     power_max = GREATEST(rollup_5m.power_max, excluded.power_max)), \
     hour AS (INSERT INTO rollup_1h (inverter_id, bucket, user_id, samples, power_sum, \
     power_min, power_max) SELECT u.inverter_id, u.bucket, $1, u.samples, u.power_sum, \
     u.power_min, u.power_max FROM UNNEST($43::bigint[], $44::timestamptz[], $45::bigint[], \
     $46::float8[], $47::float8[], $48::float8[]) AS u(inverter_id, bucket, samples, \
     power_sum, power_min, power_max) ON CONFLICT (inverter_id, bucket) DO UPDATE SET \
     samples = rollup_1h.samples + excluded.samples, \
     power_sum = rollup_1h.power_sum + excluded.power_sum, \
     power_min = LEAST(rollup_1h.power_min, excluded.power_min), \
     power_max = GREATEST(rollup_1h.power_max, excluded.power_max)) \
     UPDATE inverters AS i SET last_seen_at = GREATEST(i.last_seen_at, u.seen_at) \
     FROM UNNEST($49::bigint[], $50::timestamptz[]) AS u(id, seen_at) \
     WHERE i.id = u.id AND ",
    same_tenant!("i")
);

/// Moves `last_seen_at` of each inverter of `$2` forward to the time at the same position
/// of `$3` (ids unique).
pub(crate) const TOUCH_MANY: &str = concat!(
    "UPDATE inverters AS i SET last_seen_at = CASE \
     WHEN i.last_seen_at IS NULL OR i.last_seen_at < u.seen_at THEN u.seen_at \
     ELSE i.last_seen_at END FROM UNNEST($2::bigint[], $3::timestamptz[]) AS u(id, seen_at) \
     WHERE i.id = u.id AND ",
    same_tenant!("i")
);

/// The active claims of the logger serials `$1`.
pub(crate) const LOGGERS_RESOLVE: &str = "SELECT i.logger_serial, i.id AS inverter_id, \
     i.user_id FROM inverters i JOIN users u ON u.id = i.user_id \
     WHERE i.logger_serial = ANY($1) AND u.is_active";

/// One row per unclaimed logger of a collector batch (serials unique), summed over its frames.
pub(crate) const UPSERT_UNCLAIMED: &str = "INSERT INTO unclaimed_loggers (logger_serial, \
     first_seen_at, last_seen_at, remote_addr, frames_seen) \
     SELECT * FROM UNNEST($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::text[], \
     $5::bigint[]) ON CONFLICT (logger_serial) DO UPDATE SET \
     first_seen_at = LEAST(unclaimed_loggers.first_seen_at, excluded.first_seen_at), \
     last_seen_at = GREATEST(unclaimed_loggers.last_seen_at, excluded.last_seen_at), \
     remote_addr = COALESCE(excluded.remote_addr, unclaimed_loggers.remote_addr), \
     frames_seen = unclaimed_loggers.frames_seen + excluded.frames_seen";

/// Raw frames, owned or not, as column arrays.
pub(crate) const INSERT_RAW_FRAMES: &str = "INSERT INTO raw_frames (user_id, inverter_id, \
     logger_serial, received_at, control, remote_addr, frame) \
     SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[], \
     $5::int4[], $6::text[], $7::bytea[])";

/// Re-scopes an open transaction: `$1` the tenant ('' for none), `$2` cross-tenant 'on'/'off'.
pub(crate) const SWITCH_ACCESS: &str = "SELECT set_config('app.current_user_id', $1, true), \
     set_config('app.cross_tenant', $2, true)";

/// Whether the migration turned the time-series tables into hypertables.
pub(crate) async fn timescaledb_in_use(pool: &PgPool) -> StoreResult<bool> {
    let installed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
    )
    .fetch_one(pool)
    .await?;
    if !installed {
        return Ok(false);
    }
    let hypertables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM timescaledb_information.hypertables \
         WHERE hypertable_schema = current_schema() \
         AND hypertable_name IN ('measurements', 'dc_measurements')",
    )
    .fetch_one(pool)
    .await?;
    Ok(hypertables == 2)
}

/// (Re)sets TimescaleDB's retention policy on both hypertables to `days`. Runs as the login
/// role (the policy's background job drops whole chunks, for all tenants).
pub(crate) async fn set_timescale_retention(pool: &PgPool, days: u32) -> StoreResult<()> {
    let days = i32::try_from(days).unwrap_or(i32::MAX);
    for table in ["measurements", "dc_measurements"] {
        sqlx::query("SELECT remove_retention_policy($1::regclass, if_exists => true)")
            .bind(table)
            .execute(pool)
            .await?;
        sqlx::query(
            "SELECT add_retention_policy($1::regclass, drop_after => make_interval(days => $2))",
        )
        .bind(table)
        .bind(days)
        .execute(pool)
        .await?;
    }
    Ok(())
}
