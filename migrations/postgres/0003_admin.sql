-- 0003: admin tools (same version number as migrations/sqlite).
--
-- 1. claim_conflicts: Solarman logger serials a tenant tried to claim while another tenant held
--    the claim (the unique index on inverters.logger_serial refused it). Written in the
--    claimant's own scope, read by admins across tenants, so they can see and resolve conflicts.
-- 2. Moving an inverter to another owner (admin "reassign") changes user_id on the inverter and
--    on every row that references it by (inverter_id, user_id). Those foreign keys become
--    DEFERRABLE INITIALLY IMMEDIATE: checked at once as before, unless a transaction runs
--    SET CONSTRAINTS ALL DEFERRED (only the reassign does). This is a catalogue change, no scan.

CREATE TABLE claim_conflicts (
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    logger_serial bigint NOT NULL CHECK (logger_serial BETWEEN 0 AND 4294967295),
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    attempts      bigint NOT NULL,
    PRIMARY KEY (user_id, logger_serial)
);
CREATE INDEX claim_conflicts_logger_idx ON claim_conflicts (logger_serial);

GRANT SELECT, INSERT, UPDATE, DELETE ON claim_conflicts TO deyehard_app;

ALTER TABLE claim_conflicts ENABLE ROW LEVEL SECURITY;
ALTER TABLE claim_conflicts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON claim_conflicts FOR ALL
    USING (user_id = NULLIF(current_setting('app.current_user_id', true), '')::bigint
           OR current_setting('app.cross_tenant', true) = 'on')
    WITH CHECK (user_id = NULLIF(current_setting('app.current_user_id', true), '')::bigint
                OR current_setting('app.cross_tenant', true) = 'on');

-- TimescaleDB keeps copies of a hypertable's constraints on its chunks; only the tables we
-- created are altered here. Should a server refuse the change, the migration still succeeds
-- (with a warning) and a reassign on that server fails with a clear error instead.
DO $$
DECLARE
    fk record;
BEGIN
    FOR fk IN
        SELECT c.conrelid::regclass AS tbl, c.conname
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE c.contype = 'f' AND c.confrelid = 'inverters'::regclass AND NOT c.condeferrable
          AND n.nspname NOT LIKE '\_timescaledb%'
    LOOP
        BEGIN
            EXECUTE format('ALTER TABLE %s ALTER CONSTRAINT %I DEFERRABLE INITIALLY IMMEDIATE',
                           fk.tbl, fk.conname);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'cannot make % on % deferrable: %', fk.conname, fk.tbl, SQLERRM;
        END;
    END LOOP;
END
$$;
