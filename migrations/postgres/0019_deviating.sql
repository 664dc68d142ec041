-- The deviating-decisions report (L11) reads the decisions of a period.
CREATE INDEX decisions_decided_at ON decisions (decided_at);
