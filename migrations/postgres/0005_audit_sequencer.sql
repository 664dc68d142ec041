-- The audit sequencer (A1, A2): business transactions no longer link the
-- hash chain themselves (that needed one lock held by every writer until
-- commit). They insert their event into `audit_entries`, which takes no
-- shared lock; a sequencer links committed entries into `audit_chain` and the
-- Merkle tree's node table `audit_tree` about every 100 ms.
--
-- Which entries are final: every entry records the id of the transaction
-- that wrote it (`xid`). Entries whose transaction id is below the xmin of a
-- current snapshot can no longer appear or disappear, so the sequencer links
-- exactly those, in (xid, event_id) order, and never has to scan old rows:
-- it continues from the largest xid already linked.
--
-- `audit_events` stays the name readers use: a view of the linked events with
-- the columns the table had. Events that are committed but not linked yet are
-- not in the view; `oldest unsequenced` (readiness, metrics) watches them.
--
-- All three tables are insert-only (triggers ENABLE ALWAYS):
--   audit_entries_append_only, audit_entries_no_truncate,
--   audit_chain_append_only,   audit_chain_no_truncate,
--   audit_tree_append_only,    audit_tree_no_truncate.

CREATE TABLE audit_entries (
    event_id    UUID        NOT NULL PRIMARY KEY,
    xid         XID8        NOT NULL DEFAULT pg_current_xact_id(),
    body        BYTEA       NOT NULL,
    leaf_hash   BYTEA       NOT NULL CHECK (octet_length(leaf_hash) = 32),
    recorded_at TIMESTAMPTZ NOT NULL,
    actor       TEXT,
    action      TEXT        NOT NULL,
    outcome     TEXT        NOT NULL,
    case_id     UUID,
    borrower_id UUID
);

-- Every audited command pays for these indexes, so they are few and cheap:
-- a block-range (BRIN) index where values grow with insertion order, partial
-- indexes where many events have no value. The sequencer finds the newest
-- entries by xid (xid8 has no BRIN operator class).
CREATE INDEX audit_entries_xid ON audit_entries (xid);
CREATE INDEX audit_entries_recorded_at ON audit_entries USING brin (recorded_at);
CREATE INDEX audit_entries_case_id ON audit_entries (case_id) WHERE case_id IS NOT NULL;
CREATE INDEX audit_entries_borrower_id ON audit_entries (borrower_id)
    WHERE borrower_id IS NOT NULL;
CREATE INDEX audit_entries_actor ON audit_entries (actor);

-- `seq` is gapless from 1; `chain_hash` = SHA-256(previous chain_hash ||
-- leaf_hash). The leaf hash is repeated here so that the tree and the chain
-- can be read without the bodies; `xid` only grows with `seq`, so the last
-- row tells the sequencer where to continue.
CREATE TABLE audit_chain (
    seq          BIGINT      NOT NULL PRIMARY KEY CHECK (seq >= 1),
    event_id     UUID        NOT NULL UNIQUE REFERENCES audit_entries (event_id),
    xid          XID8        NOT NULL,
    leaf_hash    BYTEA       NOT NULL CHECK (octet_length(leaf_hash) = 32),
    chain_hash   BYTEA       NOT NULL CHECK (octet_length(chain_hash) = 32),
    sequenced_at TIMESTAMPTZ NOT NULL
);

-- Every complete, aligned subtree of the Merkle tree above the leaves: node
-- `idx` of `level` covers leaves [idx * 2^level, (idx + 1) * 2^level).
CREATE TABLE audit_tree (
    level SMALLINT NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx   BIGINT   NOT NULL CHECK (idx >= 0),
    hash  BYTEA    NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- The events linked so far move over unchanged, in their order.
INSERT INTO audit_entries (event_id, body, leaf_hash, recorded_at, actor, action, outcome,
                           case_id, borrower_id)
SELECT event_id, body, leaf_hash, recorded_at, actor, action, outcome, case_id, borrower_id
FROM audit_events ORDER BY seq;

INSERT INTO audit_chain (seq, event_id, xid, leaf_hash, chain_hash, sequenced_at)
SELECT a.seq, a.event_id, e.xid, a.leaf_hash, a.chain_hash, a.recorded_at
FROM audit_events a JOIN audit_entries e ON e.event_id = a.event_id;

-- Tree nodes for moved events are computed by the sequencer's first round
-- (it fills in any node missing below the current size).

DROP TABLE audit_events;

CREATE VIEW audit_events AS
SELECT c.seq, e.event_id, e.body, e.leaf_hash, c.chain_hash, e.recorded_at, e.actor,
       e.action, e.outcome, e.case_id, e.borrower_id
FROM audit_chain c JOIN audit_entries e ON e.event_id = c.event_id;

CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE audit_entries ENABLE ALWAYS TRIGGER audit_entries_append_only;
ALTER TABLE audit_entries ENABLE ALWAYS TRIGGER audit_entries_no_truncate;

CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE audit_chain ENABLE ALWAYS TRIGGER audit_chain_append_only;
ALTER TABLE audit_chain ENABLE ALWAYS TRIGGER audit_chain_no_truncate;

CREATE TRIGGER audit_tree_append_only BEFORE UPDATE OR DELETE ON audit_tree
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER audit_tree_no_truncate BEFORE TRUNCATE ON audit_tree
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE audit_tree ENABLE ALWAYS TRIGGER audit_tree_append_only;
ALTER TABLE audit_tree ENABLE ALWAYS TRIGGER audit_tree_no_truncate;

-- Signed tree heads: the sequencer signs a checkpoint (C2SP signed note) over
-- the tree in the same transaction that links the events, at most about once
-- a second, so every linked event is under a signed head shortly after it
-- committed. Insert-only: audit_heads_append_only, audit_heads_no_truncate.
CREATE TABLE audit_heads (
    tree_size BIGINT      NOT NULL PRIMARY KEY CHECK (tree_size >= 1),
    root      BYTEA       NOT NULL CHECK (octet_length(root) = 32),
    note      TEXT        NOT NULL,
    signed_at TIMESTAMPTZ NOT NULL
);

CREATE TRIGGER audit_heads_append_only BEFORE UPDATE OR DELETE ON audit_heads
    FOR EACH ROW EXECUTE FUNCTION creditops_refuse_change();
CREATE TRIGGER audit_heads_no_truncate BEFORE TRUNCATE ON audit_heads
    FOR EACH STATEMENT EXECUTE FUNCTION creditops_refuse_change();
ALTER TABLE audit_heads ENABLE ALWAYS TRIGGER audit_heads_append_only;
ALTER TABLE audit_heads ENABLE ALWAYS TRIGGER audit_heads_no_truncate;
