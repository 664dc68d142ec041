-- Liquidity claims (R5, R6). Every approval spends the one liquidity
-- headroom. Instead of queueing approvals on a lock held through commit,
-- an approval first commits a claim for its amount on its own; its check of
-- the LCR floor then counts every committed reservation and every other
-- live claim. Of two approvals, the one that checks later sees the other's
-- claim or reservation, so the floor holds whatever the interleaving. The
-- approval's transaction deletes its claim as it writes the reservation.
-- The service deletes the claim of an approval that failed; one left by a
-- crashed process lapses (others stop counting it at lapses_at, which is
-- after any transaction of the claiming request can have committed: the
-- claim must be settled by settle_by, the request's own deadline).
CREATE TABLE liquidity_claims (
    id UUID PRIMARY KEY,
    case_id UUID NOT NULL REFERENCES cases (id),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    claimed_at TIMESTAMPTZ NOT NULL,
    settle_by TIMESTAMPTZ NOT NULL,
    lapses_at TIMESTAMPTZ NOT NULL,
    CHECK (claimed_at <= settle_by AND settle_by <= lapses_at)
);
CREATE INDEX liquidity_claims_lapses_at ON liquidity_claims (lapses_at);
