-- Ten years of audit trail (A1, A2): `audit_entries`, the table of event
-- bodies and almost all of the audit volume, is partitioned by year, so
-- that a closed year is a table of its own: vacuumed once, backed up once,
-- movable to cheaper storage, and reindexed without touching the current
-- year.
--
-- The partition key is the event id. Every event id is a UUIDv7 whose first
-- 48 bits are its creation time in milliseconds (RFC 9562), so a range of
-- ids is a range of time, and the primary key (the event id) contains the
-- partition key as PostgreSQL requires: event ids stay unique across all
-- years, and `audit_chain` keeps its foreign key to them. A partition per
-- calendar year (UTC) from 2025 to 2040, one for everything older (ids of
-- another version included), and a default partition for anything later:
-- an insert never fails for want of a partition. Add next year's partition
-- before the year begins (docs/scaling.md#ten-years-of-audit-trail).
--
-- `audit_chain` and `audit_tree` stay single tables: about 130 and 60 bytes
-- a row, read by sequence number and tree position, which a B-tree serves
-- at any size; bodies are what grows.
--
-- The rows move over unchanged, with their transaction ids; the append-only
-- triggers are defined on the parent (row triggers apply to every
-- partition) and TRUNCATE is refused on the parent and on each partition.

DROP VIEW audit_events;
ALTER TABLE audit_chain DROP CONSTRAINT audit_chain_event_id_fkey;

CREATE TABLE audit_entries_by_year (
    event_id    UUID        NOT NULL,
    xid         XID8        NOT NULL DEFAULT pg_current_xact_id(),
    body        BYTEA       NOT NULL,
    leaf_hash   BYTEA       NOT NULL CHECK (octet_length(leaf_hash) = 32),
    recorded_at TIMESTAMPTZ NOT NULL,
    actor       TEXT,
    action      TEXT        NOT NULL,
    outcome     TEXT        NOT NULL,
    case_id     UUID,
    borrower_id UUID,
    CONSTRAINT audit_entries_by_year_pkey PRIMARY KEY (event_id)
) PARTITION BY RANGE (event_id);

-- The smallest UUIDv7 of the first millisecond of a year (UTC).
CREATE FUNCTION creditops_uuid7_floor(year INT) RETURNS UUID
LANGUAGE SQL IMMUTABLE STRICT
RETURN (
    SELECT (substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-0000-0000-000000000000')::UUID
    FROM (SELECT lpad(to_hex((extract(epoch FROM make_timestamptz(year, 1, 1, 0, 0, 0, 'UTC'))
                               * 1000)::BIGINT), 12, '0') AS h) AS t
);

DO $$
BEGIN
    EXECUTE format(
        'CREATE TABLE audit_entries_before_2025 PARTITION OF audit_entries_by_year '
        'FOR VALUES FROM (MINVALUE) TO (%L)', creditops_uuid7_floor(2025));
    FOR year IN 2025..2040 LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF audit_entries_by_year FOR VALUES FROM (%L) TO (%L)',
            'audit_entries_y' || year, creditops_uuid7_floor(year),
            creditops_uuid7_floor(year + 1));
    END LOOP;
    CREATE TABLE audit_entries_later PARTITION OF audit_entries_by_year DEFAULT;
END
$$;

INSERT INTO audit_entries_by_year (event_id, xid, body, leaf_hash, recorded_at, actor, action,
                                   outcome, case_id, borrower_id)
SELECT event_id, xid, body, leaf_hash, recorded_at, actor, action, outcome, case_id, borrower_id
FROM audit_entries;

DROP TABLE audit_entries;
ALTER TABLE audit_entries_by_year RENAME TO audit_entries;
ALTER TABLE audit_entries RENAME CONSTRAINT audit_entries_by_year_pkey TO audit_entries_pkey;

CREATE INDEX audit_entries_xid ON audit_entries (xid);
CREATE INDEX audit_entries_recorded_at ON audit_entries USING brin (recorded_at);
CREATE INDEX audit_entries_case_id ON audit_entries (case_id) WHERE case_id IS NOT NULL;
CREATE INDEX audit_entries_borrower_id ON audit_entries (borrower_id)
    WHERE borrower_id IS NOT NULL;
CREATE INDEX audit_entries_actor ON audit_entries (actor);

ALTER TABLE audit_chain ADD CONSTRAINT audit_chain_event_id_fkey
    FOREIGN KEY (event_id) REFERENCES audit_entries (event_id);

CREATE VIEW audit_events AS
SELECT c.seq, e.event_id, e.body, e.leaf_hash, c.chain_hash, e.recorded_at, e.actor,
       e.action, e.outcome, e.case_id, e.borrower_id
FROM audit_chain c JOIN audit_entries e ON e.event_id = c.event_id;

CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE audit_entries ENABLE ALWAYS TRIGGER audit_entries_append_only;
ALTER TABLE audit_entries ENABLE ALWAYS TRIGGER audit_entries_no_truncate;

-- A statement trigger on the parent does not fire for a partition named
-- directly, so each partition refuses TRUNCATE itself; the cloned row
-- trigger is made ENABLE ALWAYS on each partition too.
DO $$
DECLARE
    part REGCLASS;
BEGIN
    FOR part IN SELECT inhrelid::REGCLASS FROM pg_inherits
                WHERE inhparent = 'audit_entries'::REGCLASS LOOP
        EXECUTE format('CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change()', part);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_entries_no_truncate', part);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_entries_append_only', part);
    END LOOP;
END
$$;
