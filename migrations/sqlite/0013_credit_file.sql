-- The credit file (L2): documents of a case or a borrower, their contents in
-- a table of their own (never in audit bodies or in rows the hash chain
-- covers), and key financials per borrower and reporting date. A document
-- is never changed but for `superseded_by`, set once when a newer one
-- replaces it.
CREATE TABLE credit_documents (
    id             TEXT    NOT NULL PRIMARY KEY,
    borrower_id    TEXT    NOT NULL REFERENCES borrowers (id),
    case_id        TEXT    REFERENCES cases (id),
    doc_type       TEXT    NOT NULL CHECK (length(doc_type) BETWEEN 1 AND 50),
    media_type     TEXT    NOT NULL,
    sha256         TEXT    NOT NULL CHECK (length(sha256) = 64),
    size_bytes     INTEGER NOT NULL CHECK (size_bytes > 0),
    added_by       TEXT    NOT NULL,
    added_at       TEXT    NOT NULL,
    replaces       TEXT    UNIQUE REFERENCES credit_documents (id),
    superseded_by  TEXT    UNIQUE REFERENCES credit_documents (id),
    audit_event_id TEXT
) STRICT;
CREATE INDEX credit_documents_case ON credit_documents (case_id, added_at) WHERE case_id IS NOT NULL;
CREATE INDEX credit_documents_borrower ON credit_documents (borrower_id, added_at);

CREATE TABLE document_contents (
    document_id TEXT NOT NULL PRIMARY KEY REFERENCES credit_documents (id),
    content     BLOB NOT NULL
) STRICT;

CREATE TRIGGER credit_documents_no_delete BEFORE DELETE ON credit_documents
BEGIN
    SELECT RAISE(ABORT, 'credit documents are never deleted');
END;
CREATE TRIGGER credit_documents_supersede_once BEFORE UPDATE ON credit_documents
WHEN OLD.superseded_by IS NOT NULL
  OR NEW.id IS NOT OLD.id OR NEW.borrower_id IS NOT OLD.borrower_id
  OR NEW.case_id IS NOT OLD.case_id OR NEW.doc_type IS NOT OLD.doc_type
  OR NEW.media_type IS NOT OLD.media_type OR NEW.sha256 IS NOT OLD.sha256
  OR NEW.size_bytes IS NOT OLD.size_bytes OR NEW.added_by IS NOT OLD.added_by
  OR NEW.added_at IS NOT OLD.added_at OR NEW.replaces IS NOT OLD.replaces
BEGIN
    SELECT RAISE(ABORT, 'a credit document changes only by being superseded, once');
END;
CREATE TRIGGER document_contents_immutable_update BEFORE UPDATE ON document_contents
BEGIN
    SELECT RAISE(ABORT, 'document contents are never changed');
END;
CREATE TRIGGER document_contents_immutable_delete BEFORE DELETE ON document_contents
BEGIN
    SELECT RAISE(ABORT, 'document contents are never deleted');
END;

CREATE TABLE borrower_financials (
    borrower_id    TEXT NOT NULL REFERENCES borrowers (id),
    reporting_date TEXT NOT NULL CHECK (length(reporting_date) = 10),
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    revenue        TEXT NOT NULL,
    ebitda         TEXT NOT NULL,
    total_debt     TEXT NOT NULL,
    equity         TEXT NOT NULL,
    debt_service   TEXT NOT NULL,
    recorded_by    TEXT NOT NULL,
    recorded_at    TEXT NOT NULL,
    audit_event_id TEXT,
    PRIMARY KEY (borrower_id, reporting_date)
) STRICT;
