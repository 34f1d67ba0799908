-- 0003: admin tools (same version number as migrations/postgres).
--
-- claim_conflicts: Solarman logger serials a tenant tried to claim while another tenant held the
-- claim (the unique index on inverters.logger_serial refused it), for the admin's conflict view.
-- Moving an inverter to another owner needs no schema change here: the reassign defers foreign
-- key checks to its commit with PRAGMA defer_foreign_keys.

CREATE TABLE claim_conflicts (
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    logger_serial INTEGER NOT NULL CHECK (logger_serial BETWEEN 0 AND 4294967295),
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    attempts      INTEGER NOT NULL,
    PRIMARY KEY (user_id, logger_serial)
) STRICT, WITHOUT ROWID;
CREATE INDEX claim_conflicts_logger_idx ON claim_conflicts (logger_serial);
