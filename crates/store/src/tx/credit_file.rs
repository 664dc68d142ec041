//! The credit file (L2): documents of a case or a borrower, their contents
//! (a table of their own, outside the audit trail and the case rows), and
//! the key financials of a borrower per reporting date.

use crate::StoreResult;
use creditops_domain::credit_file::{FileDocument, MediaType};
use creditops_domain::{BorrowerId, CaseId, DocumentId, StaffId, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A document's metadata row. Its bytes are stored apart
/// ([`CreditFileTx::document_content`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredDocument {
    pub id: DocumentId,
    /// The borrower the document belongs to (for a case document, the
    /// case's borrower).
    pub borrower_id: BorrowerId,
    /// Set for a case document, empty for a borrower document.
    pub case_id: Option<CaseId>,
    /// A code of the rule set's catalogue.
    #[serde(rename = "type")]
    pub doc_type: String,
    pub media_type: MediaType,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// Bytes.
    pub size: i64,
    pub added_by: StaffId,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub added_at: Timestamp,
    /// The document this one supersedes.
    pub replaces: Option<DocumentId>,
    /// The document that superseded this one; none while it is current.
    pub superseded_by: Option<DocumentId>,
}

impl StoredDocument {
    /// The document as a case file's hash covers it (V3).
    pub fn file_entry(&self) -> FileDocument {
        FileDocument {
            id: self.id,
            doc_type: self.doc_type.clone(),
            sha256: self.sha256.clone(),
        }
    }
}

/// A borrower's key financials for one reporting date; amounts in `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BorrowerFinancials {
    pub borrower_id: BorrowerId,
    #[schema(value_type = String, format = Date, example = "2025-12-31")]
    pub reporting_date: chrono::NaiveDate,
    #[schema(example = "EUR")]
    pub currency: String,
    #[schema(value_type = String, example = "12500000.00")]
    pub revenue: Decimal,
    #[schema(value_type = String, example = "1800000.00")]
    pub ebitda: Decimal,
    #[schema(value_type = String, example = "4200000.00")]
    pub total_debt: Decimal,
    #[schema(value_type = String, example = "3100000.00")]
    pub equity: Decimal,
    #[schema(value_type = String, example = "650000.00")]
    pub debt_service: Decimal,
    pub recorded_by: StaffId,
    #[schema(value_type = chrono::DateTime<chrono::Utc>)]
    pub recorded_at: Timestamp,
}

/// Documents and key financials of the credit file.
#[async_trait::async_trait]
pub trait CreditFileTx: Send {
    /// Stores a document's metadata and its bytes. `Conflict` if the id
    /// exists; `NotFound` if the borrower or the case does not.
    async fn insert_document(
        &mut self,
        document: &StoredDocument,
        content: &[u8],
    ) -> StoreResult<()>;
    async fn document(&mut self, id: DocumentId) -> StoreResult<Option<StoredDocument>>;
    /// The stored bytes of a document.
    async fn document_content(&mut self, id: DocumentId) -> StoreResult<Option<Vec<u8>>>;
    /// Marks `old` superseded by `new`. `Conflict` if it is superseded already.
    async fn supersede_document(&mut self, old: DocumentId, new: DocumentId) -> StoreResult<()>;
    /// Every document of a case, superseded ones included, oldest first.
    async fn case_documents(&mut self, case: CaseId) -> StoreResult<Vec<StoredDocument>>;
    /// Every document of a borrower itself (not of its cases), superseded
    /// ones included, oldest first.
    async fn borrower_documents(
        &mut self,
        borrower: BorrowerId,
    ) -> StoreResult<Vec<StoredDocument>>;
    /// Records the financials of a borrower for a reporting date, replacing
    /// what was recorded for that date.
    async fn put_financials(&mut self, financials: &BorrowerFinancials) -> StoreResult<()>;
    /// A borrower's financials, latest reporting date first.
    async fn financials(&mut self, borrower: BorrowerId) -> StoreResult<Vec<BorrowerFinancials>>;
}
