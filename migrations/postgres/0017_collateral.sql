-- The collateral register (L3): items of a borrower, their valuations
-- (proposed by market or effective) and legal-validity checks. Rows are
-- appended; an item is only ever released, a proposal only ever confirmed.
CREATE TABLE collateral (
    id            UUID        NOT NULL PRIMARY KEY,
    borrower_id   UUID        NOT NULL REFERENCES borrowers (id),
    kind          TEXT        NOT NULL CHECK (kind IN ('mortgage_residential', 'mortgage_commercial', 'guarantee', 'pledge_of_deposits', 'assignment_of_receivables', 'securities_pledge', 'other')),
    nominal_minor BIGINT      NOT NULL CHECK (nominal_minor > 0),
    currency      TEXT        NOT NULL CHECK (length(currency) = 3),
    description   TEXT        NOT NULL,
    status        TEXT        NOT NULL CHECK (status IN ('active', 'released')),
    registered_by TEXT        NOT NULL REFERENCES staff (id),
    registered_at TIMESTAMPTZ NOT NULL,
    released_by   TEXT        REFERENCES staff (id),
    released_at   TIMESTAMPTZ,
    CHECK ((status = 'released') = (released_at IS NOT NULL AND released_by IS NOT NULL))
);
CREATE INDEX collateral_borrower ON collateral (borrower_id, id);
CREATE INDEX collateral_active_kind ON collateral (kind, id) WHERE status = 'active';

CREATE TABLE collateral_valuations (
    id             UUID        NOT NULL PRIMARY KEY,
    collateral_id  UUID        NOT NULL REFERENCES collateral (id),
    value_minor    BIGINT      NOT NULL CHECK (value_minor > 0),
    currency       TEXT        NOT NULL CHECK (length(currency) = 3),
    valuation_date DATE        NOT NULL,
    valuer         TEXT        NOT NULL,
    method         TEXT        NOT NULL,
    side           TEXT        NOT NULL CHECK (side IN ('market', 'backoffice')),
    status         TEXT        NOT NULL CHECK (status IN ('proposed', 'effective')),
    recorded_by    TEXT        NOT NULL REFERENCES staff (id),
    recorded_at    TIMESTAMPTZ NOT NULL,
    confirmed_by   TEXT        REFERENCES staff (id),
    confirmed_at   TIMESTAMPTZ,
    CHECK ((confirmed_at IS NULL) = (confirmed_by IS NULL)),
    CHECK (confirmed_at IS NULL OR status = 'effective')
);
CREATE INDEX collateral_valuations_item ON collateral_valuations (collateral_id, status, valuation_date);

CREATE TABLE collateral_legal_checks (
    id            UUID        NOT NULL PRIMARY KEY,
    collateral_id UUID        NOT NULL REFERENCES collateral (id),
    result        TEXT        NOT NULL CHECK (result IN ('valid', 'invalid')),
    note          TEXT        NOT NULL,
    checked_by    TEXT        NOT NULL REFERENCES staff (id),
    checked_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX collateral_legal_checks_item ON collateral_legal_checks (collateral_id, checked_at);
