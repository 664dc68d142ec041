-- creditops initial schema, SQLite dialect.
-- Keep in step with migrations/postgres/0001_initial.sql (same tables, same
-- columns, same constraints; only the types differ).
--
-- Conventions
-- * Money: INTEGER minor units + ISO 4217 code. Never REAL.
-- * Timestamps: TEXT as written by sqlx's chrono encoding (RFC 3339, always
--   UTC "+00:00"); that text sorts chronologically, so range filters work.
-- * UUIDs (cases, borrowers, audit events): TEXT, lower-case hyphenated.
-- * STRICT tables: a value of the wrong type is an error, not a silent cast.
--
-- Immutable tables (votes, decisions, audit_events) refuse UPDATE and DELETE
-- by triggers. The audit trail's trigger names are part of the contract (a
-- tamper test drops them deliberately):
--   audit_events_no_update, audit_events_no_delete
-- and likewise votes_no_update, votes_no_delete, decisions_no_update,
-- decisions_no_delete.

-- Staff directory ------------------------------------------------------------

CREATE TABLE org_units (
    id   TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('market', 'backoffice', 'risk', 'audit', 'admin'))
) STRICT;

CREATE TABLE staff (
    id     TEXT NOT NULL PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended'))
) STRICT;

-- Dated org-unit history of a person. `side` is the unit's side when the
-- assignment was recorded, so a later change of the unit cannot rewrite
-- history. `position` keeps the order of the domain's list.
CREATE TABLE unit_assignments (
    staff_id   TEXT    NOT NULL REFERENCES staff (id),
    position   INTEGER NOT NULL CHECK (position >= 0),
    unit_id    TEXT    NOT NULL REFERENCES org_units (id),
    side       TEXT    NOT NULL CHECK (side IN ('market', 'backoffice', 'risk', 'audit', 'admin')),
    valid_from TEXT    NOT NULL,
    valid_to   TEXT,
    PRIMARY KEY (staff_id, position)
) STRICT;

CREATE INDEX unit_assignments_unit_id ON unit_assignments (unit_id);

CREATE TABLE role_assignments (
    staff_id   TEXT    NOT NULL REFERENCES staff (id),
    position   INTEGER NOT NULL CHECK (position >= 0),
    role       TEXT    NOT NULL CHECK (role IN ('loan_officer', 'credit_analyst', 'risk_controller', 'internal_auditor', 'user_admin')),
    valid_from TEXT    NOT NULL,
    valid_to   TEXT,
    PRIMARY KEY (staff_id, position)
) STRICT;

-- Borrowers ------------------------------------------------------------------

CREATE TABLE borrowers (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    country    TEXT NOT NULL,
    sector     TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES staff (id),
    created_at TEXT NOT NULL
) STRICT;

-- Credit cases ---------------------------------------------------------------

CREATE TABLE cases (
    id            TEXT    NOT NULL PRIMARY KEY,
    borrower_id   TEXT    NOT NULL REFERENCES borrowers (id),
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    currency      TEXT    NOT NULL CHECK (length(currency) = 3),
    product       TEXT    NOT NULL,
    term_months   INTEGER NOT NULL CHECK (term_months > 0),
    purpose       TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('draft', 'awaiting_second_vote', 'approved', 'declined', 'returned')),
    version       INTEGER NOT NULL CHECK (version >= 1),
    revision      INTEGER NOT NULL CHECK (revision >= 1),
    originator    TEXT    NOT NULL REFERENCES staff (id),
    return_reason TEXT,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
) STRICT;

CREATE INDEX cases_status_id ON cases (status, id);
CREATE INDEX cases_borrower_id ON cases (borrower_id);

-- Votes are append-only: `ordinal` is the vote's index in the case's list.
CREATE TABLE votes (
    case_id       TEXT    NOT NULL REFERENCES cases (id),
    ordinal       INTEGER NOT NULL CHECK (ordinal >= 0),
    stage         TEXT    NOT NULL CHECK (stage IN ('first', 'second')),
    voter_id      TEXT    NOT NULL REFERENCES staff (id),
    unit_id       TEXT    NOT NULL REFERENCES org_units (id),
    side          TEXT    NOT NULL CHECK (side IN ('market', 'backoffice', 'risk', 'audit', 'admin')),
    decision      TEXT    NOT NULL CHECK (decision IN ('approve', 'decline')),
    rationale     TEXT    NOT NULL,
    file_version  INTEGER NOT NULL CHECK (file_version >= 1),
    content_hash  TEXT    NOT NULL,
    cast_at       TEXT    NOT NULL,
    checks        TEXT    NOT NULL, -- JSON array of {rule, detail}
    PRIMARY KEY (case_id, ordinal)
) STRICT;

CREATE INDEX votes_voter_id ON votes (voter_id);

CREATE TRIGGER votes_no_update BEFORE UPDATE ON votes
BEGIN
    SELECT RAISE(ABORT, 'votes are append-only');
END;

CREATE TRIGGER votes_no_delete BEFORE DELETE ON votes
BEGIN
    SELECT RAISE(ABORT, 'votes are append-only');
END;

-- One decision per case. `decision_json` is the full domain `Decision`
-- (serde JSON) so it round-trips exactly; the other columns index it.
CREATE TABLE decisions (
    case_id       TEXT    NOT NULL PRIMARY KEY REFERENCES cases (id),
    outcome       TEXT    NOT NULL CHECK (outcome IN ('approved', 'declined')),
    decided_at    TEXT    NOT NULL,
    file_version  INTEGER NOT NULL CHECK (file_version >= 1),
    content_hash  TEXT    NOT NULL,
    decision_json TEXT    NOT NULL
) STRICT;

CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
BEGIN
    SELECT RAISE(ABORT, 'decisions are append-only');
END;

CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN
    SELECT RAISE(ABORT, 'decisions are append-only');
END;

-- Idempotency (V10) ----------------------------------------------------------

CREATE TABLE idempotency_keys (
    actor        TEXT    NOT NULL,
    operation    TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       INTEGER NOT NULL CHECK (status BETWEEN 100 AND 599),
    body         BLOB    NOT NULL,
    created_at   TEXT    NOT NULL,
    PRIMARY KEY (actor, operation, key)
) STRICT;

-- Audit trail (A1) -----------------------------------------------------------

-- `seq` is assigned by the store: last + 1, starting at 1, without gaps.
-- `chain_hash` = SHA-256(previous chain_hash || leaf_hash), see creditops-audit.
CREATE TABLE audit_events (
    seq         INTEGER NOT NULL PRIMARY KEY CHECK (seq >= 1),
    event_id    TEXT    NOT NULL UNIQUE,
    body        BLOB    NOT NULL,
    leaf_hash   BLOB    NOT NULL CHECK (length(leaf_hash) = 32),
    chain_hash  BLOB    NOT NULL CHECK (length(chain_hash) = 32),
    recorded_at TEXT    NOT NULL,
    actor       TEXT,
    action      TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    case_id     TEXT,
    borrower_id TEXT
) STRICT;

CREATE INDEX audit_events_case_id ON audit_events (case_id);
CREATE INDEX audit_events_borrower_id ON audit_events (borrower_id);
CREATE INDEX audit_events_actor ON audit_events (actor);
CREATE INDEX audit_events_recorded_at ON audit_events (recorded_at);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
