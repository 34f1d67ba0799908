//! SQL written once for both dialects (`$n` placeholders work on PostgreSQL and SQLite; times
//! bind as [`crate::ts::Ts`]). Statements that differ live in each backend's `dialect` module.
//!
//! Every tenant-owned statement filters on `user_id` explicitly, on PostgreSQL as well (where
//! RLS enforces the same predicate), so the text is shared and the planner can use it.

macro_rules! user_columns {
    () => {
        "id, email, password_hash, display_name, time_zone, locale, is_active, is_verified, \
         is_superuser, session_version, created_at"
    };
}

macro_rules! inverter_columns {
    () => {
        "id, user_id, name, kind, serial, logger_serial, rated_power_w, mppt_count, \
         firmware_version, last_seen_at, created_at"
    };
}

macro_rules! measurement_columns {
    ($p:literal) => {
        concat!(
            $p,
            "inverter_id, ",
            $p,
            "time, ",
            $p,
            "power_ac_w, ",
            $p,
            "voltage_ac_v, ",
            $p,
            "current_ac_a, ",
            $p,
            "frequency_hz, ",
            $p,
            "power_factor, ",
            $p,
            "power_dc_w, ",
            $p,
            "temperature_c, ",
            $p,
            "yield_day_wh, ",
            $p,
            "yield_total_wh, ",
            $p,
            "reachable, ",
            $p,
            "producing, ",
            $p,
            "source, ",
            $p,
            "received_at"
        )
    };
}

macro_rules! raw_frame_columns {
    () => {
        "id, inverter_id, logger_serial, received_at, control, remote_addr, frame"
    };
}

// ---- users ----------------------------------------------------------------------------------

pub(crate) const USER_INSERT: &str = concat!(
    "INSERT INTO users (email, password_hash, display_name, time_zone, locale, is_verified, \
     is_superuser, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
    user_columns!()
);
pub(crate) const USER_BY_ID: &str =
    concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
pub(crate) const USER_BY_EMAIL: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE lower(email) = lower($1)"
);
pub(crate) const USER_UPDATE_PROFILE: &str = concat!(
    "UPDATE users SET display_name = $2, time_zone = $3, locale = $4 WHERE id = $1 RETURNING ",
    user_columns!()
);
pub(crate) const USER_SET_PASSWORD: &str = "UPDATE users SET password_hash = $2, \
     session_version = session_version + 1 WHERE id = $1 RETURNING session_version";
pub(crate) const USER_UPGRADE_HASH: &str =
    "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2";
pub(crate) const USER_SET_SUPERUSER: &str = "UPDATE users SET is_superuser = $2 WHERE id = $1";
pub(crate) const USER_BUMP_SESSION: &str = "UPDATE users SET session_version = session_version + 1 WHERE id = $1 RETURNING session_version";
pub(crate) const USER_SET_VERIFIED: &str = "UPDATE users SET is_verified = $2 WHERE id = $1";
pub(crate) const USER_SET_ACTIVE: &str = "UPDATE users SET is_active = $2 WHERE id = $1";
pub(crate) const USER_SET_EMAIL: &str = "UPDATE users SET email = $2 WHERE id = $1";
pub(crate) const USER_DELETE: &str = "DELETE FROM users WHERE id = $1";
pub(crate) const USER_TIME_ZONE: &str = "SELECT time_zone FROM users WHERE id = $1";
/// Admin re-check: the actor is an active superuser (no row → not an admin).
pub(crate) const USER_IS_ADMIN: &str =
    "SELECT id FROM users WHERE id = $1 AND is_superuser AND is_active";
pub(crate) const ADMIN_USERS: &str = concat!(
    "SELECT ",
    user_columns!(),
    ", (SELECT count(*) FROM inverters i WHERE i.user_id = users.id) AS inverter_count \
     FROM users WHERE ($1 IS NULL OR lower(email) LIKE $1 ESCAPE '\\' \
     OR lower(display_name) LIKE $1 ESCAPE '\\') ORDER BY id LIMIT $2 OFFSET $3"
);
pub(crate) const ADMIN_SET_FLAGS: &str =
    "UPDATE users SET is_active = $2, is_verified = $3, is_superuser = $4 WHERE id = $1";

// ---- API keys -------------------------------------------------------------------------------

pub(crate) const API_KEY_INSERT: &str = "INSERT INTO api_keys (user_id, name, prefix, key_hash, \
     created_at) VALUES ($1, $2, $3, $4, $5) \
     RETURNING id, name, prefix, created_at, last_used_at, revoked_at";
pub(crate) const API_KEYS: &str = "SELECT id, name, prefix, created_at, last_used_at, revoked_at \
     FROM api_keys WHERE user_id = $1 ORDER BY id DESC";
pub(crate) const API_KEY_REVOKE: &str = "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) \
     WHERE user_id = $1 AND id = $2";
pub(crate) const API_KEY_DELETE: &str = "DELETE FROM api_keys WHERE user_id = $1 AND id = $2";
pub(crate) const API_KEY_RESOLVE: &str = "UPDATE api_keys SET last_used_at = $2 \
     WHERE key_hash = $1 AND revoked_at IS NULL \
     AND user_id IN (SELECT id FROM users WHERE is_active) RETURNING id, user_id";

// ---- inverters ------------------------------------------------------------------------------

pub(crate) const INVERTER_INSERT: &str = concat!(
    "INSERT INTO inverters (user_id, name, kind, serial, logger_serial, rated_power_w, \
     mppt_count, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
    inverter_columns!()
);
pub(crate) const ENERGY_STATE_INSERT: &str =
    "INSERT INTO energy_state (inverter_id, user_id) VALUES ($1, $2)";
pub(crate) const INVERTER_BY_ID: &str = concat!(
    "SELECT ",
    inverter_columns!(),
    " FROM inverters WHERE user_id = $1 AND id = $2"
);
pub(crate) const INVERTERS: &str = concat!(
    "SELECT ",
    inverter_columns!(),
    " FROM inverters WHERE user_id = $1 ORDER BY id"
);
pub(crate) const INVERTER_BY_SERIAL: &str = concat!(
    "SELECT ",
    inverter_columns!(),
    " FROM inverters WHERE user_id = $1 AND serial = $2"
);
pub(crate) const INVERTER_UPDATE: &str = concat!(
    "UPDATE inverters SET name = $3, kind = $4, serial = $5, logger_serial = $6, \
     rated_power_w = $7, mppt_count = $8 WHERE user_id = $1 AND id = $2 RETURNING ",
    inverter_columns!()
);
pub(crate) const INVERTER_DELETE: &str = "DELETE FROM inverters WHERE user_id = $1 AND id = $2";
pub(crate) const INVERTER_DEVICE_INFO: &str = "UPDATE inverters SET \
     firmware_version = COALESCE($3, firmware_version), \
     rated_power_w = COALESCE($4, rated_power_w), mppt_count = COALESCE($5, mppt_count) \
     WHERE user_id = $1 AND id = $2";
pub(crate) const INVERTER_TOUCH: &str = "UPDATE inverters SET last_seen_at = CASE \
     WHEN last_seen_at IS NULL OR last_seen_at < $3 THEN $3 ELSE last_seen_at END \
     WHERE user_id = $1 AND id = $2";
pub(crate) const ADMIN_INVERTERS: &str = concat!(
    "SELECT ",
    inverter_columns!(),
    " FROM inverters ORDER BY id"
);
/// The owner's time zone, for an inverter of the scope.
pub(crate) const INVERTER_TIME_ZONE: &str = "SELECT u.time_zone FROM inverters i \
     JOIN users u ON u.id = i.user_id WHERE i.user_id = $1 AND i.id = $2";
pub(crate) const UNKNOWN_SERIAL_UPSERT: &str = "INSERT INTO unknown_serials (user_id, \
     inverter_serial, dtu_serial, first_seen_at, last_seen_at, times_seen) \
     VALUES ($1, $2, $3, $4, $4, 1) ON CONFLICT (user_id, inverter_serial) DO UPDATE SET \
     dtu_serial = COALESCE(excluded.dtu_serial, unknown_serials.dtu_serial), \
     first_seen_at = CASE WHEN excluded.first_seen_at < unknown_serials.first_seen_at \
     THEN excluded.first_seen_at ELSE unknown_serials.first_seen_at END, \
     last_seen_at = CASE WHEN excluded.last_seen_at > unknown_serials.last_seen_at \
     THEN excluded.last_seen_at ELSE unknown_serials.last_seen_at END, \
     times_seen = unknown_serials.times_seen + 1";
pub(crate) const UNKNOWN_SERIALS: &str = "SELECT inverter_serial, dtu_serial, first_seen_at, \
     last_seen_at, times_seen FROM unknown_serials u WHERE u.user_id = $1 AND NOT EXISTS \
     (SELECT 1 FROM inverters i WHERE i.user_id = u.user_id AND i.serial = u.inverter_serial) \
     ORDER BY last_seen_at DESC, inverter_serial";

// ---- loggers and raw frames -----------------------------------------------------------------

pub(crate) const LOGGER_RESOLVE: &str = "SELECT i.id, i.user_id, i.serial FROM inverters i \
     JOIN users u ON u.id = i.user_id WHERE i.logger_serial = $1 AND u.is_active";
pub(crate) const LOGGER_CLAIMED_BY: &str =
    "SELECT id FROM inverters WHERE user_id = $1 AND logger_serial = $2";
pub(crate) const UNCLAIMED_UPSERT: &str = "INSERT INTO unclaimed_loggers (logger_serial, \
     first_seen_at, last_seen_at, remote_addr, frames_seen) VALUES ($1, $2, $2, $3, 1) \
     ON CONFLICT (logger_serial) DO UPDATE SET \
     first_seen_at = CASE WHEN excluded.first_seen_at < unclaimed_loggers.first_seen_at \
     THEN excluded.first_seen_at ELSE unclaimed_loggers.first_seen_at END, \
     last_seen_at = CASE WHEN excluded.last_seen_at > unclaimed_loggers.last_seen_at \
     THEN excluded.last_seen_at ELSE unclaimed_loggers.last_seen_at END, \
     remote_addr = COALESCE(excluded.remote_addr, unclaimed_loggers.remote_addr), \
     frames_seen = unclaimed_loggers.frames_seen + 1";
pub(crate) const UNCLAIMED_DELETE: &str = "DELETE FROM unclaimed_loggers WHERE logger_serial = $1";
pub(crate) const ADMIN_UNCLAIMED: &str = "SELECT logger_serial, first_seen_at, last_seen_at, \
     remote_addr, frames_seen FROM unclaimed_loggers ORDER BY last_seen_at DESC, logger_serial";
pub(crate) const RAW_FRAME_INSERT: &str = "INSERT INTO raw_frames (user_id, inverter_id, \
     logger_serial, received_at, control, remote_addr, frame) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub(crate) const RAW_FRAMES: &str = concat!(
    "SELECT ",
    raw_frame_columns!(),
    " FROM raw_frames WHERE user_id = $1 AND inverter_id = $2 AND received_at >= $3 \
     AND received_at < $4 ORDER BY received_at, id LIMIT $5"
);
pub(crate) const RAW_FRAMES_TAKE: &str = concat!(
    "UPDATE raw_frames SET user_id = $1, inverter_id = $2 \
     WHERE user_id IS NULL AND logger_serial = $3 RETURNING ",
    raw_frame_columns!()
);

// ---- reads ----------------------------------------------------------------------------------

pub(crate) const INVERTER_OWNED: &str = "SELECT id FROM inverters WHERE user_id = $1 AND id = $2";
pub(crate) const LATEST_READINGS: &str = concat!(
    "SELECT ",
    measurement_columns!("m."),
    " FROM inverters i JOIN measurements m ON m.inverter_id = i.id AND m.user_id = i.user_id \
     AND m.time = (SELECT max(time) FROM measurements x WHERE x.inverter_id = i.id) \
     WHERE i.user_id = $1 ORDER BY i.id"
);
pub(crate) const READINGS_PAGE: &str = concat!(
    "SELECT ",
    measurement_columns!(""),
    " FROM measurements WHERE user_id = $1 AND inverter_id = $2 AND time >= $3 AND time < $4 \
     ORDER BY time LIMIT $5"
);
pub(crate) const DC_RANGE: &str = "SELECT time, channel, name, power_w, voltage_v, current_a, \
     yield_day_wh, yield_total_wh, irradiation_pct FROM dc_measurements \
     WHERE user_id = $1 AND inverter_id = $2 AND time >= $3 AND time <= $4 ORDER BY time, channel";
pub(crate) const DAILY_RANGE: &str = "SELECT day, energy_wh, peak_power_w, samples \
     FROM daily_energy WHERE user_id = $1 AND inverter_id = $2 AND day >= $3 AND day <= $4 \
     ORDER BY day";

// ---- energy --------------------------------------------------------------------------------

macro_rules! day_columns {
    () => {
        "day, energy_wh, peak_power_w, samples, state_last_time, state_power_w, \
         state_yield_day_wh, state_yield_total_wh, state_pending_total_wh"
    };
}

pub(crate) const DAY_ROW_BEFORE: &str = concat!(
    "SELECT ",
    day_columns!(),
    " FROM daily_energy WHERE user_id = $1 AND inverter_id = $2 AND day < $3 \
     ORDER BY day DESC LIMIT 1"
);
pub(crate) const DAY_ROWS_FROM: &str = concat!(
    "SELECT ",
    day_columns!(),
    " FROM daily_energy WHERE user_id = $1 AND inverter_id = $2 AND day >= $3 ORDER BY day"
);
pub(crate) const DAY_SAMPLES: &str = "SELECT time, power_ac_w, yield_day_wh, yield_total_wh, \
     reachable FROM measurements WHERE user_id = $1 AND inverter_id = $2 AND time >= $3 \
     AND time < $4 ORDER BY time";
pub(crate) const NEXT_SAMPLE: &str = "SELECT min(time) FROM measurements \
     WHERE user_id = $1 AND inverter_id = $2 AND time >= $3";
pub(crate) const BUCKET_ENERGY_BETWEEN: &str = "SELECT bucket, energy_wh FROM rollup_5m \
     WHERE user_id = $1 AND inverter_id = $2 AND bucket >= $3 AND bucket <= $4 ORDER BY bucket";
pub(crate) const ZERO_BUCKET_ENERGY: &str = "UPDATE rollup_5m SET energy_wh = 0 \
     WHERE user_id = $1 AND inverter_id = $2 AND bucket >= $3 AND bucket < $4";
pub(crate) const ENERGY_SUMMARY: &str = "SELECT i.id, COALESCE(sum(d.energy_wh), 0.0) \
     FROM inverters i LEFT JOIN daily_energy d ON d.inverter_id = i.id AND d.user_id = i.user_id \
     AND d.day >= $2 AND d.day <= $3 WHERE i.user_id = $1 GROUP BY i.id ORDER BY i.id";

// ---- retention ------------------------------------------------------------------------------

pub(crate) const ALL_INVERTER_IDS: &str = "SELECT id FROM inverters ORDER BY id";
pub(crate) const RETAIN_MEASUREMENTS: &str =
    "DELETE FROM measurements WHERE inverter_id = $1 AND time < $2";
pub(crate) const RETAIN_DC: &str =
    "DELETE FROM dc_measurements WHERE inverter_id = $1 AND time < $2";
pub(crate) const RETAIN_RAW_FRAMES: &str = "DELETE FROM raw_frames WHERE received_at < $1";
pub(crate) const RETAIN_UNCLAIMED: &str = "DELETE FROM unclaimed_loggers WHERE last_seen_at < $1";
