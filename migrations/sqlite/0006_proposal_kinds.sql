-- Four-eyes proposals for every input a decision depends on (S3, S4, S9,
-- V4, R3, R6): besides role assignments, competence grants and rule sets,
-- a proposal may change a borrower's group of connected clients, Tier 1
-- capital or the liquidity position, bring a new person into the
-- directory, move a person between units, end a role, suspend a person or
-- record a leaver. Who may decide a kind is the application's rule; the
-- database keeps the list closed.
--
-- SQLite cannot alter a CHECK constraint: the table is rebuilt under its
-- name (no other table refers to it), its triggers and indexes with it.
DROP TRIGGER change_proposals_final;
DROP TRIGGER change_proposals_no_delete;

CREATE TABLE change_proposals_widened (
    id          TEXT NOT NULL PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN (
        'role_assignment', 'competence_grant', 'rule_set',
        'group_membership', 'tier1_capital', 'liquidity_position',
        'staff_onboarding', 'unit_move', 'role_end', 'suspension', 'leaver')),
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
INSERT INTO change_proposals_widened
SELECT id, kind, payload, proposed_by, proposed_at, status, decided_by, decided_at
FROM change_proposals;
DROP TABLE change_proposals;
ALTER TABLE change_proposals_widened RENAME TO change_proposals;

CREATE INDEX change_proposals_status ON change_proposals (status, proposed_at);
CREATE INDEX change_proposals_proposed_at ON change_proposals (proposed_at);
CREATE INDEX change_proposals_kind_decided ON change_proposals (kind, status, decided_at);

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
