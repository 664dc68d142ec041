-- Reconciliation (A1): every business row of the credit path carries the id
-- of the audit event written in the same transaction (the transaction's
-- first event), so a row whose event is missing can be found and reported.
-- Rows written before this migration have none and are reported as
-- unstamped.
ALTER TABLE borrowers ADD COLUMN audit_event_id UUID;
ALTER TABLE cases ADD COLUMN audit_event_id UUID;
ALTER TABLE votes ADD COLUMN audit_event_id UUID;
ALTER TABLE decisions ADD COLUMN audit_event_id UUID;
