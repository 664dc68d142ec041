-- The database as the last line (V1, V8): an approved decision rests on two
-- proper votes. Keep in step with migrations/postgres/0011_last_line.sql.
-- SQLite has no roles and no deferred triggers: the row policies, the
-- commit-time check of an approved case and the commit-time check of the
-- change proposal behind a directory or rule-set row are PostgreSQL only;
-- the proposal_id columns are here too, so both schemas stay the same.
--
-- Trigger: decisions_need_votes (BEFORE INSERT on decisions).

-- An approved decision needs, on the case's current file version and voting
-- round (votes of earlier versions are void, V3; of earlier rounds
-- superseded, V5): an approving first vote by a member of a market unit and
-- an approving second vote by a different person, a member of a back-office
-- unit, each by the dated unit history at the time of the vote (S4), not
-- only by the side the vote row states. Only where the rule set in force
-- opened the single-vote lane (V8) may one market vote suffice, and not
-- after an escalation or for a related party (V11); the lane's threshold on
-- the aggregated exposure stays the application's check.
CREATE TRIGGER decisions_need_votes BEFORE INSERT ON decisions
WHEN NEW.outcome = 'approved' AND NOT EXISTS (
    SELECT 1
    FROM cases c
    JOIN votes f ON f.case_id = c.id
    JOIN votes s ON s.case_id = c.id
    WHERE c.id = NEW.case_id AND c.version = NEW.file_version
      AND f.stage = 'first' AND f.side = 'market' AND f.decision = 'approve'
      AND s.stage = 'second' AND s.side = 'backoffice' AND s.decision = 'approve'
      AND f.file_version = c.version AND s.file_version = c.version
      AND f.round = c.round AND s.round = c.round
      AND f.voter_id <> s.voter_id
      AND EXISTS (
        SELECT 1 FROM unit_assignments a
        WHERE a.staff_id = f.voter_id AND a.unit_id = f.unit_id AND a.side = 'market'
          AND a.valid_from <= f.cast_at AND (a.valid_to IS NULL OR f.cast_at < a.valid_to))
      AND EXISTS (
        SELECT 1 FROM unit_assignments a
        WHERE a.staff_id = s.voter_id AND a.unit_id = s.unit_id AND a.side = 'backoffice'
          AND a.valid_from <= s.cast_at AND (a.valid_to IS NULL OR s.cast_at < a.valid_to))
) AND NOT EXISTS (
    SELECT 1
    FROM cases c
    JOIN votes f ON f.case_id = c.id
    WHERE c.id = NEW.case_id AND c.version = NEW.file_version
      AND c.escalation_level IS NULL AND NOT c.related_party
      AND (SELECT json_extract(r.parameters, '$.single_vote_below') IS NOT NULL
           FROM rule_sets r
           WHERE r.valid_from <= NEW.decided_at
           ORDER BY r.valid_from DESC, r.version DESC
           LIMIT 1)
      AND f.stage = 'first' AND f.side = 'market' AND f.decision = 'approve'
      AND f.file_version = c.version AND f.round = c.round
      AND EXISTS (
        SELECT 1 FROM unit_assignments a
        WHERE a.staff_id = f.voter_id AND a.unit_id = f.unit_id AND a.side = 'market'
          AND a.valid_from <= f.cast_at AND (a.valid_to IS NULL OR f.cast_at < a.valid_to))
)
BEGIN
    SELECT RAISE(ABORT, 'decisions: an approval needs an approving first vote from market and an approving second vote from back office by another person on its current file version (V1)');
END;

-- The approved change proposal a directory or rule-set row was written
-- under (S9); checked on PostgreSQL, recorded on both.
ALTER TABLE role_assignments ADD COLUMN proposal_id TEXT REFERENCES change_proposals (id);
ALTER TABLE competence_grants ADD COLUMN proposal_id TEXT REFERENCES change_proposals (id);
ALTER TABLE rule_sets ADD COLUMN proposal_id TEXT REFERENCES change_proposals (id);
