-- The credit file (L2): documents of a case or a borrower, their contents in
-- a table of their own (never in audit bodies or in rows the hash chain
-- covers), and key financials per borrower and reporting date. A document
-- is never changed but for `superseded_by`, set once when a newer one
-- replaces it.
CREATE TABLE credit_documents (
    id             UUID        NOT NULL PRIMARY KEY,
    borrower_id    UUID        NOT NULL REFERENCES borrowers (id),
    case_id        UUID        REFERENCES cases (id),
    doc_type       TEXT        NOT NULL CHECK (length(doc_type) BETWEEN 1 AND 50),
    media_type     TEXT        NOT NULL,
    sha256         TEXT        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes     BIGINT      NOT NULL CHECK (size_bytes > 0),
    added_by       TEXT        NOT NULL,
    added_at       TIMESTAMPTZ NOT NULL,
    replaces       UUID        UNIQUE REFERENCES credit_documents (id),
    superseded_by  UUID        UNIQUE REFERENCES credit_documents (id),
    audit_event_id UUID
);
CREATE INDEX credit_documents_case ON credit_documents (case_id, added_at) WHERE case_id IS NOT NULL;
CREATE INDEX credit_documents_borrower ON credit_documents (borrower_id, added_at);

CREATE TABLE document_contents (
    document_id UUID  NOT NULL PRIMARY KEY REFERENCES credit_documents (id),
    content     BYTEA NOT NULL
);

-- Only `superseded_by` may change, once; contents never change.
CREATE FUNCTION credit_documents_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'credit documents are never deleted';
    END IF;
    IF OLD.superseded_by IS NOT NULL
       OR (NEW.id, NEW.borrower_id, NEW.case_id, NEW.doc_type, NEW.media_type, NEW.sha256,
           NEW.size_bytes, NEW.added_by, NEW.added_at, NEW.replaces)
          IS DISTINCT FROM
          (OLD.id, OLD.borrower_id, OLD.case_id, OLD.doc_type, OLD.media_type, OLD.sha256,
           OLD.size_bytes, OLD.added_by, OLD.added_at, OLD.replaces) THEN
        RAISE EXCEPTION 'a credit document changes only by being superseded, once';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER credit_documents_immutable BEFORE UPDATE OR DELETE ON credit_documents
    FOR EACH ROW EXECUTE FUNCTION credit_documents_immutable();

CREATE FUNCTION document_contents_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'document contents are never changed or deleted';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER document_contents_immutable BEFORE UPDATE OR DELETE ON document_contents
    FOR EACH ROW EXECUTE FUNCTION document_contents_immutable();

CREATE TABLE borrower_financials (
    borrower_id    UUID        NOT NULL REFERENCES borrowers (id),
    reporting_date TEXT        NOT NULL CHECK (reporting_date ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'),
    currency       TEXT        NOT NULL CHECK (length(currency) = 3),
    revenue        TEXT        NOT NULL,
    ebitda         TEXT        NOT NULL,
    total_debt     TEXT        NOT NULL,
    equity         TEXT        NOT NULL,
    debt_service   TEXT        NOT NULL,
    recorded_by    TEXT        NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    audit_event_id UUID,
    PRIMARY KEY (borrower_id, reporting_date)
);
