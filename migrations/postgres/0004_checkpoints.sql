-- Signed checkpoints handed out (A2, A5): every checkpoint the audit service
-- or an export signed, so the next export can prove it is consistent with
-- the last one a recipient holds. Insert-only.
--
-- Trigger names: audit_checkpoints_append_only, audit_checkpoints_no_truncate.

CREATE TABLE audit_checkpoints (
    id        BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tree_size BIGINT      NOT NULL CHECK (tree_size >= 1),
    root      BYTEA       NOT NULL CHECK (octet_length(root) = 32),
    note      TEXT        NOT NULL,
    signed_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX audit_checkpoints_size ON audit_checkpoints (tree_size, id);

CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_append_only;
ALTER TABLE audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_no_truncate;
