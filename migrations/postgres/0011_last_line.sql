-- The database as the last line (S7, S9, V1, R8): what the services check
-- is checked here again, so that hand-written SQL from a compromised
-- service process cannot decide alone. Keep in step with
-- migrations/sqlite/0008_last_line.sql (the vote rule and the columns;
-- SQLite has no roles and no deferred triggers, so the rest is PostgreSQL
-- only). The role-specific half (row policies on decisions and
-- limit_versions) is in the store's role provisioning.
--
-- Triggers, all refusing with SQLSTATE 42501 (insufficient privilege) and
-- ENABLE ALWAYS as in 0001:
--   decisions_need_votes        (BEFORE INSERT on decisions): an approval
--                               rests on two proper votes (V1, V2, V3, V5)
--                               or on the single-vote lane where a rule
--                               set opened it (V8);
--   cases_approved_by_decision  (constraint trigger, at commit): a case is
--                               approved only with its approved decision;
--   role_assignments_approved, competence_grants_approved,
--   rule_sets_approved          (constraint triggers, at commit): a row
--                               written by anyone but the schema's owner
--                               names a change proposal approved in the
--                               same transaction (S9).

-- Votes (V1, V2, S4) -------------------------------------------------------------

-- Whether `staff` belonged to `unit` on `side` at `at`, by the dated unit
-- history (S4): the side a vote row states is the writer's word, the
-- history is the directory's.
CREATE FUNCTION creditops_member_of_side_at(staff TEXT, unit TEXT, wanted TEXT, at TIMESTAMPTZ)
RETURNS BOOLEAN
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM unit_assignments a
        WHERE a.staff_id = staff AND a.unit_id = unit AND a.side = wanted
          AND a.valid_from <= at AND (a.valid_to IS NULL OR at < a.valid_to))
$$;

-- Whether the rule set in force at `at` opens the single-vote lane (V8);
-- "in force" as the domain has it: the latest valid_from not after `at`,
-- the higher version on a tie.
CREATE FUNCTION creditops_single_vote_lane_open(at TIMESTAMPTZ)
RETURNS BOOLEAN
LANGUAGE sql STABLE AS $$
    SELECT COALESCE((
        SELECT (r.parameters::jsonb ->> 'single_vote_below') IS NOT NULL
        FROM rule_sets r
        WHERE r.valid_from <= at
        ORDER BY r.valid_from DESC, r.version DESC
        LIMIT 1), FALSE)
$$;

-- An approved decision needs, on the case's current file version and
-- voting round (votes of earlier versions are void, V3; of earlier rounds
-- superseded, V5): an approving first vote by a member of a market unit and
-- an approving second vote by a different person, a member of a
-- back-office unit, each at the time of the vote. Only where a rule set
-- opened the single-vote lane (V8) may one market vote suffice, and not
-- after an escalation or for a related party (V11); the lane's threshold on
-- the aggregated exposure stays the application's check.
CREATE FUNCTION creditops_decision_needs_votes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    c cases%ROWTYPE;
BEGIN
    IF NEW.outcome <> 'approved' THEN
        RETURN NEW;
    END IF;
    SELECT * INTO c FROM cases WHERE id = NEW.case_id;
    IF FOUND AND c.version = NEW.file_version AND EXISTS (
        SELECT 1
        FROM votes f JOIN votes s ON s.case_id = f.case_id
        WHERE f.case_id = c.id
          AND f.stage = 'first' AND f.side = 'market' AND f.decision = 'approve'
          AND s.stage = 'second' AND s.side = 'backoffice' AND s.decision = 'approve'
          AND f.file_version = c.version AND s.file_version = c.version
          AND f.round = c.round AND s.round = c.round
          AND f.voter_id <> s.voter_id
          AND creditops_member_of_side_at(f.voter_id, f.unit_id, 'market', f.cast_at)
          AND creditops_member_of_side_at(s.voter_id, s.unit_id, 'backoffice', s.cast_at))
    THEN
        RETURN NEW;
    END IF;
    IF FOUND AND c.version = NEW.file_version
       AND c.escalation_level IS NULL AND NOT c.related_party
       AND creditops_single_vote_lane_open(NEW.decided_at)
       AND EXISTS (
        SELECT 1 FROM votes f
        WHERE f.case_id = c.id
          AND f.stage = 'first' AND f.side = 'market' AND f.decision = 'approve'
          AND f.file_version = c.version AND f.round = c.round
          AND creditops_member_of_side_at(f.voter_id, f.unit_id, 'market', f.cast_at))
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'decisions: an approval of case % needs an approving first vote from market '
        'and an approving second vote from back office by another person on its current file '
        'version (V1)', NEW.case_id
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER decisions_need_votes BEFORE INSERT ON decisions
    FOR EACH ROW EXECUTE FUNCTION creditops_decision_needs_votes();
ALTER TABLE decisions ENABLE ALWAYS TRIGGER decisions_need_votes;

-- A case is approved only by its approved decision on its current version.
-- Checked at commit: the store writes the case before its votes and the
-- decision.
CREATE FUNCTION creditops_case_approved_by_decision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'approved' AND NOT EXISTS (
        SELECT 1 FROM decisions d
        WHERE d.case_id = NEW.id AND d.outcome = 'approved' AND d.file_version = NEW.version)
    THEN
        RAISE EXCEPTION 'cases: case % is approved only by an approved decision on its current '
            'file version (V1)', NEW.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER cases_approved_by_decision AFTER INSERT OR UPDATE ON cases
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.status = 'approved')
    EXECUTE FUNCTION creditops_case_approved_by_decision();
ALTER TABLE cases ENABLE ALWAYS TRIGGER cases_approved_by_decision;

-- Role assignments, competence grants, rule sets: four-eyes (S9) ------------------

-- The approved change proposal a row was written under. Rows written before
-- this migration, and rows the owner writes (migrations, `db provision`,
-- the bootstrap staff import into an empty directory, the dev seed), have
-- none.
ALTER TABLE role_assignments ADD COLUMN proposal_id UUID REFERENCES change_proposals (id);
ALTER TABLE competence_grants ADD COLUMN proposal_id UUID REFERENCES change_proposals (id);
ALTER TABLE rule_sets ADD COLUMN proposal_id UUID REFERENCES change_proposals (id);

-- A row written by a role other than the table's owner (the service roles)
-- names a proposal that is approved, was approved in this very transaction
-- (a decided proposal never changes again, so each approval is spent by the
-- transaction that made it and cannot be replayed), and fits the table: a
-- rule-set proposal for rule_sets; for the directory any kind of the
-- directory (the kinds grow: a role end updates valid_to under its own
-- proposal), naming the row's person wherever its payload names one.
CREATE FUNCTION creditops_change_needs_approval() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    row_staff TEXT := to_jsonb(NEW) ->> 'staff_id';
BEGIN
    IF pg_has_role(current_user,
                   (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        RETURN NULL;
    END IF;
    -- An insert names its proposal; an update (only ending an entry: a role
    -- end, a unit move, a leaver) keeps the proposal that granted the row
    -- and needs one approved now for the same person.
    IF (TG_OP = 'INSERT' AND NEW.proposal_id IS NULL) OR NOT EXISTS (
        SELECT 1 FROM change_proposals p
        WHERE (TG_OP = 'UPDATE' OR p.id = NEW.proposal_id)
          AND p.status = 'approved'
          AND p.xmin = pg_current_xact_id()::xid
          AND CASE WHEN TG_TABLE_NAME = 'rule_sets' THEN p.kind = 'rule_set'
                   ELSE p.kind NOT IN ('rule_set', 'group_membership', 'tier1_capital',
                                       'liquidity_position')
                        AND coalesce(p.payload::jsonb ->> 'staff_id', row_staff) = row_staff
              END)
    THEN
        RAISE EXCEPTION '%: a change needs a change proposal of its kind approved by a second '
            'administrator in the same transaction (S9)', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER role_assignments_approved AFTER INSERT OR UPDATE ON role_assignments
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION creditops_change_needs_approval();
CREATE CONSTRAINT TRIGGER competence_grants_approved AFTER INSERT OR UPDATE ON competence_grants
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION creditops_change_needs_approval();
CREATE CONSTRAINT TRIGGER rule_sets_approved AFTER INSERT OR UPDATE ON rule_sets
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION creditops_change_needs_approval();
ALTER TABLE role_assignments ENABLE ALWAYS TRIGGER role_assignments_approved;
ALTER TABLE competence_grants ENABLE ALWAYS TRIGGER competence_grants_approved;
ALTER TABLE rule_sets ENABLE ALWAYS TRIGGER rule_sets_approved;
