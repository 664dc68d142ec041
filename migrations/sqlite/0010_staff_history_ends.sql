-- Staff lifecycle (S4): a unit move, the end of a role and a leaver end
-- entries of a person's dated history. The only change such an entry may
-- undergo is that end: `valid_to` is set or moved earlier (timestamps are
-- stored as RFC 3339 text in UTC, which sorts in time order), never before
-- its start; every other column stays as it was. No entry may be deleted.
CREATE TRIGGER unit_assignments_end_only BEFORE UPDATE ON unit_assignments
WHEN NEW.staff_id IS NOT OLD.staff_id
  OR NEW.position IS NOT OLD.position
  OR NEW.unit_id IS NOT OLD.unit_id
  OR NEW.side IS NOT OLD.side
  OR NEW.valid_from IS NOT OLD.valid_from
  OR NEW.valid_to IS NULL
  OR (OLD.valid_to IS NOT NULL AND NEW.valid_to > OLD.valid_to)
  OR NEW.valid_to < OLD.valid_from
BEGIN
    SELECT RAISE(ABORT, 'a staff history entry may only be ended');
END;

CREATE TRIGGER role_assignments_end_only BEFORE UPDATE ON role_assignments
WHEN NEW.staff_id IS NOT OLD.staff_id
  OR NEW.position IS NOT OLD.position
  OR NEW.role IS NOT OLD.role
  OR NEW.valid_from IS NOT OLD.valid_from
  OR NEW.valid_to IS NULL
  OR (OLD.valid_to IS NOT NULL AND NEW.valid_to > OLD.valid_to)
  OR NEW.valid_to < OLD.valid_from
BEGIN
    SELECT RAISE(ABORT, 'a staff history entry may only be ended');
END;

CREATE TRIGGER competence_grants_end_only BEFORE UPDATE ON competence_grants
WHEN NEW.staff_id IS NOT OLD.staff_id
  OR NEW.position IS NOT OLD.position
  OR NEW.side IS NOT OLD.side
  OR NEW.level IS NOT OLD.level
  OR NEW.valid_from IS NOT OLD.valid_from
  OR NEW.valid_to IS NULL
  OR (OLD.valid_to IS NOT NULL AND NEW.valid_to > OLD.valid_to)
  OR NEW.valid_to < OLD.valid_from
BEGIN
    SELECT RAISE(ABORT, 'a staff history entry may only be ended');
END;

CREATE TRIGGER unit_assignments_no_delete BEFORE DELETE ON unit_assignments
BEGIN
    SELECT RAISE(ABORT, 'a staff history entry may only be ended');
END;

CREATE TRIGGER role_assignments_no_delete BEFORE DELETE ON role_assignments
BEGIN
    SELECT RAISE(ABORT, 'a staff history entry may only be ended');
END;

CREATE TRIGGER competence_grants_no_delete BEFORE DELETE ON competence_grants
BEGIN
    SELECT RAISE(ABORT, 'a staff history entry may only be ended');
END;
