-- Verification that does not grow with the log (A2): every head a
-- verification of the audit trail reached, signed with the checkpoint key
-- (a C2SP signed note over size and Merkle root) together with the chain
-- value at that size. The next verification starts from the newest one
-- whose signature, stored tree and chain value still match, and checks only
-- the events after it. Insert-only: audit_verified_heads_append_only,
-- audit_verified_heads_no_truncate.
CREATE TABLE audit_verified_heads (
    tree_size   BIGINT      NOT NULL PRIMARY KEY CHECK (tree_size >= 1),
    chain_hash  BYTEA       NOT NULL CHECK (octet_length(chain_hash) = 32),
    note        TEXT        NOT NULL,
    verified_at TIMESTAMPTZ NOT NULL
);

CREATE TRIGGER audit_verified_heads_append_only BEFORE UPDATE OR DELETE ON audit_verified_heads
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER audit_verified_heads_no_truncate BEFORE TRUNCATE ON audit_verified_heads
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE audit_verified_heads ENABLE ALWAYS TRIGGER audit_verified_heads_append_only;
ALTER TABLE audit_verified_heads ENABLE ALWAYS TRIGGER audit_verified_heads_no_truncate;
