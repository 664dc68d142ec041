-- The credit after its first decision (issue 20): decision kinds and
-- approved credits with versions (L1), ratings (L4), conditions precedent
-- (L5).

-- L1: a case decides a new credit or changes an approved one; a change
-- names the credit and the version, amount and term it was opened on.
-- (SQLite adds no table constraints by ALTER: the store keeps the columns
-- together; PostgreSQL checks them.)
ALTER TABLE cases ADD COLUMN kind TEXT NOT NULL DEFAULT 'new'
    CHECK (kind IN ('new', 'increase', 'prolongation', 'change_of_terms',
                    'collateral_release', 'overdraft'));
ALTER TABLE cases ADD COLUMN credit_id TEXT;
ALTER TABLE cases ADD COLUMN credit_version INTEGER;
ALTER TABLE cases ADD COLUMN credit_amount_minor INTEGER;
ALTER TABLE cases ADD COLUMN credit_term_months INTEGER;
-- L5: the approval's conditions precedent with their sign-offs (JSON).
ALTER TABLE cases ADD COLUMN conditions TEXT NOT NULL DEFAULT '[]';
CREATE INDEX cases_credit_id ON cases (credit_id) WHERE credit_id IS NOT NULL;

-- L1: an approved credit, its terms in force; every approved decision on
-- it writes the next row of credit_versions.
CREATE TABLE credits (
    id            TEXT    NOT NULL PRIMARY KEY,
    borrower_id   TEXT    NOT NULL REFERENCES borrowers (id),
    version       INTEGER NOT NULL CHECK (version >= 1),
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    currency      TEXT    NOT NULL CHECK (length(currency) = 3),
    product       TEXT    NOT NULL,
    term_months   INTEGER NOT NULL CHECK (term_months > 0),
    purpose       TEXT    NOT NULL,
    case_id       TEXT    NOT NULL REFERENCES cases (id),
    kind          TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
) STRICT;
CREATE INDEX credits_borrower ON credits (borrower_id);

CREATE TABLE credit_versions (
    credit_id     TEXT    NOT NULL REFERENCES credits (id),
    version       INTEGER NOT NULL CHECK (version >= 1),
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    currency      TEXT    NOT NULL,
    product       TEXT    NOT NULL,
    term_months   INTEGER NOT NULL CHECK (term_months > 0),
    purpose       TEXT    NOT NULL,
    case_id       TEXT    NOT NULL UNIQUE REFERENCES cases (id),
    kind          TEXT    NOT NULL,
    decided_at    TEXT    NOT NULL,
    PRIMARY KEY (credit_id, version)
) STRICT;

-- L4: ratings, set by back office or proposed by market, never changed.
CREATE TABLE ratings (
    id            TEXT    NOT NULL PRIMARY KEY,
    borrower_id   TEXT    NOT NULL REFERENCES borrowers (id),
    class         INTEGER NOT NULL CHECK (class BETWEEN 1 AND 30),
    pd            TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('set', 'proposed')),
    rated_by      TEXT    NOT NULL REFERENCES staff (id),
    rated_at      TEXT    NOT NULL,
    rules_version INTEGER NOT NULL
) STRICT;
CREATE INDEX ratings_borrower ON ratings (borrower_id, status, rated_at);
