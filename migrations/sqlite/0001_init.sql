-- deyehard schema for SQLite (same version numbers as migrations/postgres).
--
-- Differences from PostgreSQL, hidden behind the store:
--   * times are INTEGER milliseconds since the Unix epoch (UTC); local days are TEXT 'YYYY-MM-DD';
--   * there is no Row-Level Security: every tenant query carries `WHERE user_id = ?`;
--   * the time-series tables are WITHOUT ROWID, clustered on their primary keys.
-- Tables are STRICT so a wrongly typed value is an error, not a silent conversion.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    email           TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    display_name    TEXT NOT NULL DEFAULT '',
    time_zone       TEXT NOT NULL DEFAULT 'Europe/Berlin',
    locale          TEXT NOT NULL DEFAULT 'en',
    is_active       INTEGER NOT NULL DEFAULT 1,
    is_verified     INTEGER NOT NULL DEFAULT 0,
    is_superuser    INTEGER NOT NULL DEFAULT 0,
    session_version INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

CREATE TABLE inverters (
    id               INTEGER PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    serial           TEXT,
    logger_serial    INTEGER CHECK (logger_serial BETWEEN 0 AND 4294967295),
    rated_power_w    REAL,
    mppt_count       INTEGER,
    firmware_version TEXT,
    last_seen_at     INTEGER,
    created_at       INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX inverters_user_serial_key ON inverters (user_id, serial);
CREATE UNIQUE INDEX inverters_id_user_key ON inverters (id, user_id);
CREATE UNIQUE INDEX inverters_logger_serial_key ON inverters (logger_serial)
    WHERE logger_serial IS NOT NULL;

CREATE TABLE measurements (
    inverter_id    INTEGER NOT NULL,
    time           INTEGER NOT NULL,
    user_id        INTEGER NOT NULL,
    power_ac_w     REAL,
    voltage_ac_v   REAL,
    current_ac_a   REAL,
    frequency_hz   REAL,
    power_factor   REAL,
    power_dc_w     REAL,
    temperature_c  REAL,
    yield_day_wh   REAL,
    yield_total_wh REAL,
    reachable      INTEGER NOT NULL,
    producing      INTEGER NOT NULL,
    source         TEXT NOT NULL,
    received_at    INTEGER NOT NULL,
    PRIMARY KEY (inverter_id, time),
    FOREIGN KEY (inverter_id, user_id) REFERENCES inverters (id, user_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE dc_measurements (
    inverter_id     INTEGER NOT NULL,
    time            INTEGER NOT NULL,
    channel         INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    name            TEXT,
    power_w         REAL,
    voltage_v       REAL,
    current_a       REAL,
    yield_day_wh    REAL,
    yield_total_wh  REAL,
    irradiation_pct REAL,
    PRIMARY KEY (inverter_id, time, channel),
    FOREIGN KEY (inverter_id, user_id) REFERENCES inverters (id, user_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE daily_energy (
    inverter_id          INTEGER NOT NULL,
    day                  TEXT NOT NULL,
    user_id              INTEGER NOT NULL,
    energy_wh            REAL NOT NULL,
    peak_power_w         REAL,
    samples              INTEGER NOT NULL,
    state_last_time      INTEGER,
    state_power_w        REAL,
    state_yield_day_wh   REAL,
    state_yield_total_wh REAL,
    state_pending_total_wh REAL,
    updated_at           INTEGER NOT NULL,
    PRIMARY KEY (inverter_id, day),
    FOREIGN KEY (inverter_id, user_id) REFERENCES inverters (id, user_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE energy_state (
    inverter_id         INTEGER PRIMARY KEY,
    user_id             INTEGER NOT NULL,
    last_sample_time    INTEGER,
    last_time           INTEGER,
    last_power_w        REAL,
    last_yield_day_wh   REAL,
    last_yield_total_wh REAL,
    last_pending_total_wh REAL,
    FOREIGN KEY (inverter_id, user_id) REFERENCES inverters (id, user_id) ON DELETE CASCADE
) STRICT;

CREATE TABLE rollup_5m (
    inverter_id INTEGER NOT NULL,
    bucket      INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    samples     INTEGER NOT NULL,
    power_sum   REAL NOT NULL,
    power_min   REAL,
    power_max   REAL,
    energy_wh   REAL NOT NULL,
    PRIMARY KEY (inverter_id, bucket),
    FOREIGN KEY (inverter_id, user_id) REFERENCES inverters (id, user_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE rollup_1h (
    inverter_id INTEGER NOT NULL,
    bucket      INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    samples     INTEGER NOT NULL,
    power_sum   REAL NOT NULL,
    power_min   REAL,
    power_max   REAL,
    PRIMARY KEY (inverter_id, bucket),
    FOREIGN KEY (inverter_id, user_id) REFERENCES inverters (id, user_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE raw_frames (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER REFERENCES users (id) ON DELETE CASCADE,
    inverter_id   INTEGER,
    logger_serial INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    control       INTEGER NOT NULL,
    remote_addr   TEXT,
    frame         BLOB NOT NULL,
    CHECK ((user_id IS NULL) = (inverter_id IS NULL)),
    FOREIGN KEY (inverter_id, user_id) REFERENCES inverters (id, user_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX raw_frames_logger_idx ON raw_frames (logger_serial, received_at);
CREATE INDEX raw_frames_inverter_idx ON raw_frames (inverter_id, received_at);

CREATE TABLE unclaimed_loggers (
    logger_serial INTEGER PRIMARY KEY,
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    remote_addr   TEXT,
    frames_seen   INTEGER NOT NULL
) STRICT;

CREATE TABLE unknown_serials (
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    inverter_serial TEXT NOT NULL,
    dtu_serial      TEXT,
    first_seen_at   INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    times_seen      INTEGER NOT NULL,
    PRIMARY KEY (user_id, inverter_serial)
) STRICT, WITHOUT ROWID;
