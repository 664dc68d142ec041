-- The credit after it is granted (L6-L10): arrears from core banking, the
-- early-warning watch list and the flags that feed it, reviews, stages of
-- care with their plans, loan-loss provisions and the alerts they raise.
ALTER TABLE imported_balances
    ADD COLUMN days_past_due  INTEGER CHECK (days_past_due BETWEEN 0 AND 36500);
ALTER TABLE imported_balances
    ADD COLUMN overdrawn_days INTEGER CHECK (overdrawn_days BETWEEN 0 AND 36500);
CREATE INDEX imported_balances_arrears ON imported_balances (borrower_id)
    WHERE days_past_due IS NOT NULL OR overdrawn_days IS NOT NULL;

CREATE TABLE borrower_flags (
    id          TEXT        NOT NULL PRIMARY KEY,
    borrower_id TEXT        NOT NULL REFERENCES borrowers (id),
    kind        TEXT        NOT NULL CHECK (kind IN ('negative_information', 'covenant_breach')),
    reason      TEXT        NOT NULL,
    raised_by   TEXT        NOT NULL REFERENCES staff (id),
    raised_at   TEXT        NOT NULL,
    cleared_by  TEXT        REFERENCES staff (id),
    cleared_at  TEXT       ,
    CHECK ((cleared_at IS NULL) = (cleared_by IS NULL))
) STRICT;
CREATE INDEX borrower_flags_borrower ON borrower_flags (borrower_id, raised_at);

CREATE TABLE reviews (
    id           TEXT        NOT NULL PRIMARY KEY,
    borrower_id  TEXT        NOT NULL REFERENCES borrowers (id),
    kind         TEXT        NOT NULL CHECK (kind IN ('regular', 'ad_hoc')),
    reason       TEXT        NOT NULL,
    due_at       TEXT        NOT NULL,
    opened_at    TEXT        NOT NULL,
    assignee     TEXT        REFERENCES staff (id),
    overdue_at   TEXT       ,
    completed_by TEXT        REFERENCES staff (id),
    completed_at TEXT       ,
    assessment   TEXT,
    CHECK ((completed_at IS NULL) = (completed_by IS NULL)),
    CHECK ((completed_at IS NULL) = (assessment IS NULL))
) STRICT;
-- One open review of each kind per borrower.
CREATE UNIQUE INDEX reviews_one_open ON reviews (borrower_id, kind) WHERE completed_at IS NULL;
CREATE INDEX reviews_due ON reviews (due_at) WHERE completed_at IS NULL;
CREATE INDEX reviews_borrower ON reviews (borrower_id, opened_at);

-- An entry stays while its indicator hits; then it is cleared, never
-- deleted (the list's history).
CREATE TABLE watch_list (
    id            TEXT        NOT NULL PRIMARY KEY,
    borrower_id   TEXT        NOT NULL REFERENCES borrowers (id),
    indicator     TEXT        NOT NULL,
    value         TEXT        NOT NULL,
    rules_version INTEGER     NOT NULL,
    hit_at        TEXT        NOT NULL,
    review_id     TEXT        REFERENCES reviews (id),
    cleared_at    TEXT
) STRICT;
CREATE UNIQUE INDEX watch_list_active ON watch_list (borrower_id, indicator) WHERE cleared_at IS NULL;

CREATE TABLE stage_transfers (
    id            TEXT        NOT NULL PRIMARY KEY,
    borrower_id   TEXT        NOT NULL REFERENCES borrowers (id),
    from_stage    TEXT        NOT NULL CHECK (from_stage IN ('normal', 'intensive_care', 'restructuring', 'workout')),
    to_stage      TEXT        NOT NULL CHECK (to_stage IN ('normal', 'intensive_care', 'restructuring', 'workout')),
    reason        TEXT        NOT NULL,
    decided_by    TEXT        NOT NULL REFERENCES staff (id),
    decided_at    TEXT        NOT NULL,
    rules_version INTEGER     NOT NULL,
    CHECK (from_stage <> to_stage)
) STRICT;
CREATE INDEX stage_transfers_borrower ON stage_transfers (borrower_id, decided_at);

CREATE TABLE plan_milestones (
    id          TEXT        NOT NULL PRIMARY KEY,
    borrower_id TEXT        NOT NULL REFERENCES borrowers (id),
    transfer_id TEXT        NOT NULL REFERENCES stage_transfers (id),
    ordinal     INTEGER     NOT NULL,
    title       TEXT        NOT NULL,
    due_on      TEXT        NOT NULL,
    status      TEXT        NOT NULL CHECK (status IN ('open', 'met', 'missed')),
    updated_by  TEXT        NOT NULL REFERENCES staff (id),
    updated_at  TEXT        NOT NULL,
    UNIQUE (transfer_id, ordinal)
) STRICT;
CREATE INDEX plan_milestones_borrower ON plan_milestones (borrower_id, due_on);

CREATE TABLE provisions (
    id           TEXT        NOT NULL PRIMARY KEY,
    borrower_id  TEXT        NOT NULL REFERENCES borrowers (id),
    credit_id    TEXT        REFERENCES credits (id),
    amount_minor INTEGER     NOT NULL CHECK (amount_minor > 0),
    currency     TEXT        NOT NULL CHECK (length(currency) = 3),
    reason       TEXT        NOT NULL,
    method       TEXT        NOT NULL,
    status       TEXT        NOT NULL CHECK (status IN ('proposed', 'approved', 'rejected')),
    proposed_by  TEXT        NOT NULL REFERENCES staff (id),
    proposed_at  TEXT        NOT NULL,
    decided_by   TEXT        REFERENCES staff (id),
    decided_at   TEXT       ,
    board_alert  INTEGER     NOT NULL CHECK (board_alert IN (0, 1)),
    CHECK ((decided_at IS NULL) = (decided_by IS NULL)),
    CHECK ((status = 'proposed') = (decided_at IS NULL)),
    -- Four eyes (L10): the proposer never decides.
    CHECK (decided_by IS NULL OR decided_by <> proposed_by)
) STRICT;
CREATE INDEX provisions_borrower ON provisions (borrower_id, proposed_at);

CREATE TABLE monitoring_alerts (
    id          TEXT        NOT NULL PRIMARY KEY,
    kind        TEXT        NOT NULL CHECK (kind IN ('review_overdue', 'provision_board')),
    borrower_id TEXT        NOT NULL REFERENCES borrowers (id),
    subject_id  TEXT        NOT NULL,
    audience    TEXT        NOT NULL CHECK (audience IN ('back_office', 'board')),
    detail      TEXT        NOT NULL,
    raised_at   TEXT        NOT NULL
) STRICT;
CREATE INDEX monitoring_alerts_raised ON monitoring_alerts (raised_at);
