-- creditops 0002: segregation of duties, competence order, groups of
-- connected clients, related parties, rule sets and four-eyes changes.
-- PostgreSQL dialect. Keep in step with migrations/sqlite/0002_segregation.sql
-- (same tables, same columns, same constraints; only the types differ).
--
-- Conventions as in 0001: money as BIGINT minor units (never REAL / DOUBLE
-- PRECISION), timestamps TIMESTAMPTZ, JSON as TEXT.
--
-- New immutable tables, triggers ENABLE ALWAYS as in 0001:
--   rule_sets_append_only (BEFORE UPDATE OR DELETE), rule_sets_no_truncate;
--   change_proposals_final (BEFORE UPDATE of a decided proposal, or of
--   anything but the decision), change_proposals_no_delete,
--   change_proposals_no_truncate.

-- Staff directory: dated competence grants (V4) ---------------------------------

-- `position` keeps the order of the domain's list, as for role assignments.
CREATE TABLE competence_grants (
    staff_id   TEXT        NOT NULL REFERENCES staff (id),
    position   INTEGER     NOT NULL CHECK (position >= 0),
    side       TEXT        NOT NULL CHECK (side IN ('market', 'backoffice', 'risk', 'audit', 'admin')),
    level      INTEGER     NOT NULL CHECK (level BETWEEN 1 AND 9),
    valid_from TIMESTAMPTZ NOT NULL,
    valid_to   TIMESTAMPTZ,
    PRIMARY KEY (staff_id, position)
);

-- Borrowers: relationship manager (S6), groups of connected clients (V4) ----------

ALTER TABLE borrowers ADD COLUMN relationship_manager TEXT REFERENCES staff (id);

CREATE INDEX borrowers_relationship_manager ON borrowers (relationship_manager);

CREATE TABLE borrower_groups (
    id         TEXT        NOT NULL PRIMARY KEY,
    name       TEXT        NOT NULL,
    created_by TEXT        NOT NULL REFERENCES staff (id),
    created_at TIMESTAMPTZ NOT NULL
);

-- Dated memberships, half-open [valid_from, valid_to). The running membership
-- has valid_to NULL; a borrower has at most one.
CREATE TABLE group_memberships (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    borrower_id UUID        NOT NULL REFERENCES borrowers (id),
    group_id    TEXT        NOT NULL REFERENCES borrower_groups (id),
    valid_from  TIMESTAMPTZ NOT NULL,
    valid_to    TIMESTAMPTZ,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);

CREATE UNIQUE INDEX group_memberships_one_running
    ON group_memberships (borrower_id) WHERE valid_to IS NULL;
CREATE INDEX group_memberships_borrower_id ON group_memberships (borrower_id, valid_from);
CREATE INDEX group_memberships_group_id ON group_memberships (group_id, valid_from);

-- Staff related to a borrower (KWG section 15; S6, V11).
CREATE TABLE related_parties (
    borrower_id UUID        NOT NULL REFERENCES borrowers (id),
    staff_id    TEXT        NOT NULL REFERENCES staff (id),
    relation    TEXT        NOT NULL,
    recorded_by TEXT        NOT NULL REFERENCES staff (id),
    recorded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (borrower_id, staff_id)
);

CREATE INDEX related_parties_staff_id ON related_parties (staff_id);

-- Rule sets (S9): append-only -----------------------------------------------------

-- `parameters` is the domain's RuleParameters as JSON (amounts as strings).
CREATE TABLE rule_sets (
    version    BIGINT      NOT NULL PRIMARY KEY CHECK (version >= 1),
    valid_from TIMESTAMPTZ NOT NULL,
    parameters TEXT        NOT NULL
);

CREATE TRIGGER rule_sets_append_only BEFORE UPDATE OR DELETE ON rule_sets
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER rule_sets_no_truncate BEFORE TRUNCATE ON rule_sets
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE rule_sets ENABLE ALWAYS TRIGGER rule_sets_append_only;
ALTER TABLE rule_sets ENABLE ALWAYS TRIGGER rule_sets_no_truncate;

-- Four-eyes change proposals (S3, S9) ---------------------------------------------

-- `payload` is the change as JSON. Decided by another person than the
-- proposer; pending rows have no decision, decided rows have a full one.
CREATE TABLE change_proposals (
    id          UUID        NOT NULL PRIMARY KEY,
    kind        TEXT        NOT NULL CHECK (kind IN ('role_assignment', 'competence_grant', 'rule_set')),
    payload     TEXT        NOT NULL,
    proposed_by TEXT        NOT NULL REFERENCES staff (id),
    proposed_at TIMESTAMPTZ NOT NULL,
    status      TEXT        NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by  TEXT        REFERENCES staff (id),
    decided_at  TIMESTAMPTZ,
    CHECK (decided_by <> proposed_by),
    CHECK ((status = 'pending' AND decided_by IS NULL AND decided_at IS NULL)
        OR (status <> 'pending' AND decided_by IS NOT NULL AND decided_at IS NOT NULL))
);

CREATE INDEX change_proposals_status ON change_proposals (status, proposed_at);
CREATE INDEX change_proposals_proposed_at ON change_proposals (proposed_at);

-- Only a pending proposal may change, and only by being decided.
CREATE TRIGGER change_proposals_final BEFORE UPDATE ON change_proposals
    FOR EACH ROW
    WHEN (OLD.status <> 'pending'
       OR NEW.id IS DISTINCT FROM OLD.id
       OR NEW.kind IS DISTINCT FROM OLD.kind
       OR NEW.payload IS DISTINCT FROM OLD.payload
       OR NEW.proposed_by IS DISTINCT FROM OLD.proposed_by
       OR NEW.proposed_at IS DISTINCT FROM OLD.proposed_at)
    EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER change_proposals_no_delete BEFORE DELETE ON change_proposals
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER change_proposals_no_truncate BEFORE TRUNCATE ON change_proposals
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE change_proposals ENABLE ALWAYS TRIGGER change_proposals_final;
ALTER TABLE change_proposals ENABLE ALWAYS TRIGGER change_proposals_no_delete;
ALTER TABLE change_proposals ENABLE ALWAYS TRIGGER change_proposals_no_truncate;

-- Credit cases: escalation, editors, related parties, board resolution (V5, V11, S6)

-- editors: JSON array of staff ids (S6). board_resolution: the domain's
-- BoardResolution as JSON (V11).
ALTER TABLE cases
    ADD COLUMN editors          TEXT    NOT NULL DEFAULT '[]',
    ADD COLUMN round            INTEGER NOT NULL DEFAULT 0 CHECK (round >= 0),
    ADD COLUMN escalation_level INTEGER CHECK (escalation_level BETWEEN 1 AND 9),
    ADD COLUMN related_party    BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN board_resolution TEXT;

-- The status CHECK of 0001 (an unnamed column constraint, so PostgreSQL named
-- it cases_status_check) gains 'escalated'; the name is kept.
ALTER TABLE cases DROP CONSTRAINT cases_status_check;
ALTER TABLE cases ADD CONSTRAINT cases_status_check
    CHECK (status IN ('draft', 'awaiting_second_vote', 'escalated', 'approved', 'declined', 'returned'));

-- Votes: round (V5), required and held competence level (V4), market exit (S5).
-- Still append-only: adding columns with constant defaults rewrites no row and
-- fires no trigger. Votes stored before this migration read as round 0,
-- level 0 (unknown), no exit.
ALTER TABLE votes
    ADD COLUMN round            INTEGER NOT NULL DEFAULT 0 CHECK (round >= 0),
    ADD COLUMN required_level   INTEGER NOT NULL DEFAULT 0 CHECK (required_level BETWEEN 0 AND 9),
    ADD COLUMN competence_level INTEGER NOT NULL DEFAULT 0 CHECK (competence_level BETWEEN 0 AND 9),
    ADD COLUMN left_market_at   TIMESTAMPTZ;
