-- creditops 0003: risk control (R1-R9): limit versions with four-eyes
-- approval, Tier 1 capital, the liquidity position, reservations of approved
-- headroom, balances imported from core banking, and limit breaches.
-- SQLite dialect. Keep in step with migrations/postgres/0003_risk.sql (same
-- tables, same columns, same constraints; only the types differ).
--
-- Conventions as in 0001/0002: money as INTEGER minor units (never REAL);
-- every amount here is in the reporting currency EUR (2 decimals), so the
-- columns carry no currency code and SQL sums are exact. Percentages and the
-- figures of a breach (for liquidity they are percentages) are decimal
-- strings as TEXT. Timestamps TEXT in sqlx's chrono encoding (RFC 3339 UTC),
-- UUIDs TEXT, STRICT tables.
--
-- Immutable or final rows, by triggers:
--   limit_versions_final (a decided version never changes; a pending one only
--   by its decision), limit_versions_no_delete;
--   capital_versions_no_update, capital_versions_no_delete,
--   liquidity_positions_no_update, liquidity_positions_no_delete;
--   reservations_final (only an active reservation changes, and only by being
--   closed), reservations_no_delete;
--   breaches_final (only resolved_at changes, once, from NULL),
--   breaches_no_delete.
-- imported_balances mirror the source system and are upserted by source id.

-- Borrowers: credit institutions (CRR Art. 4(1)(3)) ------------------------------

ALTER TABLE borrowers ADD COLUMN institution INTEGER NOT NULL DEFAULT 0 CHECK (institution IN (0, 1));

-- Exposure queries by scope (R2).
CREATE INDEX borrowers_sector ON borrowers (sector);
CREATE INDEX borrowers_country ON borrowers (country);

-- Limit versions (R1, R3, R8): four-eyes, append-only --------------------------------

-- `subject_key` is the borrower id, group id, sector code or country code.
-- Proposed by one person, decided by another; pending rows have no decision,
-- decided rows have a full one (as change_proposals in 0002).
CREATE TABLE limit_versions (
    id                TEXT    NOT NULL PRIMARY KEY,
    subject_kind      TEXT    NOT NULL CHECK (subject_kind IN ('borrower', 'group', 'sector', 'country')),
    subject_key       TEXT    NOT NULL,
    version           INTEGER NOT NULL CHECK (version >= 1),
    amount_minor      INTEGER NOT NULL CHECK (amount_minor >= 0),
    tolerance_percent TEXT    NOT NULL,
    reason            TEXT    NOT NULL,
    proposed_by       TEXT    NOT NULL REFERENCES staff (id),
    proposed_at       TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by        TEXT REFERENCES staff (id),
    decided_at        TEXT,
    UNIQUE (subject_kind, subject_key, version),
    CHECK (decided_by <> proposed_by),
    CHECK ((status = 'pending' AND decided_by IS NULL AND decided_at IS NULL)
        OR (status <> 'pending' AND decided_by IS NOT NULL AND decided_at IS NOT NULL))
) STRICT;

-- The limit in force per subject: its approved version with the highest number.
CREATE INDEX limit_versions_in_force
    ON limit_versions (subject_kind, subject_key, version DESC) WHERE status = 'approved';
CREATE INDEX limit_versions_status ON limit_versions (status, proposed_at);
CREATE INDEX limit_versions_proposed_at ON limit_versions (proposed_at);

-- Only a pending version may change, and only by being decided.
CREATE TRIGGER limit_versions_final BEFORE UPDATE ON limit_versions
WHEN OLD.status <> 'pending'
  OR NEW.id IS NOT OLD.id
  OR NEW.subject_kind IS NOT OLD.subject_kind
  OR NEW.subject_key IS NOT OLD.subject_key
  OR NEW.version IS NOT OLD.version
  OR NEW.amount_minor IS NOT OLD.amount_minor
  OR NEW.tolerance_percent IS NOT OLD.tolerance_percent
  OR NEW.reason IS NOT OLD.reason
  OR NEW.proposed_by IS NOT OLD.proposed_by
  OR NEW.proposed_at IS NOT OLD.proposed_at
BEGIN
    SELECT RAISE(ABORT, 'limit_versions: a decided version is final (append-only)');
END;

CREATE TRIGGER limit_versions_no_delete BEFORE DELETE ON limit_versions
BEGIN
    SELECT RAISE(ABORT, 'limit_versions are append-only');
END;

-- Tier 1 capital (R3) and the liquidity position (R6): append-only versions -------

CREATE TABLE capital_versions (
    version     INTEGER NOT NULL PRIMARY KEY CHECK (version >= 1),
    tier1_minor INTEGER NOT NULL CHECK (tier1_minor >= 0),
    recorded_by TEXT    NOT NULL REFERENCES staff (id),
    recorded_at TEXT    NOT NULL
) STRICT;

CREATE TRIGGER capital_versions_no_update BEFORE UPDATE ON capital_versions
BEGIN
    SELECT RAISE(ABORT, 'capital_versions are append-only');
END;

CREATE TRIGGER capital_versions_no_delete BEFORE DELETE ON capital_versions
BEGIN
    SELECT RAISE(ABORT, 'capital_versions are append-only');
END;

-- HQLA stock and 30-day stressed outflows and inflows; `floor_percent` is the
-- internal LCR floor in percent.
CREATE TABLE liquidity_positions (
    version        INTEGER NOT NULL PRIMARY KEY CHECK (version >= 1),
    hqla_minor     INTEGER NOT NULL CHECK (hqla_minor >= 0),
    outflows_minor INTEGER NOT NULL CHECK (outflows_minor >= 0),
    inflows_minor  INTEGER NOT NULL CHECK (inflows_minor >= 0),
    floor_percent  TEXT    NOT NULL,
    recorded_by    TEXT    NOT NULL REFERENCES staff (id),
    recorded_at    TEXT    NOT NULL
) STRICT;

CREATE TRIGGER liquidity_positions_no_update BEFORE UPDATE ON liquidity_positions
BEGIN
    SELECT RAISE(ABORT, 'liquidity_positions are append-only');
END;

CREATE TRIGGER liquidity_positions_no_delete BEFORE DELETE ON liquidity_positions
BEGIN
    SELECT RAISE(ABORT, 'liquidity_positions are append-only');
END;

-- Reservations (R5): the headroom an approved case holds ------------------------

-- Active until consumed (disbursed: the amount is outstanding) or expired (the
-- headroom is free again). A closed reservation has its closing time;
-- `closed_by` is who disbursed it (none when it expired).
CREATE TABLE reservations (
    case_id      TEXT    NOT NULL PRIMARY KEY REFERENCES cases (id),
    borrower_id  TEXT    NOT NULL REFERENCES borrowers (id),
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    status       TEXT    NOT NULL CHECK (status IN ('active', 'consumed', 'expired')),
    reserved_at  TEXT    NOT NULL,
    expires_at   TEXT    NOT NULL,
    closed_at    TEXT,
    closed_by    TEXT REFERENCES staff (id),
    CHECK ((status = 'active' AND closed_at IS NULL AND closed_by IS NULL)
        OR (status <> 'active' AND closed_at IS NOT NULL))
) STRICT;

CREATE INDEX reservations_due ON reservations (expires_at) WHERE status = 'active';
CREATE INDEX reservations_consumed ON reservations (closed_at) WHERE status = 'consumed';
CREATE INDEX reservations_borrower_id ON reservations (borrower_id, status);

-- Only an active reservation may change, and only by being closed.
CREATE TRIGGER reservations_final BEFORE UPDATE ON reservations
WHEN OLD.status <> 'active'
  OR NEW.case_id IS NOT OLD.case_id
  OR NEW.borrower_id IS NOT OLD.borrower_id
  OR NEW.amount_minor IS NOT OLD.amount_minor
  OR NEW.reserved_at IS NOT OLD.reserved_at
  OR NEW.expires_at IS NOT OLD.expires_at
BEGIN
    SELECT RAISE(ABORT, 'reservations: a closed reservation is final (append-only)');
END;

CREATE TRIGGER reservations_no_delete BEFORE DELETE ON reservations
BEGIN
    SELECT RAISE(ABORT, 'reservations are append-only');
END;

-- Balances imported from core banking (R2) ----------------------------------------

-- Keyed by the source system's record id: importing the same record again
-- updates it (or leaves it unchanged), never adds it twice.
CREATE TABLE imported_balances (
    source_id    TEXT    NOT NULL PRIMARY KEY,
    borrower_id  TEXT    NOT NULL REFERENCES borrowers (id),
    amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
    as_of        TEXT    NOT NULL,
    imported_at  TEXT    NOT NULL
) STRICT;

CREATE INDEX imported_balances_borrower_id ON imported_balances (borrower_id);

-- Limit breaches (R7) ------------------------------------------------------------

-- limit_value, usage_value, amount_over: decimal strings (amounts in EUR, or
-- for liquidity percentages and percentage points). Open while resolved_at is
-- NULL.
CREATE TABLE breaches (
    id          TEXT NOT NULL PRIMARY KEY,
    subject     TEXT NOT NULL,
    rule        TEXT NOT NULL,
    check_name  TEXT NOT NULL,
    limit_value TEXT NOT NULL,
    usage_value TEXT NOT NULL,
    amount_over TEXT NOT NULL,
    severity    TEXT NOT NULL CHECK (severity IN ('soft', 'hard')),
    cause       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    resolved_at TEXT
) STRICT;

CREATE INDEX breaches_detected_at ON breaches (detected_at, id);
CREATE INDEX breaches_open ON breaches (detected_at, id) WHERE resolved_at IS NULL;

-- A breach changes once: it is resolved. Nothing else about it ever changes.
CREATE TRIGGER breaches_final BEFORE UPDATE ON breaches
WHEN OLD.resolved_at IS NOT NULL
  OR NEW.resolved_at IS NULL
  OR NEW.id IS NOT OLD.id
  OR NEW.subject IS NOT OLD.subject
  OR NEW.rule IS NOT OLD.rule
  OR NEW.check_name IS NOT OLD.check_name
  OR NEW.limit_value IS NOT OLD.limit_value
  OR NEW.usage_value IS NOT OLD.usage_value
  OR NEW.amount_over IS NOT OLD.amount_over
  OR NEW.severity IS NOT OLD.severity
  OR NEW.cause IS NOT OLD.cause
  OR NEW.owner IS NOT OLD.owner
  OR NEW.detected_at IS NOT OLD.detected_at
BEGIN
    SELECT RAISE(ABORT, 'breaches: only an open breach may be resolved (append-only)');
END;

CREATE TRIGGER breaches_no_delete BEFORE DELETE ON breaches
BEGIN
    SELECT RAISE(ABORT, 'breaches are append-only');
END;
