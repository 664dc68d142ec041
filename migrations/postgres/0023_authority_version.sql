-- What a request's actor lookup reads (S4, S8): the staff directory (the
-- person, their units, roles and competences) and the rule sets. A service
-- process keeps the lookups it made and uses them again for commands
-- instead of reading them per request; `authority_version` tells whether
-- anything they read has changed since. Every write to those tables, by
-- anyone, moves it in the writer's transaction, and a command run under a
-- kept lookup commits only if the version is still the one it was read at
-- (its audit insert checks it). The row is only ever updated by the trigger
-- below, so the services need no privilege on it beyond reading.

CREATE TABLE authority_version (
    id      BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    version BIGINT  NOT NULL CHECK (version > 0)
);
INSERT INTO authority_version (id, version) VALUES (TRUE, 1);

-- Runs as the schema's owner: writers of the staff directory need no
-- privilege on the version row. One row, so concurrent changes of the
-- directory wait for each other (they are rare, and each is a four-eyes
-- decision already). The first change in a transaction notes the version
-- it moved from, for the rest of that transaction only: a command that
-- itself changes the directory (approving an onboarding, say) checks the
-- version as others left it, not its own change.
CREATE FUNCTION creditops_authority_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    moved_from BIGINT;
BEGIN
    UPDATE authority_version SET version = version + 1 RETURNING version - 1 INTO moved_from;
    IF COALESCE(current_setting('creditops.authority_before', true), '') = '' THEN
        PERFORM set_config('creditops.authority_before', moved_from::text, true);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION creditops_authority_changed() FROM PUBLIC;

-- The authority version as other transactions left it: the committed one,
-- or, once this transaction changed the directory, the one it moved from
-- (nobody else can move it meanwhile: this transaction holds the row).
CREATE FUNCTION creditops_authority_version() RETURNS BIGINT
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(
        NULLIF(current_setting('creditops.authority_before', true), '')::BIGINT,
        (SELECT version FROM authority_version))
$$;

CREATE TRIGGER staff_authority AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON staff
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_authority_changed();
CREATE TRIGGER unit_assignments_authority AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON unit_assignments FOR EACH STATEMENT EXECUTE FUNCTION creditops_authority_changed();
CREATE TRIGGER role_assignments_authority AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON role_assignments FOR EACH STATEMENT EXECUTE FUNCTION creditops_authority_changed();
CREATE TRIGGER competence_grants_authority AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON competence_grants FOR EACH STATEMENT EXECUTE FUNCTION creditops_authority_changed();
CREATE TRIGGER rule_sets_authority AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rule_sets
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_authority_changed();

-- Also under replication or with triggers disabled for a session, as the
-- append-only triggers (0001).
ALTER TABLE staff ENABLE ALWAYS TRIGGER staff_authority;
ALTER TABLE unit_assignments ENABLE ALWAYS TRIGGER unit_assignments_authority;
ALTER TABLE role_assignments ENABLE ALWAYS TRIGGER role_assignments_authority;
ALTER TABLE competence_grants ENABLE ALWAYS TRIGGER competence_grants_authority;
ALTER TABLE rule_sets ENABLE ALWAYS TRIGGER rule_sets_authority;
