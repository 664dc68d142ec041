-- Four-eyes proposals for every input a decision depends on (S3, S4, S9,
-- V4, R3, R6): besides role assignments, competence grants and rule sets,
-- a proposal may change a borrower's group of connected clients, Tier 1
-- capital or the liquidity position, bring a new person into the
-- directory, move a person between units, end a role, suspend a person or
-- record a leaver. Who may decide a kind is the application's rule; the
-- database keeps the list closed.
ALTER TABLE change_proposals DROP CONSTRAINT change_proposals_kind_check;
ALTER TABLE change_proposals ADD CONSTRAINT change_proposals_kind_check CHECK (kind IN (
    'role_assignment', 'competence_grant', 'rule_set',
    'group_membership', 'tier1_capital', 'liquidity_position',
    'staff_onboarding', 'unit_move', 'role_end', 'suspension', 'leaver'));
CREATE INDEX change_proposals_kind_decided ON change_proposals (kind, status, decided_at);
