//! SQLite statements that differ from PostgreSQL's (times are integer milliseconds here, and
//! there is no `LEAST`/`GREATEST`, `ANY` or `FOR UPDATE`).

/// Power buckets from raw rows: `$3` base, `$4` end, `$5` bucket width in ms.
pub(crate) const SERIES_RAW: &str = "SELECT (time - $3) / $5 AS idx, count(*) AS n, \
     sum(power_ac_w) AS total, min(power_ac_w) AS lo, max(power_ac_w) AS hi FROM measurements \
     WHERE user_id = $1 AND inverter_id = $2 AND time >= $3 AND time < $4 AND reachable \
     AND power_ac_w IS NOT NULL GROUP BY idx ORDER BY idx";

/// Power buckets from the 5-minute rollup.
pub(crate) const SERIES_5M: &str = "SELECT (bucket - $3) / $5 AS idx, sum(samples) AS n, \
     sum(power_sum) AS total, min(power_min) AS lo, max(power_max) AS hi FROM rollup_5m \
     WHERE user_id = $1 AND inverter_id = $2 AND bucket >= $3 AND bucket < $4 AND samples > 0 \
     GROUP BY idx ORDER BY idx";

/// Power buckets from the hourly rollup.
pub(crate) const SERIES_1H: &str = "SELECT (bucket - $3) / $5 AS idx, sum(samples) AS n, \
     sum(power_sum) AS total, min(power_min) AS lo, max(power_max) AS hi FROM rollup_1h \
     WHERE user_id = $1 AND inverter_id = $2 AND bucket >= $3 AND bucket < $4 AND samples > 0 \
     GROUP BY idx ORDER BY idx";

/// DC power buckets per channel from raw rows of reachable readings.
pub(crate) const SERIES_DC: &str = "SELECT d.channel AS channel, (d.time - $3) / $5 AS idx, \
     count(*) AS n, sum(d.power_w) AS total, min(d.power_w) AS lo, max(d.power_w) AS hi \
     FROM dc_measurements d JOIN measurements m ON m.inverter_id = d.inverter_id \
     AND m.time = d.time AND m.reachable \
     WHERE d.user_id = $1 AND d.inverter_id = $2 AND d.time >= $3 AND d.time < $4 \
     AND d.power_w IS NOT NULL GROUP BY d.channel, idx ORDER BY d.channel, idx";

// Multi-row statements: `crate::sqlite::write::multi_row` joins a head, `VALUES`, the row
// template repeated (parameters `?`, bound in order) and a tail. A batch then costs tens of
// statements instead of one per row. A head opening a `WITH … AS (` makes the rows a table the
// tail reads (`CROSS JOIN` keeps that table the outer loop, so the lookups use the primary key).

/// AC rows; a duplicate (inverter, time) changes nothing; returns the keys inserted.
pub(crate) const MEASUREMENTS: MultiRow = MultiRow {
    head: "INSERT INTO measurements (inverter_id, time, user_id, power_ac_w, voltage_ac_v, \
           current_ac_a, frequency_hz, power_factor, power_dc_w, temperature_c, yield_day_wh, \
           yield_total_wh, reachable, producing, source, received_at)",
    row: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    tail: "ON CONFLICT DO NOTHING RETURNING inverter_id, time",
};

/// DC rows.
pub(crate) const DC_MEASUREMENTS: MultiRow = MultiRow {
    head: "INSERT INTO dc_measurements (inverter_id, time, channel, user_id, name, power_w, \
           voltage_v, current_a, yield_day_wh, yield_total_wh, irradiation_pct)",
    row: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    tail: "ON CONFLICT DO NOTHING",
};

/// Adds power deltas to 5-minute rollup buckets and sets their energy.
pub(crate) const UPSERT_5M_ENERGY: MultiRow = MultiRow {
    head: "INSERT INTO rollup_5m (inverter_id, bucket, user_id, samples, power_sum, power_min, \
           power_max, energy_wh)",
    row: "(?, ?, ?, ?, ?, ?, ?, ?)",
    tail: "ON CONFLICT (inverter_id, bucket) DO UPDATE SET samples = samples + excluded.samples, \
           power_sum = power_sum + excluded.power_sum, \
           power_min = CASE WHEN power_min IS NULL OR excluded.power_min < power_min \
           THEN excluded.power_min ELSE power_min END, \
           power_max = CASE WHEN power_max IS NULL OR excluded.power_max > power_max \
           THEN excluded.power_max ELSE power_max END, energy_wh = excluded.energy_wh",
};

/// Adds power deltas to 5-minute rollup buckets, keeping their energy.
pub(crate) const UPSERT_5M: MultiRow = MultiRow {
    head: "INSERT INTO rollup_5m (inverter_id, bucket, user_id, samples, power_sum, power_min, \
           power_max, energy_wh)",
    row: "(?, ?, ?, ?, ?, ?, ?, 0)",
    tail: "ON CONFLICT (inverter_id, bucket) DO UPDATE SET samples = samples + excluded.samples, \
           power_sum = power_sum + excluded.power_sum, \
           power_min = CASE WHEN power_min IS NULL OR excluded.power_min < power_min \
           THEN excluded.power_min ELSE power_min END, \
           power_max = CASE WHEN power_max IS NULL OR excluded.power_max > power_max \
           THEN excluded.power_max ELSE power_max END",
};

/// Adds power deltas to hourly rollup buckets.
pub(crate) const UPSERT_1H: MultiRow = MultiRow {
    head: "INSERT INTO rollup_1h (inverter_id, bucket, user_id, samples, power_sum, power_min, \
           power_max)",
    row: "(?, ?, ?, ?, ?, ?, ?)",
    tail: "ON CONFLICT (inverter_id, bucket) DO UPDATE SET samples = samples + excluded.samples, \
           power_sum = power_sum + excluded.power_sum, \
           power_min = CASE WHEN power_min IS NULL OR excluded.power_min < power_min \
           THEN excluded.power_min ELSE power_min END, \
           power_max = CASE WHEN power_max IS NULL OR excluded.power_max > power_max \
           THEN excluded.power_max ELSE power_max END",
};

/// Sets the energy of 5-minute buckets.
pub(crate) const SET_BUCKET_ENERGY: MultiRow = MultiRow {
    head: "INSERT INTO rollup_5m (inverter_id, bucket, user_id, samples, power_sum, power_min, \
           power_max, energy_wh)",
    row: "(?, ?, ?, 0, 0, NULL, NULL, ?)",
    tail: "ON CONFLICT (inverter_id, bucket) DO UPDATE SET energy_wh = excluded.energy_wh",
};

/// The write targets of the scope among the listed inverters: energy state, owner's zone, rated
/// power. (SQLite has one writer connection, so no row lock is needed.)
pub(crate) const WRITE_TARGETS: MultiRow = MultiRow {
    head: "WITH r(inverter_id) AS (",
    row: "(?)",
    tail: ") SELECT s.inverter_id, u.time_zone, i.rated_power_w, s.last_sample_time, \
           s.last_time, s.last_power_w, s.last_yield_day_wh, s.last_yield_total_wh, \
           s.last_pending_total_wh FROM r CROSS JOIN energy_state s \
           JOIN inverters i ON i.id = s.inverter_id JOIN users u ON u.id = s.user_id \
           WHERE s.inverter_id = r.inverter_id AND s.user_id = ? ORDER BY s.inverter_id",
};

/// Moves `last_seen_at` of each listed inverter forward to its own time (rows: id, time;
/// then the user).
pub(crate) const TOUCH_MANY: MultiRow = MultiRow {
    head: "WITH r(id, seen_at) AS (",
    row: "(?, ?)",
    tail: ") UPDATE inverters SET last_seen_at = (SELECT CASE \
           WHEN inverters.last_seen_at IS NULL OR inverters.last_seen_at < r.seen_at \
           THEN r.seen_at ELSE inverters.last_seen_at END FROM r WHERE r.id = inverters.id) \
           WHERE user_id = ? AND id IN (SELECT id FROM r)",
};

/// The `daily_energy` rows of several inverters, each in its span of days (then the user).
pub(crate) const DAY_ROWS_IN: MultiRow = MultiRow {
    head: "WITH r(inverter_id, first_day, last_day) AS (",
    row: "(?, ?, ?)",
    tail: ") SELECT d.inverter_id, d.day, d.energy_wh, d.peak_power_w, d.samples, \
           d.state_last_time, d.state_power_w, d.state_yield_day_wh, d.state_yield_total_wh, \
           d.state_pending_total_wh FROM r CROSS JOIN daily_energy d \
           WHERE d.inverter_id = r.inverter_id AND d.day >= r.first_day \
           AND d.day <= r.last_day AND d.user_id = ?",
};

/// The bucket energies of several inverters, each in its span of buckets (then the user).
pub(crate) const BUCKET_ENERGIES_IN: MultiRow = MultiRow {
    head: "WITH r(inverter_id, first_bucket, last_bucket) AS (",
    row: "(?, ?, ?)",
    tail: ") SELECT b.inverter_id, b.bucket, b.energy_wh FROM r CROSS JOIN rollup_5m b \
           WHERE b.inverter_id = r.inverter_id AND b.bucket >= r.first_bucket \
           AND b.bucket <= r.last_bucket AND b.user_id = ?",
};

/// Upserts `daily_energy` rows (keys unique within the statement).
pub(crate) const DAY_UPSERT: MultiRow = MultiRow {
    head: "INSERT INTO daily_energy (inverter_id, day, user_id, energy_wh, peak_power_w, \
           samples, state_last_time, state_power_w, state_yield_day_wh, state_yield_total_wh, \
           state_pending_total_wh, updated_at)",
    row: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    tail: "ON CONFLICT (inverter_id, day) DO UPDATE SET energy_wh = excluded.energy_wh, \
           peak_power_w = excluded.peak_power_w, samples = excluded.samples, \
           state_last_time = excluded.state_last_time, state_power_w = excluded.state_power_w, \
           state_yield_day_wh = excluded.state_yield_day_wh, \
           state_yield_total_wh = excluded.state_yield_total_wh, \
           state_pending_total_wh = excluded.state_pending_total_wh, \
           updated_at = excluded.updated_at",
};

/// Stores the energy state of several inverters (then the user).
pub(crate) const STATE_UPDATE: MultiRow = MultiRow {
    head: "WITH v(inverter_id, last_sample_time, last_time, last_power_w, last_yield_day_wh, \
           last_yield_total_wh, last_pending_total_wh) AS (",
    row: "(?, ?, ?, ?, ?, ?, ?)",
    tail: ") UPDATE energy_state SET last_sample_time = v.last_sample_time, \
           last_time = v.last_time, last_power_w = v.last_power_w, \
           last_yield_day_wh = v.last_yield_day_wh, last_yield_total_wh = v.last_yield_total_wh, \
           last_pending_total_wh = v.last_pending_total_wh FROM v \
           WHERE energy_state.inverter_id = v.inverter_id AND energy_state.user_id = ?",
};

/// The parts of a multi-row `INSERT … VALUES (…), (…) …`.
pub(crate) struct MultiRow {
    /// `INSERT INTO table (columns)`.
    pub(crate) head: &'static str,
    /// One row's tuple; each `?` is a parameter.
    pub(crate) row: &'static str,
    /// `ON CONFLICT …` / `RETURNING …`.
    pub(crate) tail: &'static str,
}

/// One row per unclaimed logger of a collector batch, summed over its frames in the batch.
pub(crate) const UNCLAIMED: MultiRow = MultiRow {
    head: "INSERT INTO unclaimed_loggers (logger_serial, first_seen_at, last_seen_at, \
           remote_addr, frames_seen)",
    row: "(?, ?, ?, ?, ?)",
    tail: "ON CONFLICT (logger_serial) DO UPDATE SET \
           first_seen_at = CASE WHEN excluded.first_seen_at < first_seen_at \
           THEN excluded.first_seen_at ELSE first_seen_at END, \
           last_seen_at = CASE WHEN excluded.last_seen_at > last_seen_at \
           THEN excluded.last_seen_at ELSE last_seen_at END, \
           remote_addr = COALESCE(excluded.remote_addr, remote_addr), \
           frames_seen = frames_seen + excluded.frames_seen",
};

/// Raw frames, owned or not.
pub(crate) const RAW_FRAMES: MultiRow = MultiRow {
    head: "INSERT INTO raw_frames (user_id, inverter_id, logger_serial, received_at, control, \
           remote_addr, frame)",
    row: "(?, ?, ?, ?, ?, ?, ?)",
    tail: "",
};

/// The active claims of `serials` logger serials (`?` parameters, bound in order).
pub(crate) fn logger_resolve(serials: usize) -> String {
    let mut sql = String::from(
        "SELECT i.logger_serial, i.id AS inverter_id, i.user_id FROM inverters i \
         JOIN users u ON u.id = i.user_id WHERE u.is_active AND i.logger_serial IN (",
    );
    for n in 0..serials {
        sql.push_str(if n == 0 { "?" } else { ", ?" });
    }
    sql.push(')');
    sql
}
