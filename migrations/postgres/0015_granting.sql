-- The credit after its first decision (issue 20): decision kinds and
-- approved credits with versions (L1), ratings (L4), conditions precedent
-- (L5).

-- L1: a case decides a new credit or changes an approved one; a change
-- names the credit and the version, amount and term it was opened on.
ALTER TABLE cases
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'new'
        CHECK (kind IN ('new', 'increase', 'prolongation', 'change_of_terms',
                        'collateral_release', 'overdraft')),
    ADD COLUMN credit_id UUID,
    ADD COLUMN credit_version BIGINT,
    ADD COLUMN credit_amount_minor BIGINT,
    ADD COLUMN credit_term_months INTEGER,
    -- L5: the approval's conditions precedent with their sign-offs (JSON).
    ADD COLUMN conditions TEXT NOT NULL DEFAULT '[]',
    ADD CONSTRAINT cases_change_names_a_credit CHECK (
        (kind = 'new') = (credit_id IS NULL)
        AND (credit_id IS NULL) = (credit_version IS NULL)
        AND (credit_id IS NULL) = (credit_amount_minor IS NULL)
        AND (credit_id IS NULL) = (credit_term_months IS NULL));
CREATE INDEX cases_credit_id ON cases (credit_id) WHERE credit_id IS NOT NULL;

-- L1: an approved credit, its terms in force; every approved decision on
-- it writes the next row of credit_versions.
CREATE TABLE credits (
    id            UUID        NOT NULL PRIMARY KEY,
    borrower_id   UUID        NOT NULL REFERENCES borrowers (id),
    version       BIGINT      NOT NULL CHECK (version >= 1),
    amount_minor  BIGINT      NOT NULL CHECK (amount_minor > 0),
    currency      TEXT        NOT NULL CHECK (length(currency) = 3),
    product       TEXT        NOT NULL,
    term_months   INTEGER     NOT NULL CHECK (term_months > 0),
    purpose       TEXT        NOT NULL,
    case_id       UUID        NOT NULL REFERENCES cases (id),
    kind          TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX credits_borrower ON credits (borrower_id);

CREATE TABLE credit_versions (
    credit_id     UUID        NOT NULL REFERENCES credits (id),
    version       BIGINT      NOT NULL CHECK (version >= 1),
    amount_minor  BIGINT      NOT NULL CHECK (amount_minor > 0),
    currency      TEXT        NOT NULL,
    product       TEXT        NOT NULL,
    term_months   INTEGER     NOT NULL CHECK (term_months > 0),
    purpose       TEXT        NOT NULL,
    case_id       UUID        NOT NULL UNIQUE REFERENCES cases (id),
    kind          TEXT        NOT NULL,
    decided_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (credit_id, version)
);

-- L4: ratings, set by back office or proposed by market, never changed.
CREATE TABLE ratings (
    id            UUID        NOT NULL PRIMARY KEY,
    borrower_id   UUID        NOT NULL REFERENCES borrowers (id),
    class         INTEGER     NOT NULL CHECK (class BETWEEN 1 AND 30),
    pd            TEXT        NOT NULL,
    method        TEXT        NOT NULL,
    reason        TEXT        NOT NULL,
    status        TEXT        NOT NULL CHECK (status IN ('set', 'proposed')),
    rated_by      TEXT        NOT NULL REFERENCES staff (id),
    rated_at      TIMESTAMPTZ NOT NULL,
    rules_version BIGINT      NOT NULL
);
CREATE INDEX ratings_borrower ON ratings (borrower_id, status, rated_at);
