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

/// The write target of one inverter of the scope: energy state, owner's zone, rated power.
/// (SQLite has one writer connection, so no row lock is needed.)
pub(crate) const WRITE_TARGET: &str = "SELECT s.inverter_id, u.time_zone, i.rated_power_w, \
     s.last_sample_time, s.last_time, s.last_power_w, s.last_yield_day_wh, \
     s.last_yield_total_wh, s.last_pending_total_wh FROM energy_state s JOIN inverters i ON i.id = s.inverter_id \
     JOIN users u ON u.id = s.user_id WHERE s.user_id = $1 AND s.inverter_id = $2";

// Multi-row statements: `crate::sqlite::write::multi_row` joins a head, the row template
// repeated (parameters `?`, bound in order) and a tail. A batch then costs tens of statements
// instead of one per row.

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

/// Adds power deltas to 5-minute rollup buckets (their energy is set separately).
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
