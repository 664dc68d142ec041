-- Signed checkpoints handed out (A2, A5): every checkpoint the audit service
-- or an export signed, so the next export can prove it is consistent with
-- the last one a recipient holds. Insert-only.
--
-- Trigger names: audit_checkpoints_no_update, audit_checkpoints_no_delete.

CREATE TABLE audit_checkpoints (
    id        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    tree_size INTEGER NOT NULL CHECK (tree_size >= 1),
    root      BLOB    NOT NULL CHECK (length(root) = 32),
    note      TEXT    NOT NULL,
    signed_at TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_checkpoints_size ON audit_checkpoints (tree_size, id);

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints are insert-only');
END;

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints are insert-only');
END;
