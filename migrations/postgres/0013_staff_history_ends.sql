-- Staff lifecycle (S4): a unit move, the end of a role and a leaver end
-- entries of a person's dated history. The only change such an entry may
-- undergo is that end: `valid_to` is set, or moved earlier, to a moment no
-- earlier than its start and not in the past (five minutes of clock lag
-- allowed); an entry that had not started gets an empty period. Every
-- other column stays as it was, so the history is ended, never rewritten.
-- No role may delete an entry.
CREATE FUNCTION creditops_history_end_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - 'valid_to') IS DISTINCT FROM (to_jsonb(OLD) - 'valid_to')
       OR NEW.valid_to IS NULL
       OR (OLD.valid_to IS NOT NULL AND NEW.valid_to > OLD.valid_to)
       OR NEW.valid_to < OLD.valid_from
       OR (NEW.valid_to <> OLD.valid_from AND NEW.valid_to < now() - interval '5 minutes') THEN
        RAISE EXCEPTION 'a staff history entry may only be ended, from now on'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER unit_assignments_end_only BEFORE UPDATE ON unit_assignments
    FOR EACH ROW EXECUTE FUNCTION creditops_history_end_only();
CREATE TRIGGER role_assignments_end_only BEFORE UPDATE ON role_assignments
    FOR EACH ROW EXECUTE FUNCTION creditops_history_end_only();
CREATE TRIGGER competence_grants_end_only BEFORE UPDATE ON competence_grants
    FOR EACH ROW EXECUTE FUNCTION creditops_history_end_only();
ALTER TABLE unit_assignments ENABLE ALWAYS TRIGGER unit_assignments_end_only;
ALTER TABLE role_assignments ENABLE ALWAYS TRIGGER role_assignments_end_only;
ALTER TABLE competence_grants ENABLE ALWAYS TRIGGER competence_grants_end_only;

-- Nobody deletes or truncates an entry, the owner included.
CREATE TRIGGER unit_assignments_no_delete BEFORE DELETE ON unit_assignments
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER role_assignments_no_delete BEFORE DELETE ON role_assignments
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER competence_grants_no_delete BEFORE DELETE ON competence_grants
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER unit_assignments_no_truncate BEFORE TRUNCATE ON unit_assignments
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER role_assignments_no_truncate BEFORE TRUNCATE ON role_assignments
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER competence_grants_no_truncate BEFORE TRUNCATE ON competence_grants
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE unit_assignments ENABLE ALWAYS TRIGGER unit_assignments_no_delete;
ALTER TABLE role_assignments ENABLE ALWAYS TRIGGER role_assignments_no_delete;
ALTER TABLE competence_grants ENABLE ALWAYS TRIGGER competence_grants_no_delete;
ALTER TABLE unit_assignments ENABLE ALWAYS TRIGGER unit_assignments_no_truncate;
ALTER TABLE role_assignments ENABLE ALWAYS TRIGGER role_assignments_no_truncate;
ALTER TABLE competence_grants ENABLE ALWAYS TRIGGER competence_grants_no_truncate;
