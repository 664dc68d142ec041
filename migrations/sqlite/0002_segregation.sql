-- creditops 0002: segregation of duties, competence order, groups of
-- connected clients, related parties, rule sets and four-eyes changes.
-- SQLite dialect. Keep in step with migrations/postgres/0002_segregation.sql
-- (same tables, same columns, same constraints; only the types differ).
--
-- Conventions as in 0001: money as INTEGER minor units (never REAL),
-- timestamps as TEXT in sqlx's chrono encoding (RFC 3339 UTC), JSON as TEXT,
-- STRICT tables.
--
-- sqlx runs this file and its bookkeeping in one transaction, on a connection
-- with foreign keys ON. The one change SQLite cannot make in place is the new
-- CHECK on cases.status ('escalated'): the table is rebuilt below under
-- deferred foreign keys, see there.
--
-- New immutable tables: rule_sets refuses UPDATE and DELETE
-- (rule_sets_no_update, rule_sets_no_delete); a decided change proposal is
-- final (change_proposals_final) and no proposal is ever deleted
-- (change_proposals_no_delete).

-- Staff directory: dated competence grants (V4) ---------------------------------

-- `position` keeps the order of the domain's list, as for role assignments.
CREATE TABLE competence_grants (
    staff_id   TEXT    NOT NULL REFERENCES staff (id),
    position   INTEGER NOT NULL CHECK (position >= 0),
    side       TEXT    NOT NULL CHECK (side IN ('market', 'backoffice', 'risk', 'audit', 'admin')),
    level      INTEGER NOT NULL CHECK (level BETWEEN 1 AND 9),
    valid_from TEXT    NOT NULL,
    valid_to   TEXT,
    PRIMARY KEY (staff_id, position)
) STRICT;

-- Borrowers: relationship manager (S6), groups of connected clients (V4) ----------

ALTER TABLE borrowers ADD COLUMN relationship_manager TEXT REFERENCES staff (id);

CREATE INDEX borrowers_relationship_manager ON borrowers (relationship_manager);

CREATE TABLE borrower_groups (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES staff (id),
    created_at TEXT NOT NULL
) STRICT;

-- Dated memberships, half-open [valid_from, valid_to). The running membership
-- has valid_to NULL; a borrower has at most one.
CREATE TABLE group_memberships (
    id          INTEGER NOT NULL PRIMARY KEY,
    borrower_id TEXT    NOT NULL REFERENCES borrowers (id),
    group_id    TEXT    NOT NULL REFERENCES borrower_groups (id),
    valid_from  TEXT    NOT NULL,
    valid_to    TEXT,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
) STRICT;

CREATE UNIQUE INDEX group_memberships_one_running
    ON group_memberships (borrower_id) WHERE valid_to IS NULL;
CREATE INDEX group_memberships_borrower_id ON group_memberships (borrower_id, valid_from);
CREATE INDEX group_memberships_group_id ON group_memberships (group_id, valid_from);

-- Staff related to a borrower (KWG section 15; S6, V11).
CREATE TABLE related_parties (
    borrower_id TEXT NOT NULL REFERENCES borrowers (id),
    staff_id    TEXT NOT NULL REFERENCES staff (id),
    relation    TEXT NOT NULL,
    recorded_by TEXT NOT NULL REFERENCES staff (id),
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (borrower_id, staff_id)
) STRICT;

CREATE INDEX related_parties_staff_id ON related_parties (staff_id);

-- Rule sets (S9): append-only -----------------------------------------------------

-- `parameters` is the domain's RuleParameters as JSON (amounts as strings).
CREATE TABLE rule_sets (
    version    INTEGER NOT NULL PRIMARY KEY CHECK (version >= 1),
    valid_from TEXT    NOT NULL,
    parameters TEXT    NOT NULL
) STRICT;

CREATE TRIGGER rule_sets_no_update BEFORE UPDATE ON rule_sets
BEGIN
    SELECT RAISE(ABORT, 'rule_sets are append-only');
END;

CREATE TRIGGER rule_sets_no_delete BEFORE DELETE ON rule_sets
BEGIN
    SELECT RAISE(ABORT, 'rule_sets are append-only');
END;

-- Four-eyes change proposals (S3, S9) ---------------------------------------------

-- `payload` is the change as JSON. Decided by another person than the
-- proposer; pending rows have no decision, decided rows have a full one.
CREATE TABLE change_proposals (
    id          TEXT NOT NULL PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('role_assignment', 'competence_grant', 'rule_set')),
    payload     TEXT NOT NULL,
    proposed_by TEXT NOT NULL REFERENCES staff (id),
    proposed_at TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by  TEXT REFERENCES staff (id),
    decided_at  TEXT,
    CHECK (decided_by <> proposed_by),
    CHECK ((status = 'pending' AND decided_by IS NULL AND decided_at IS NULL)
        OR (status <> 'pending' AND decided_by IS NOT NULL AND decided_at IS NOT NULL))
) STRICT;

CREATE INDEX change_proposals_status ON change_proposals (status, proposed_at);
CREATE INDEX change_proposals_proposed_at ON change_proposals (proposed_at);

-- Only a pending proposal may change, and only by being decided.
CREATE TRIGGER change_proposals_final BEFORE UPDATE ON change_proposals
WHEN OLD.status <> 'pending'
  OR NEW.id IS NOT OLD.id
  OR NEW.kind IS NOT OLD.kind
  OR NEW.payload IS NOT OLD.payload
  OR NEW.proposed_by IS NOT OLD.proposed_by
  OR NEW.proposed_at IS NOT OLD.proposed_at
BEGIN
    SELECT RAISE(ABORT, 'change_proposals: a decided proposal is final (append-only)');
END;

CREATE TRIGGER change_proposals_no_delete BEFORE DELETE ON change_proposals
BEGIN
    SELECT RAISE(ABORT, 'change_proposals are append-only');
END;

-- Credit cases: escalation, editors, related parties, board resolution (V5, V11, S6)

-- SQLite cannot alter a CHECK constraint, so `cases` is rebuilt to allow the
-- status 'escalated'. votes and decisions refer to cases by name and must
-- keep doing so; the rebuild therefore keeps the name:
--   1. defer foreign-key enforcement to the commit of this migration's
--      transaction (the pragma resets itself at COMMIT/ROLLBACK; foreign_keys
--      itself cannot be switched off inside a transaction);
--   2. copy the rows aside, drop `cases` (its implicit DELETE counts one
--      deferred violation per vote and decision row), create the new `cases`
--      and copy the rows back (each re-inserted parent row settles its
--      children's violations);
--   3. recreate the indexes.
-- Should a row not come back, the deferred foreign keys fail the COMMIT and
-- the whole migration rolls back. No trigger or view refers to `cases`.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE cases_0002_copy AS SELECT * FROM cases;

DROP TABLE cases;

-- editors: JSON array of staff ids (S6). board_resolution: the domain's
-- BoardResolution as JSON (V11).
CREATE TABLE cases (
    id               TEXT    NOT NULL PRIMARY KEY,
    borrower_id      TEXT    NOT NULL REFERENCES borrowers (id),
    amount_minor     INTEGER NOT NULL CHECK (amount_minor > 0),
    currency         TEXT    NOT NULL CHECK (length(currency) = 3),
    product          TEXT    NOT NULL,
    term_months      INTEGER NOT NULL CHECK (term_months > 0),
    purpose          TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('draft', 'awaiting_second_vote', 'escalated', 'approved', 'declined', 'returned')),
    version          INTEGER NOT NULL CHECK (version >= 1),
    revision         INTEGER NOT NULL CHECK (revision >= 1),
    originator       TEXT    NOT NULL REFERENCES staff (id),
    return_reason    TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    editors          TEXT    NOT NULL DEFAULT '[]',
    round            INTEGER NOT NULL DEFAULT 0 CHECK (round >= 0),
    escalation_level INTEGER CHECK (escalation_level BETWEEN 1 AND 9),
    related_party    INTEGER NOT NULL DEFAULT 0 CHECK (related_party IN (0, 1)),
    board_resolution TEXT
) STRICT;

INSERT INTO cases (id, borrower_id, amount_minor, currency, product, term_months, purpose,
                   status, version, revision, originator, return_reason, created_at, updated_at)
SELECT id, borrower_id, amount_minor, currency, product, term_months, purpose,
       status, version, revision, originator, return_reason, created_at, updated_at
FROM cases_0002_copy;

DROP TABLE cases_0002_copy;

CREATE INDEX cases_status_id ON cases (status, id);
CREATE INDEX cases_borrower_id ON cases (borrower_id);

-- Votes: round (V5), required and held competence level (V4), market exit (S5).
-- Still append-only: adding columns changes no row, and no trigger fires. Votes
-- stored before this migration read as round 0, level 0 (unknown), no exit.
ALTER TABLE votes ADD COLUMN round INTEGER NOT NULL DEFAULT 0 CHECK (round >= 0);
ALTER TABLE votes ADD COLUMN required_level INTEGER NOT NULL DEFAULT 0 CHECK (required_level BETWEEN 0 AND 9);
ALTER TABLE votes ADD COLUMN competence_level INTEGER NOT NULL DEFAULT 0 CHECK (competence_level BETWEEN 0 AND 9);
ALTER TABLE votes ADD COLUMN left_market_at TEXT;
