-- creditops 0003: risk control (R1-R9): limit versions with four-eyes
-- approval, Tier 1 capital, the liquidity position, reservations of approved
-- headroom, balances imported from core banking, and limit breaches.
-- PostgreSQL dialect. Keep in step with migrations/sqlite/0003_risk.sql (same
-- tables, same columns, same constraints; only the types differ).
--
-- Conventions as in 0001/0002: money as BIGINT minor units (never REAL /
-- DOUBLE PRECISION / NUMERIC); every amount here is in the reporting currency
-- EUR (2 decimals), so the columns carry no currency code and SQL sums are
-- exact. Percentages and the figures of a breach (for liquidity they are
-- percentages) are decimal strings as TEXT. Timestamps TIMESTAMPTZ.
--
-- Immutable or final rows, triggers ENABLE ALWAYS as in 0001, all calling
-- creditops_refuse_change():
--   limit_versions_final (BEFORE UPDATE of a decided version, or of anything
--   but the decision), limit_versions_no_delete, limit_versions_no_truncate;
--   capital_versions_append_only, capital_versions_no_truncate;
--   liquidity_positions_append_only, liquidity_positions_no_truncate;
--   reservations_final (BEFORE UPDATE of a closed reservation, or of anything
--   but its closing), reservations_no_delete, reservations_no_truncate;
--   breaches_final (BEFORE UPDATE of anything but resolved_at, or of a
--   resolved breach, or back to open), breaches_no_delete,
--   breaches_no_truncate.
-- imported_balances mirror the source system and are upserted by source id.

-- Borrowers: credit institutions (CRR Art. 4(1)(3)) ------------------------------

ALTER TABLE borrowers ADD COLUMN institution BOOLEAN NOT NULL DEFAULT FALSE;

-- Exposure queries by scope (R2).
CREATE INDEX borrowers_sector ON borrowers (sector);
CREATE INDEX borrowers_country ON borrowers (country);

-- Limit versions (R1, R3, R8): four-eyes, append-only --------------------------------

-- `subject_key` is the borrower id, group id, sector code or country code.
-- Proposed by one person, decided by another; pending rows have no decision,
-- decided rows have a full one (as change_proposals in 0002).
CREATE TABLE limit_versions (
    id                UUID        NOT NULL PRIMARY KEY,
    subject_kind      TEXT        NOT NULL CHECK (subject_kind IN ('borrower', 'group', 'sector', 'country')),
    subject_key       TEXT        NOT NULL,
    version           BIGINT      NOT NULL CHECK (version >= 1),
    amount_minor      BIGINT      NOT NULL CHECK (amount_minor >= 0),
    tolerance_percent TEXT        NOT NULL,
    reason            TEXT        NOT NULL,
    proposed_by       TEXT        NOT NULL REFERENCES staff (id),
    proposed_at       TIMESTAMPTZ NOT NULL,
    status            TEXT        NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by        TEXT        REFERENCES staff (id),
    decided_at        TIMESTAMPTZ,
    UNIQUE (subject_kind, subject_key, version),
    CHECK (decided_by <> proposed_by),
    CHECK ((status = 'pending' AND decided_by IS NULL AND decided_at IS NULL)
        OR (status <> 'pending' AND decided_by IS NOT NULL AND decided_at IS NOT NULL))
);

-- The limit in force per subject: its approved version with the highest number.
CREATE INDEX limit_versions_in_force
    ON limit_versions (subject_kind, subject_key, version DESC) WHERE status = 'approved';
CREATE INDEX limit_versions_status ON limit_versions (status, proposed_at);
CREATE INDEX limit_versions_proposed_at ON limit_versions (proposed_at);

-- Only a pending version may change, and only by being decided.
CREATE TRIGGER limit_versions_final BEFORE UPDATE ON limit_versions
    FOR EACH ROW
    WHEN (OLD.status <> 'pending'
       OR NEW.id IS DISTINCT FROM OLD.id
       OR NEW.subject_kind IS DISTINCT FROM OLD.subject_kind
       OR NEW.subject_key IS DISTINCT FROM OLD.subject_key
       OR NEW.version IS DISTINCT FROM OLD.version
       OR NEW.amount_minor IS DISTINCT FROM OLD.amount_minor
       OR NEW.tolerance_percent IS DISTINCT FROM OLD.tolerance_percent
       OR NEW.reason IS DISTINCT FROM OLD.reason
       OR NEW.proposed_by IS DISTINCT FROM OLD.proposed_by
       OR NEW.proposed_at IS DISTINCT FROM OLD.proposed_at)
    EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER limit_versions_no_delete BEFORE DELETE ON limit_versions
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER limit_versions_no_truncate BEFORE TRUNCATE ON limit_versions
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE limit_versions ENABLE ALWAYS TRIGGER limit_versions_final;
ALTER TABLE limit_versions ENABLE ALWAYS TRIGGER limit_versions_no_delete;
ALTER TABLE limit_versions ENABLE ALWAYS TRIGGER limit_versions_no_truncate;

-- Tier 1 capital (R3) and the liquidity position (R6): append-only versions -------

CREATE TABLE capital_versions (
    version     BIGINT      NOT NULL PRIMARY KEY CHECK (version >= 1),
    tier1_minor BIGINT      NOT NULL CHECK (tier1_minor >= 0),
    recorded_by TEXT        NOT NULL REFERENCES staff (id),
    recorded_at TIMESTAMPTZ NOT NULL
);

CREATE TRIGGER capital_versions_append_only BEFORE UPDATE OR DELETE ON capital_versions
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER capital_versions_no_truncate BEFORE TRUNCATE ON capital_versions
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE capital_versions ENABLE ALWAYS TRIGGER capital_versions_append_only;
ALTER TABLE capital_versions ENABLE ALWAYS TRIGGER capital_versions_no_truncate;

-- HQLA stock and 30-day stressed outflows and inflows; `floor_percent` is the
-- internal LCR floor in percent.
CREATE TABLE liquidity_positions (
    version        BIGINT      NOT NULL PRIMARY KEY CHECK (version >= 1),
    hqla_minor     BIGINT      NOT NULL CHECK (hqla_minor >= 0),
    outflows_minor BIGINT      NOT NULL CHECK (outflows_minor >= 0),
    inflows_minor  BIGINT      NOT NULL CHECK (inflows_minor >= 0),
    floor_percent  TEXT        NOT NULL,
    recorded_by    TEXT        NOT NULL REFERENCES staff (id),
    recorded_at    TIMESTAMPTZ NOT NULL
);

CREATE TRIGGER liquidity_positions_append_only BEFORE UPDATE OR DELETE ON liquidity_positions
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER liquidity_positions_no_truncate BEFORE TRUNCATE ON liquidity_positions
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE liquidity_positions ENABLE ALWAYS TRIGGER liquidity_positions_append_only;
ALTER TABLE liquidity_positions ENABLE ALWAYS TRIGGER liquidity_positions_no_truncate;

-- Reservations (R5): the headroom an approved case holds ------------------------

-- Active until consumed (disbursed: the amount is outstanding) or expired (the
-- headroom is free again). A closed reservation has its closing time;
-- `closed_by` is who disbursed it (none when it expired).
CREATE TABLE reservations (
    case_id      UUID        NOT NULL PRIMARY KEY REFERENCES cases (id),
    borrower_id  UUID        NOT NULL REFERENCES borrowers (id),
    amount_minor BIGINT      NOT NULL CHECK (amount_minor > 0),
    status       TEXT        NOT NULL CHECK (status IN ('active', 'consumed', 'expired')),
    reserved_at  TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    closed_at    TIMESTAMPTZ,
    closed_by    TEXT        REFERENCES staff (id),
    CHECK ((status = 'active' AND closed_at IS NULL AND closed_by IS NULL)
        OR (status <> 'active' AND closed_at IS NOT NULL))
);

CREATE INDEX reservations_due ON reservations (expires_at) WHERE status = 'active';
CREATE INDEX reservations_consumed ON reservations (closed_at) WHERE status = 'consumed';
CREATE INDEX reservations_borrower_id ON reservations (borrower_id, status);

-- Only an active reservation may change, and only by being closed.
CREATE TRIGGER reservations_final BEFORE UPDATE ON reservations
    FOR EACH ROW
    WHEN (OLD.status <> 'active'
       OR NEW.case_id IS DISTINCT FROM OLD.case_id
       OR NEW.borrower_id IS DISTINCT FROM OLD.borrower_id
       OR NEW.amount_minor IS DISTINCT FROM OLD.amount_minor
       OR NEW.reserved_at IS DISTINCT FROM OLD.reserved_at
       OR NEW.expires_at IS DISTINCT FROM OLD.expires_at)
    EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER reservations_no_delete BEFORE DELETE ON reservations
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER reservations_no_truncate BEFORE TRUNCATE ON reservations
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE reservations ENABLE ALWAYS TRIGGER reservations_final;
ALTER TABLE reservations ENABLE ALWAYS TRIGGER reservations_no_delete;
ALTER TABLE reservations ENABLE ALWAYS TRIGGER reservations_no_truncate;

-- Balances imported from core banking (R2) ----------------------------------------

-- Keyed by the source system's record id: importing the same record again
-- updates it (or leaves it unchanged), never adds it twice.
CREATE TABLE imported_balances (
    source_id    TEXT        NOT NULL PRIMARY KEY,
    borrower_id  UUID        NOT NULL REFERENCES borrowers (id),
    amount_minor BIGINT      NOT NULL CHECK (amount_minor >= 0),
    as_of        TIMESTAMPTZ NOT NULL,
    imported_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX imported_balances_borrower_id ON imported_balances (borrower_id);

-- Limit breaches (R7) ------------------------------------------------------------

-- limit_value, usage_value, amount_over: decimal strings (amounts in EUR, or
-- for liquidity percentages and percentage points). Open while resolved_at is
-- NULL.
CREATE TABLE breaches (
    id          UUID        NOT NULL PRIMARY KEY,
    subject     TEXT        NOT NULL,
    rule        TEXT        NOT NULL,
    check_name  TEXT        NOT NULL,
    limit_value TEXT        NOT NULL,
    usage_value TEXT        NOT NULL,
    amount_over TEXT        NOT NULL,
    severity    TEXT        NOT NULL CHECK (severity IN ('soft', 'hard')),
    cause       TEXT        NOT NULL,
    owner       TEXT        NOT NULL,
    detected_at TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ
);

CREATE INDEX breaches_detected_at ON breaches (detected_at, id);
CREATE INDEX breaches_open ON breaches (detected_at, id) WHERE resolved_at IS NULL;

-- A breach changes once: it is resolved. Nothing else about it ever changes.
CREATE TRIGGER breaches_final BEFORE UPDATE ON breaches
    FOR EACH ROW
    WHEN (OLD.resolved_at IS NOT NULL
       OR NEW.resolved_at IS NULL
       OR NEW.id IS DISTINCT FROM OLD.id
       OR NEW.subject IS DISTINCT FROM OLD.subject
       OR NEW.rule IS DISTINCT FROM OLD.rule
       OR NEW.check_name IS DISTINCT FROM OLD.check_name
       OR NEW.limit_value IS DISTINCT FROM OLD.limit_value
       OR NEW.usage_value IS DISTINCT FROM OLD.usage_value
       OR NEW.amount_over IS DISTINCT FROM OLD.amount_over
       OR NEW.severity IS DISTINCT FROM OLD.severity
       OR NEW.cause IS DISTINCT FROM OLD.cause
       OR NEW.owner IS DISTINCT FROM OLD.owner
       OR NEW.detected_at IS DISTINCT FROM OLD.detected_at)
    EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER breaches_no_delete BEFORE DELETE ON breaches
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER breaches_no_truncate BEFORE TRUNCATE ON breaches
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE breaches ENABLE ALWAYS TRIGGER breaches_final;
ALTER TABLE breaches ENABLE ALWAYS TRIGGER breaches_no_delete;
ALTER TABLE breaches ENABLE ALWAYS TRIGGER breaches_no_truncate;
