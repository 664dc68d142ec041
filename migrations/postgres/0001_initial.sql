-- creditops initial schema, PostgreSQL dialect.
-- Keep in step with migrations/sqlite/0001_initial.sql (same tables, same
-- columns, same constraints; only the types differ).
--
-- Conventions
-- * Money: BIGINT minor units + ISO 4217 code. Never REAL / DOUBLE PRECISION.
-- * Timestamps: TIMESTAMPTZ (microsecond precision), always written in UTC.
-- * Case, borrower and audit event ids: UUID.
--
-- Immutable tables (votes, decisions, audit_events) refuse UPDATE, DELETE and
-- TRUNCATE by triggers that are ENABLE ALWAYS, so they also fire with
-- session_replication_role = replica and for the table owner. The audit
-- trail's trigger names are part of the contract (a tamper test drops them
-- deliberately):
--   audit_events_append_only  (BEFORE UPDATE OR DELETE, FOR EACH ROW)
--   audit_events_no_truncate  (BEFORE TRUNCATE, FOR EACH STATEMENT)
-- and likewise votes_append_only, votes_no_truncate, decisions_append_only,
-- decisions_no_truncate. All call creditops_refuse_change().

CREATE FUNCTION creditops_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

-- Staff directory ------------------------------------------------------------

CREATE TABLE org_units (
    id   TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('market', 'backoffice', 'risk', 'audit', 'admin'))
);

CREATE TABLE staff (
    id     TEXT NOT NULL PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended'))
);

-- Dated org-unit history of a person. `side` is the unit's side when the
-- assignment was recorded, so a later change of the unit cannot rewrite
-- history. `position` keeps the order of the domain's list.
CREATE TABLE unit_assignments (
    staff_id   TEXT        NOT NULL REFERENCES staff (id),
    position   INTEGER     NOT NULL CHECK (position >= 0),
    unit_id    TEXT        NOT NULL REFERENCES org_units (id),
    side       TEXT        NOT NULL CHECK (side IN ('market', 'backoffice', 'risk', 'audit', 'admin')),
    valid_from TIMESTAMPTZ NOT NULL,
    valid_to   TIMESTAMPTZ,
    PRIMARY KEY (staff_id, position)
);

CREATE INDEX unit_assignments_unit_id ON unit_assignments (unit_id);

CREATE TABLE role_assignments (
    staff_id   TEXT        NOT NULL REFERENCES staff (id),
    position   INTEGER     NOT NULL CHECK (position >= 0),
    role       TEXT        NOT NULL CHECK (role IN ('loan_officer', 'credit_analyst', 'risk_controller', 'internal_auditor', 'user_admin')),
    valid_from TIMESTAMPTZ NOT NULL,
    valid_to   TIMESTAMPTZ,
    PRIMARY KEY (staff_id, position)
);

-- Borrowers ------------------------------------------------------------------

CREATE TABLE borrowers (
    id         UUID        NOT NULL PRIMARY KEY,
    name       TEXT        NOT NULL,
    country    TEXT        NOT NULL,
    sector     TEXT        NOT NULL,
    created_by TEXT        NOT NULL REFERENCES staff (id),
    created_at TIMESTAMPTZ NOT NULL
);

-- Credit cases ---------------------------------------------------------------

CREATE TABLE cases (
    id            UUID        NOT NULL PRIMARY KEY,
    borrower_id   UUID        NOT NULL REFERENCES borrowers (id),
    amount_minor  BIGINT      NOT NULL CHECK (amount_minor > 0),
    currency      TEXT        NOT NULL CHECK (length(currency) = 3),
    product       TEXT        NOT NULL,
    term_months   INTEGER     NOT NULL CHECK (term_months > 0),
    purpose       TEXT        NOT NULL,
    status        TEXT        NOT NULL CHECK (status IN ('draft', 'awaiting_second_vote', 'approved', 'declined', 'returned')),
    version       BIGINT      NOT NULL CHECK (version >= 1),
    revision      BIGINT      NOT NULL CHECK (revision >= 1),
    originator    TEXT        NOT NULL REFERENCES staff (id),
    return_reason TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE INDEX cases_status_id ON cases (status, id);
CREATE INDEX cases_borrower_id ON cases (borrower_id);

-- Votes are append-only: `ordinal` is the vote's index in the case's list.
CREATE TABLE votes (
    case_id      UUID        NOT NULL REFERENCES cases (id),
    ordinal      INTEGER     NOT NULL CHECK (ordinal >= 0),
    stage        TEXT        NOT NULL CHECK (stage IN ('first', 'second')),
    voter_id     TEXT        NOT NULL REFERENCES staff (id),
    unit_id      TEXT        NOT NULL REFERENCES org_units (id),
    side         TEXT        NOT NULL CHECK (side IN ('market', 'backoffice', 'risk', 'audit', 'admin')),
    decision     TEXT        NOT NULL CHECK (decision IN ('approve', 'decline')),
    rationale    TEXT        NOT NULL,
    file_version BIGINT      NOT NULL CHECK (file_version >= 1),
    content_hash TEXT        NOT NULL,
    cast_at      TIMESTAMPTZ NOT NULL,
    checks       TEXT        NOT NULL, -- JSON array of {rule, detail}
    PRIMARY KEY (case_id, ordinal)
);

CREATE INDEX votes_voter_id ON votes (voter_id);

CREATE TRIGGER votes_append_only BEFORE UPDATE OR DELETE ON votes
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER votes_no_truncate BEFORE TRUNCATE ON votes
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE votes ENABLE ALWAYS TRIGGER votes_append_only;
ALTER TABLE votes ENABLE ALWAYS TRIGGER votes_no_truncate;

-- One decision per case. `decision_json` is the full domain `Decision`
-- (serde JSON) so it round-trips exactly; the other columns index it.
CREATE TABLE decisions (
    case_id       UUID        NOT NULL PRIMARY KEY REFERENCES cases (id),
    outcome       TEXT        NOT NULL CHECK (outcome IN ('approved', 'declined')),
    decided_at    TIMESTAMPTZ NOT NULL,
    file_version  BIGINT      NOT NULL CHECK (file_version >= 1),
    content_hash  TEXT        NOT NULL,
    decision_json TEXT        NOT NULL
);

CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE decisions ENABLE ALWAYS TRIGGER decisions_append_only;
ALTER TABLE decisions ENABLE ALWAYS TRIGGER decisions_no_truncate;

-- Idempotency (V10) ----------------------------------------------------------

CREATE TABLE idempotency_keys (
    actor        TEXT        NOT NULL,
    operation    TEXT        NOT NULL,
    key          TEXT        NOT NULL,
    request_hash TEXT        NOT NULL,
    status       INTEGER     NOT NULL CHECK (status BETWEEN 100 AND 599),
    body         BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (actor, operation, key)
);

-- Audit trail (A1) -----------------------------------------------------------

-- `seq` is assigned by the store: last + 1, starting at 1, without gaps (so no
-- sequence or identity column, whose values are lost on rollback).
-- `chain_hash` = SHA-256(previous chain_hash || leaf_hash), see creditops-audit.
CREATE TABLE audit_events (
    seq         BIGINT      NOT NULL PRIMARY KEY CHECK (seq >= 1),
    event_id    UUID        NOT NULL UNIQUE,
    body        BYTEA       NOT NULL,
    leaf_hash   BYTEA       NOT NULL CHECK (octet_length(leaf_hash) = 32),
    chain_hash  BYTEA       NOT NULL CHECK (octet_length(chain_hash) = 32),
    recorded_at TIMESTAMPTZ NOT NULL,
    actor       TEXT,
    action      TEXT        NOT NULL,
    outcome     TEXT        NOT NULL,
    case_id     UUID,
    borrower_id UUID
);

CREATE INDEX audit_events_case_id ON audit_events (case_id);
CREATE INDEX audit_events_borrower_id ON audit_events (borrower_id);
CREATE INDEX audit_events_actor ON audit_events (actor);
CREATE INDEX audit_events_recorded_at ON audit_events (recorded_at);

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE audit_events ENABLE ALWAYS TRIGGER audit_events_append_only;
ALTER TABLE audit_events ENABLE ALWAYS TRIGGER audit_events_no_truncate;
