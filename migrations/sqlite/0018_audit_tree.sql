-- Audit reads that do not grow with the log (A2, A4).
--
-- `audit_tree`: every complete, aligned subtree of the Merkle tree above the
-- leaves, as on PostgreSQL: node `idx` of `level` covers the leaves
-- [idx * 2^level, (idx + 1) * 2^level). An event appends the nodes it
-- completes in its own transaction; a log that has events from before this
-- migration gets its nodes computed when the store opens (SQLite has no
-- SHA-256 in SQL). Proofs and checkpoints read O(log n) nodes.
--
-- `audit_verified_heads`: every head a verification reached, signed with the
-- checkpoint key, with the chain value at that size; the next verification
-- checks only the events after the newest one that still matches.
--
-- Trigger names: audit_tree_no_update, audit_tree_no_delete,
-- audit_verified_heads_no_update, audit_verified_heads_no_delete.

CREATE TABLE audit_tree (
    level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER audit_tree_no_update BEFORE UPDATE ON audit_tree
BEGIN
    SELECT RAISE(ABORT, 'audit_tree is append-only');
END;

CREATE TRIGGER audit_tree_no_delete BEFORE DELETE ON audit_tree
BEGIN
    SELECT RAISE(ABORT, 'audit_tree is append-only');
END;

CREATE TABLE audit_verified_heads (
    tree_size   INTEGER NOT NULL PRIMARY KEY CHECK (tree_size >= 1),
    chain_hash  BLOB    NOT NULL CHECK (length(chain_hash) = 32),
    note        TEXT    NOT NULL,
    verified_at TEXT    NOT NULL
) STRICT;

CREATE TRIGGER audit_verified_heads_no_update BEFORE UPDATE ON audit_verified_heads
BEGIN
    SELECT RAISE(ABORT, 'audit_verified_heads is insert-only');
END;

CREATE TRIGGER audit_verified_heads_no_delete BEFORE DELETE ON audit_verified_heads
BEGIN
    SELECT RAISE(ABORT, 'audit_verified_heads is insert-only');
END;
